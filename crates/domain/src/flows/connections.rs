//! Connected accounts: each person's own token for an upstream that wants one
//! (`credentials = "per_person_token"`). A call by someone who has not given theirs is
//! answered with a URL elicitation (MCP 2025-11-25 "Elicitation", URL mode) naming a
//! page made by [`elicit`]: bound to that person, good once, short-lived. Opening it
//! signed in as someone else fails ([`pending`]); giving the token spends it
//! ([`connect`]). The token is kept sealed at rest, never shown again, never logged,
//! never sent to the MCP client; it goes only to its upstream, as the person's
//! `Authorization`. The person removes it from the connected-apps page
//! ([`disconnect`]); disabling the person removes all of theirs.

use std::collections::HashMap;

use mcpgate_core::secret::{hash_token, random_id};
use mcpgate_core::{ErrorCode, OAuthError};

use crate::audit::Event;
use crate::model::{ConnectRequest, Connection};
use crate::store::StoreResult;
use crate::{Actor, Authority, OAuthResult};

/// A connect page lives ten minutes, like a pending authorization request.
pub const REQUEST_TTL_SECS: i64 = 600;
/// Connect pages one person may have open for one upstream; an older one stops working.
pub const PENDING_PER_PERSON: i64 = 5;
/// Longest token accepted (a JWT with many claims fits; a file does not).
pub const MAX_TOKEN_LEN: usize = 8192;

/// The page a person is sent to, and the elicitation it answers.
#[derive(Debug, Clone)]
pub struct Elicited {
    /// `{issuer}/connections/{upstream}?request={handle}`.
    pub url: String,
    pub elicitation_id: String,
    pub message: String,
}

fn unknown(upstream: &str) -> OAuthError {
    OAuthError::invalid_request(format!(
        "{} takes no personal token",
        upstream.chars().take(64).collect::<String>()
    ))
}

/// What the connect page asks for, when `upstream` takes a personal token.
pub fn label<'a>(s: &'a Authority, upstream: &str) -> Option<&'a str> {
    s.cfg.connectable.get(upstream).map(String::as_str)
}

/// A page where `user_id` gives their token for `upstream`: single-use, theirs only.
pub async fn elicit(s: &Authority, user_id: &str, upstream: &str) -> OAuthResult<Elicited> {
    let what = label(s, upstream).ok_or_else(|| unknown(upstream))?;
    let handle = random_id();
    let elicitation_id = random_id();
    s.store
        .insert_connect_request(
            &hash_token(&handle),
            &ConnectRequest {
                user_id: user_id.to_owned(),
                upstream: upstream.to_owned(),
                elicitation_id: elicitation_id.clone(),
                expires_at: s.now() + REQUEST_TTL_SECS,
            },
            PENDING_PER_PERSON,
        )
        .await?;
    Ok(Elicited {
        url: format!("{}/connections/{upstream}?request={handle}", s.cfg.issuer),
        elicitation_id,
        message: format!(
            "{upstream} needs your own account: open the link, sign in if asked, and give {what}; then try again."
        ),
    })
}

/// Why a connect page cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotYours {
    #[error("This link was already used, or it expired. Try the call again for a new one.")]
    Spent,
    #[error("This link was made for another person. Sign in as the person who made the call.")]
    Other,
}

/// Checks that the page `handle` (when given) is `user_id`'s and for `upstream`.
pub async fn pending(
    s: &Authority,
    handle: Option<&str>,
    user_id: &str,
    upstream: &str,
) -> OAuthResult<Result<(), NotYours>> {
    label(s, upstream).ok_or_else(|| unknown(upstream))?;
    let Some(handle) = handle else {
        // The person opened it from the connected-apps page: their own.
        return Ok(Ok(()));
    };
    let Some(r) = s.store.connect_request(&hash_token(handle)).await? else {
        return Ok(Err(NotYours::Spent));
    };
    if r.expires_at <= s.now() {
        return Ok(Err(NotYours::Spent));
    }
    if r.user_id != user_id || r.upstream != upstream {
        return Ok(Err(NotYours::Other));
    }
    Ok(Ok(()))
}

/// Keeps `token` as `user_id`'s for `upstream`, spending the page `handle` (checked as
/// [`pending`] does, again, at the moment it is spent).
pub async fn connect(
    s: &Authority,
    handle: Option<&str>,
    user_id: &str,
    upstream: &str,
    token: &str,
) -> OAuthResult<Result<(), NotYours>> {
    if let Err(e) = pending(s, handle, user_id, upstream).await? {
        return Ok(Err(e));
    }
    let token = token.trim();
    // Sent as `Authorization: Bearer <token>`: a header value, one line, printable.
    if token.is_empty()
        || token.len() > MAX_TOKEN_LEN
        || !token.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            format!("the token must be 1-{MAX_TOKEN_LEN} printable characters without spaces"),
        ));
    }
    if let Some(h) = handle
        && !s.store.take_connect_request(&hash_token(h)).await?
    {
        return Ok(Err(NotYours::Spent));
    }
    s.store
        .put_connection(user_id, upstream, token, s.now())
        .await?;
    s.vault.forget(user_id, Some(upstream));
    s.audit(
        Event::AccountConnected {
            upstream: upstream.to_owned(),
        },
        Some(user_id),
        None,
    )
    .await;
    Ok(Ok(()))
}

/// How long a token read from the store serves calls before it is read again (and its
/// use noted). A disconnect on this instance takes effect at once; on another
/// instance sharing the database, within this time.
pub const VAULT_KEEP_SECS: i64 = 30;
/// Most tokens kept in memory at once.
const VAULT_MAX: usize = 10_000;

/// Tokens read lately, by upstream then person, with when they were read (nested so
/// that a lookup borrows its keys rather than allocating them).
#[derive(Default)]
pub struct Vault {
    kept: std::sync::Mutex<ByUpstream>,
}

/// upstream → person → (token, when it was read).
type ByUpstream = HashMap<String, HashMap<String, (String, i64)>>;

impl Vault {
    fn lock(&self) -> std::sync::MutexGuard<'_, ByUpstream> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, user_id: &str, upstream: &str, now: i64) -> Option<String> {
        self.lock()
            .get(upstream)?
            .get(user_id)
            .filter(|(_, at)| now - at < VAULT_KEEP_SECS)
            .map(|(t, _)| t.clone())
    }

    fn put(&self, user_id: &str, upstream: &str, token: String, now: i64) {
        let mut kept = self.lock();
        if kept.values().map(HashMap::len).sum::<usize>() >= VAULT_MAX {
            for people in kept.values_mut() {
                people.retain(|_, (_, at)| now - *at < VAULT_KEEP_SECS);
            }
            if kept.values().map(HashMap::len).sum::<usize>() >= VAULT_MAX {
                kept.clear();
            }
        }
        kept.entry(upstream.to_owned())
            .or_default()
            .insert(user_id.to_owned(), (token, now));
    }

    /// Forgets the person's tokens (all upstreams when `upstream` is `None`).
    pub fn forget(&self, user_id: &str, upstream: Option<&str>) {
        for (up, people) in self.lock().iter_mut() {
            if upstream.is_none_or(|u| u == up) {
                people.remove(user_id);
            }
        }
    }
}

/// The person's token for `upstream`: from memory while fresh, else from the store
/// (its use noted then).
pub async fn token_for(
    s: &Authority,
    user_id: &str,
    upstream: &str,
) -> StoreResult<Option<String>> {
    let now = s.now();
    if let Some(t) = s.vault.get(user_id, upstream, now) {
        return Ok(Some(t));
    }
    let t = s.store.connection_secret(user_id, upstream).await?;
    if let Some(t) = &t {
        s.store.touch_connection(user_id, upstream, now).await?;
        s.vault.put(user_id, upstream, t.clone(), now);
    }
    Ok(t)
}

/// Removes the person's token for `upstream`; true when there was one.
pub async fn disconnect(
    s: &Authority,
    user_id: &str,
    upstream: &str,
    by: &Actor,
) -> StoreResult<bool> {
    let removed = s.store.delete_connection(user_id, upstream).await?;
    s.vault.forget(user_id, Some(upstream));
    if removed {
        s.audit(
            Event::AccountDisconnected {
                upstream: upstream.to_owned(),
                by: by.clone(),
            },
            Some(user_id),
            None,
        )
        .await;
    }
    Ok(removed)
}

/// The person's connected accounts.
pub async fn of(s: &Authority, user_id: &str) -> StoreResult<Vec<Connection>> {
    s.store.connections_of(user_id).await
}
