//! Connected accounts: each person's own token for an upstream that wants one
//! (`credentials = "per_person_token"`, or through the upstream's own sign-in with
//! `credentials = "oauth"`, whose OAuth part is [`super::upstream_oauth`]). A call by someone who has not given theirs is
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

/// What the connect page asks for, when `upstream` takes a person's own account.
pub fn label<'a>(s: &'a Authority, upstream: &str) -> Option<&'a str> {
    s.cfg.connectable.get(upstream).map(|c| c.label.as_str())
}

/// Whether the person connects `upstream` through its own sign-in (else by pasting a
/// token).
pub fn through_sign_in(s: &Authority, upstream: &str) -> bool {
    super::upstream_oauth::oauth_of(s, upstream).is_some()
}

/// A page where `user_id` gives their token for `upstream`: single-use, theirs only.
pub async fn elicit(s: &Authority, user_id: &str, upstream: &str) -> OAuthResult<Elicited> {
    elicit_scope(s, user_id, upstream, None).await
}

/// [`elicit`], asking the upstream's sign-in for `more` scope than the person's account
/// there granted (the upstream answered `403 insufficient_scope`; MCP 2025-11-25
/// "Step-Up Authorization Flow"). Only where the person connects through the upstream's
/// sign-in, and only scope tokens (RFC 6749 §3.3), bounded.
pub async fn elicit_more(
    s: &Authority,
    user_id: &str,
    upstream: &str,
    more: &str,
) -> OAuthResult<Option<Elicited>> {
    let ok = through_sign_in(s, upstream)
        && !more.trim().is_empty()
        && more.len() <= 1000
        && mcpgate_core::ScopeSet::parse(more).is_ok();
    if !ok {
        return Ok(None);
    }
    elicit_scope(s, user_id, upstream, Some(more.trim()))
        .await
        .map(Some)
}

async fn elicit_scope(
    s: &Authority,
    user_id: &str,
    upstream: &str,
    more: Option<&str>,
) -> OAuthResult<Elicited> {
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
                scope: more.map(str::to_owned),
            },
            PENDING_PER_PERSON,
        )
        .await?;
    Ok(Elicited {
        url: format!("{}/connections/{upstream}?request={handle}", s.cfg.issuer),
        elicitation_id,
        message: if let Some(more) = more {
            format!(
                "{upstream} needs more of your account there ({more}): open the link and allow it at {what}; then try again."
            )
        } else if through_sign_in(s, upstream) {
            format!(
                "{upstream} needs your own account: open the link and sign in at {what}; then try again."
            )
        } else {
            format!(
                "{upstream} needs your own account: open the link, sign in if asked, and give {what}; then try again."
            )
        },
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
    if through_sign_in(s, upstream) {
        return Err(OAuthError::invalid_request(
            "this server is connected through its own sign-in, not a pasted token",
        ));
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
    keep(s, user_id, upstream, token).await?;
    Ok(Ok(()))
}

/// Keeps `secret` as the person's for `upstream` (a new generation of it), and says so.
pub(crate) async fn keep(
    s: &Authority,
    user_id: &str,
    upstream: &str,
    secret: &str,
) -> StoreResult<()> {
    s.store
        .put_connection(user_id, upstream, secret, s.now())
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
    Ok(())
}

/// Removes the person's connection to `upstream` without a word (the caller says why).
pub(crate) async fn forget(s: &Authority, user_id: &str, upstream: &str) -> StoreResult<bool> {
    let removed = s.store.delete_connection(user_id, upstream).await?;
    s.vault.forget(user_id, Some(upstream));
    Ok(removed)
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

/// upstream → person → (token, until when it serves without a look at the store).
type ByUpstream = HashMap<String, HashMap<String, (String, i64)>>;

impl Vault {
    fn lock(&self) -> std::sync::MutexGuard<'_, ByUpstream> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn get(&self, user_id: &str, upstream: &str, now: i64) -> Option<String> {
        self.lock()
            .get(upstream)?
            .get(user_id)
            .filter(|(_, until)| now < *until)
            .map(|(t, _)| t.clone())
    }

    /// Keeps `token`, read at `now`, until [`VAULT_KEEP_SECS`] have passed or `due`
    /// (when it must be refreshed), whichever comes first.
    pub(crate) fn put(&self, user_id: &str, upstream: &str, token: String, now: i64, due: i64) {
        self.keep_until(
            user_id,
            upstream,
            token,
            now,
            due.min(now + VAULT_KEEP_SECS),
        );
    }

    /// Keeps `token` until `until` (what the store holds is read again after
    /// [`put`](Self::put)'s while; a token with nothing in the store lives its life).
    pub(crate) fn keep_until(
        &self,
        user_id: &str,
        upstream: &str,
        token: String,
        now: i64,
        until: i64,
    ) {
        let mut kept = self.lock();
        if kept.values().map(HashMap::len).sum::<usize>() >= VAULT_MAX {
            for people in kept.values_mut() {
                people.retain(|_, (_, until)| now < *until);
            }
            if kept.values().map(HashMap::len).sum::<usize>() >= VAULT_MAX {
                kept.clear();
            }
        }
        kept.entry(upstream.to_owned())
            .or_default()
            .insert(user_id.to_owned(), (token, until));
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

/// The person's token for `upstream` when one read lately is still good (no store, no
/// upstream): the forwarded call's common case.
pub fn cached(s: &Authority, user_id: &str, upstream: &str) -> Option<String> {
    s.vault.get(user_id, upstream, s.now())
}

/// The person's token for `upstream`: from memory while fresh, else from the store
/// (its use noted then); through the upstream's sign-in, refreshed when due. `refused`:
/// the upstream answered 401 to this token; a pasted one is forgotten, one from the
/// upstream's sign-in is refreshed (once, however many calls were refused).
pub async fn token_for(
    s: &Authority,
    user_id: &str,
    upstream: &str,
    refused: Option<&str>,
) -> Result<Option<String>, super::upstream_oauth::ConnectError> {
    if through_sign_in(s, upstream) {
        return super::upstream_oauth::access_token(s, user_id, upstream, refused).await;
    }
    if refused.is_some() {
        disconnect(s, user_id, upstream, &Actor::Upstream(upstream.to_owned())).await?;
        return Ok(None);
    }
    let now = s.now();
    if let Some(t) = s.vault.get(user_id, upstream, now) {
        return Ok(Some(t));
    }
    let t = s
        .store
        .connection(user_id, upstream)
        .await?
        .map(|c| c.secret);
    if let Some(t) = &t {
        s.store.touch_connection(user_id, upstream, now).await?;
        s.vault.put(user_id, upstream, t.clone(), now, i64::MAX);
    }
    Ok(t)
}

/// Removes the person's token for `upstream` (revoked at the upstream when it came
/// from its sign-in); true when there was one.
pub async fn disconnect(
    s: &Authority,
    user_id: &str,
    upstream: &str,
    by: &Actor,
) -> StoreResult<bool> {
    let held = match through_sign_in(s, upstream) {
        true => s.store.connection(user_id, upstream).await?,
        false => None,
    };
    let removed = forget(s, user_id, upstream).await?;
    if let Some(c) = held {
        super::upstream_oauth::revoke_at_upstream(s, upstream, &c.secret).await;
    }
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

/// Removes every connection of the person (disabled, or deleted).
pub async fn disconnect_all(s: &Authority, user_id: &str, by: &Actor) -> StoreResult<()> {
    for c in s.store.connections_of(user_id).await? {
        disconnect(s, user_id, &c.upstream, by).await?;
    }
    // Any an upstream no longer configured still holds.
    s.store.delete_connections_of(user_id).await?;
    s.vault.forget(user_id, None);
    Ok(())
}

/// The person's connected accounts.
pub async fn of(s: &Authority, user_id: &str) -> StoreResult<Vec<Connection>> {
    s.store.connections_of(user_id).await
}
