//! Connected accounts through the upstream's own sign-in (`credentials = "oauth"`):
//! mcpgate is an OAuth client of the upstream, the way an MCP client is (MCP
//! 2025-11-25 "Authorization"). It finds the upstream's authorization server (RFC 9728,
//! then RFC 8414 or OpenID discovery), identifies itself by a registration the operator
//! made, by its Client ID Metadata Document, or by registering dynamically (RFC 7591),
//! and sends the person through the upstream's sign-in and consent with PKCE S256
//! (RFC 7636), `state`, the upstream as `resource` (RFC 8707), and `iss` checked on the
//! way back (RFC 9207). The person's tokens are sealed at rest; the access token goes
//! only to its upstream.
//!
//! Refreshing happens once per expiry across every instance: upstreams rotate refresh
//! tokens, and a second refresh with the old one ends the grant (RFC 9700 §4.14.2). The
//! caller that claims the connection's current generation in the store refreshes; every
//! other caller, here or on another instance, waits for the next generation and uses
//! its result. A refresh the upstream refuses (`invalid_grant`) removes the connection:
//! the person's next call asks them to connect again.

use std::collections::HashMap;

use mcpgate_core::pkce::challenge_of;
use mcpgate_core::secret::{hash_token, random_id};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::connections::{self, NotYours};
use crate::audit::Event;
use crate::model::{ConnectAttempt, UpstreamClient};
use crate::ports::{UpstreamError, UpstreamServer, UpstreamTokens};
use crate::settings::{ConnectKind, OAuthUpstream};
use crate::store::StoreError;
use crate::{Actor, Authority};

/// A person has ten minutes to get through the upstream's sign-in.
pub const ATTEMPT_TTL_SECS: i64 = 600;
/// Sign-ins one person may have under way at once; an older one stops working.
pub const ATTEMPTS_PER_PERSON: i64 = 5;
/// How long a claim to refresh holds when its holder vanishes.
pub const LEASE_SECS: i64 = 30;
/// A token is refreshed this long before it expires (a quarter of its life at most).
const MARGIN_SECS: i64 = 30;
/// How long a discovered authorization server is used before it is looked up again.
const DISCOVERY_KEEP_SECS: i64 = 3600;
/// A caller waiting for another's refresh looks again after 20 ms, then less often (up to
/// every 200 ms), for about 15 s in all.
const WAIT_MILLIS: u64 = 20;
const MAX_WAITS: u64 = 120;

/// Why connecting, or using a connection, failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{upstream} could not be reached: {why}")]
    Upstream { upstream: String, why: String },
    #[error("{upstream} did not connect your account ({error}).")]
    Refused { upstream: String, error: String },
    #[error(transparent)]
    NotYours(#[from] NotYours),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ConnectError {
    fn upstream(upstream: &str, e: UpstreamError) -> Self {
        Self::Upstream {
            upstream: upstream.to_owned(),
            why: e.to_string(),
        }
    }
}

/// The person's tokens, as sealed in the store.
#[derive(Serialize, Deserialize)]
struct Held {
    access_token: String,
    refresh_token: Option<String>,
    /// When to refresh (before `expires_at`); `i64::MAX` when it does not expire.
    refresh_at: i64,
    /// The authorization server that issued them: they are never sent to another
    /// (the upstream's metadata, or the operator's configuration, may change).
    #[serde(default)]
    issuer: Option<String>,
}

/// The longest an upstream's `expires_in` is taken at its word (a year).
const MAX_EXPIRES_IN: i64 = 365 * 24 * 3600;

impl Held {
    /// What a token answer gives. RFC 6749 §6: a refresh answer without a new refresh
    /// token leaves the old one in force.
    fn new(t: UpstreamTokens, now: i64, previous: Option<String>, issuer: &str) -> Self {
        let refresh_at = match t.expires_in {
            Some(e) if e > 0 => {
                let e = e.min(MAX_EXPIRES_IN);
                now.saturating_add(e - MARGIN_SECS.min(e / 4))
            }
            _ => i64::MAX,
        };
        Self {
            access_token: t.access_token,
            refresh_token: t.refresh_token.or(previous),
            refresh_at,
            issuer: Some(issuer.to_owned()),
        }
    }

    fn read(secret: &str) -> Option<Self> {
        serde_json::from_str(secret).ok()
    }

    fn write(&self) -> String {
        serde_json::to_string(self).expect("plain strings and numbers")
    }

    /// Keeps the access token in memory until it is due (at most the vault's while);
    /// returns it.
    fn remember(self, s: &Authority, user_id: &str, upstream: &str, now: i64) -> String {
        s.vault.put(
            user_id,
            upstream,
            self.access_token.clone(),
            now,
            self.refresh_at,
        );
        self.access_token
    }
}

/// Authorization servers found lately, by upstream.
#[derive(Default)]
pub struct Discovered {
    kept: std::sync::Mutex<HashMap<String, (UpstreamServer, i64)>>,
}

/// The upstream's OAuth settings, when it is connected through OAuth.
pub fn oauth_of<'a>(s: &'a Authority, upstream: &str) -> Option<&'a OAuthUpstream> {
    match &s.cfg.connectable.get(upstream)?.kind {
        ConnectKind::OAuth(o) => Some(o),
        ConnectKind::Token => None,
    }
}

/// Where `upstream`'s sign-in sends the person back: `/connections/callback`, naming
/// the upstream, which the operator of the upstream allows there. One per upstream, so
/// that an answer sent back for one upstream's attempt by another's authorization
/// server is refused even where no `iss` comes with it (a mix-up, RFC 9700 §4.4.2).
pub fn callback_uri(s: &Authority, upstream: &str) -> String {
    s.cfg
        .endpoint(&format!("/connections/callback?upstream={upstream}"))
}

/// The URL of mcpgate's Client ID Metadata Document for `upstream`: its `client_id`
/// where the upstream accepts such documents (one per upstream, each naming only its
/// own redirect URI).
pub fn metadata_document_url(s: &Authority, upstream: &str) -> String {
    s.cfg.endpoint(&format!("/connections/client/{upstream}"))
}

/// The Client ID Metadata Document (MCP 2025-11-25 "Client ID Metadata Documents"):
/// a public client, since no secret can be shared this way; PKCE protects the code.
/// `None` for a name that is not an upstream connected through OAuth.
pub fn metadata_document(s: &Authority, upstream: &str) -> Option<Value> {
    oauth_of(s, upstream)?;
    let mut doc = json!({
        "client_id": metadata_document_url(s, upstream),
        "client_name": format!("mcpgate at {}", s.cfg.issuer),
        "redirect_uris": [callback_uri(s, upstream)],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    });
    // A home page is an https URL (RFC 7591 §2 `client_uri`, shown to people).
    if s.cfg.issuer.starts_with("https://") {
        doc["client_uri"] = json!(s.cfg.issuer);
    }
    Some(doc)
}

/// The upstream's authorization server: found once an hour.
async fn server(
    s: &Authority,
    upstream: &str,
    up: &OAuthUpstream,
) -> Result<UpstreamServer, ConnectError> {
    // One cache for both kinds: an upstream's name is one or the other.
    let now = s.now();
    let lock = || s.discovered.kept.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((found, at)) = lock().get(upstream)
        && now - at < DISCOVERY_KEEP_SECS
    {
        return Ok(found.clone());
    }
    let found = s
        .upstream_oauth
        .discover(&up.url)
        .await
        .map_err(|e| ConnectError::upstream(upstream, e))?;
    // The operator's pin: an upstream that names another server is not followed there.
    if let Some(pinned) = &up.issuer
        && *pinned != found.issuer
    {
        return Err(ConnectError::Upstream {
            upstream: upstream.to_owned(),
            why: format!(
                "its metadata names the authorization server {}, not {pinned} (oauth_issuer)",
                found.issuer
            ),
        });
    }
    lock().insert(upstream.to_owned(), (found.clone(), now));
    Ok(found)
}

/// Where the connect page's form leads (the upstream's authorization endpoint), for
/// the page's `form-action`: browsers hold a form's redirect to it. `None` when the
/// upstream cannot be found now (the form then shows why, without leaving).
pub async fn sign_in_at(s: &Authority, upstream: &str) -> Option<String> {
    let up = oauth_of(s, upstream)?;
    server(s, upstream, up)
        .await
        .ok()
        .map(|found| found.authorization_endpoint)
}

/// How mcpgate identifies itself there: the operator's registration; else its
/// metadata document, where the server takes one and mcpgate's URL is `https` (as
/// such a `client_id` must be); else one dynamic registration, kept in the store and
/// shared by every instance.
async fn client(
    s: &Authority,
    upstream: &str,
    server: &UpstreamServer,
    up: &OAuthUpstream,
) -> Result<UpstreamClient, ConnectError> {
    if let Some(id) = &up.client_id {
        return Ok(UpstreamClient {
            client_id: id.clone(),
            secret: up.client_secret.clone(),
        });
    }
    if server.metadata_documents && s.cfg.issuer.starts_with("https://") {
        return Ok(UpstreamClient {
            client_id: metadata_document_url(s, upstream),
            secret: None,
        });
    }
    if let Some(c) = s.store.upstream_client(upstream, &server.issuer).await? {
        return Ok(c);
    }
    if server.registration_endpoint.is_none() {
        return Err(ConnectError::Upstream {
            upstream: upstream.to_owned(),
            why: "its authorization server takes neither dynamic registration nor a client \
                  metadata document; set oauth_client_id for it"
                .into(),
        });
    }
    // A confidential client where the server allows one: the secret stays here.
    let method = if server.auth_methods.is_empty()
        || server
            .auth_methods
            .iter()
            .any(|m| m == "client_secret_basic")
    {
        "client_secret_basic"
    } else if server
        .auth_methods
        .iter()
        .any(|m| m == "client_secret_post")
    {
        "client_secret_post"
    } else {
        "none"
    };
    let mut metadata = metadata_document(s, upstream).unwrap_or_default();
    metadata
        .as_object_mut()
        .expect("an object")
        .remove("client_id");
    metadata["token_endpoint_auth_method"] = json!(method);
    let made = s
        .upstream_oauth
        .register(server, &metadata)
        .await
        .map_err(|e| ConnectError::upstream(upstream, e))?;
    Ok(s.store
        .put_upstream_client(upstream, &server.issuer, &made, s.now())
        .await?)
}

/// Sends the person to the upstream's sign-in: the URL to redirect to. `handle` is
/// the elicited connect page (checked as [`connections::pending`] does).
pub async fn start(
    s: &Authority,
    handle: Option<&str>,
    user_id: &str,
    upstream: &str,
) -> Result<String, ConnectError> {
    connections::pending(s, handle, user_id, upstream)
        .await
        .map_err(|e| ConnectError::Upstream {
            upstream: upstream.to_owned(),
            why: e.description.into_owned(),
        })??;
    // A step-up page asks for what the upstream said it needs, besides the rest.
    let more = match handle {
        Some(h) => s
            .store
            .connect_request(&hash_token(h))
            .await?
            .and_then(|r| r.scope),
        None => None,
    };
    let up = oauth_of(s, upstream).ok_or_else(|| ConnectError::Upstream {
        upstream: upstream.to_owned(),
        why: "it is not connected through OAuth".into(),
    })?;
    let server = server(s, upstream, up).await?;
    let client = client(s, upstream, &server, up).await?;
    let state = random_id();
    let verifier = format!("{}{}", random_id(), random_id());
    s.store
        .insert_connect_attempt(
            &hash_token(&state),
            &ConnectAttempt {
                user_id: user_id.to_owned(),
                upstream: upstream.to_owned(),
                verifier: verifier.clone(),
                request_hash: handle.map(hash_token),
                expires_at: s.now() + ATTEMPT_TTL_SECS,
            },
            ATTEMPTS_PER_PERSON,
        )
        .await?;
    let mut scopes = up.scopes.clone().unwrap_or_else(|| server.scopes.clone());
    for extra in more.iter().flat_map(|m| m.split_whitespace()) {
        if !scopes.iter().any(|s| s == extra) {
            scopes.push(extra.to_owned());
        }
    }
    let scopes = scopes.join(" ");
    let mut url = url::Url::parse(&server.authorization_endpoint)
        .map_err(|e| ConnectError::upstream(upstream, UpstreamError::Unreachable(e.to_string())))?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &client.client_id)
            .append_pair("redirect_uri", &callback_uri(s, upstream))
            .append_pair("code_challenge", &challenge_of(&verifier))
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", &state)
            .append_pair("resource", &server.resource);
        if !scopes.is_empty() {
            q.append_pair("scope", &scopes);
        }
    }
    Ok(url.into())
}

/// What the upstream's sign-in sent back (RFC 6749 §4.1.2, RFC 9207). No `Debug`: it
/// holds the code.
#[derive(Default)]
pub struct Callback {
    /// The upstream the redirect URI names.
    pub upstream: Option<String>,
    pub state: Option<String>,
    pub code: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
}

/// Completes a connection: the code is exchanged and the person's tokens kept. The
/// attempt is spent whatever happens; it must be the signed-in person's own. Returns
/// the upstream's name.
pub async fn finish(s: &Authority, user_id: &str, cb: Callback) -> Result<String, ConnectError> {
    let state = cb.state.as_deref().unwrap_or("");
    let Some(attempt) = s.store.take_connect_attempt(&hash_token(state)).await? else {
        return Err(NotYours::Spent.into());
    };
    if attempt.expires_at <= s.now() {
        return Err(NotYours::Spent.into());
    }
    if attempt.user_id != user_id {
        return Err(NotYours::Other.into());
    }
    let upstream = attempt.upstream.as_str();
    let up = oauth_of(s, upstream).ok_or(NotYours::Spent)?;
    let refused = |error: String| ConnectError::Refused {
        upstream: upstream.to_owned(),
        error,
    };
    // Sent back to another upstream's redirect URI: another authorization server
    // answered this attempt (a mix-up); its code goes nowhere.
    if cb.upstream.as_deref() != Some(upstream) {
        return Err(refused("the answer came back for another server".into()));
    }
    let server = server(s, upstream, up).await?;
    // RFC 9207 §2.4: a response from another issuer is a mix-up; a server that says it
    // sends `iss` must send it.
    match &cb.iss {
        Some(iss) if *iss != server.issuer => {
            return Err(refused("the answer came from another issuer".into()));
        }
        None if server.iss_parameter => {
            return Err(refused("the answer did not name its issuer".into()));
        }
        _ => {}
    }
    if let Some(e) = &cb.error {
        // Shown to the person: an error code is a short token of safe characters.
        let code: String = e
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        return Err(refused(code));
    }
    let code = cb
        .code
        .as_deref()
        .ok_or_else(|| refused("no code".into()))?;
    let client = client(s, upstream, &server, up).await?;
    let redirect_uri = callback_uri(s, upstream);
    let tokens = s
        .upstream_oauth
        .token(
            &server,
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &redirect_uri),
                ("code_verifier", &attempt.verifier),
                ("resource", &server.resource),
            ],
        )
        .await
        .map_err(|e| match e {
            UpstreamError::Refused { error } => refused(error),
            e => ConnectError::upstream(upstream, e),
        })?;
    let held = Held::new(tokens, s.now(), None, &server.issuer);
    if let Some(h) = &attempt.request_hash
        && !s.store.take_connect_request(h).await?
    {
        // The connect page was spent meanwhile (another tab): the tokens are still
        // the person's own, from their own sign-in, and kept.
        tracing::debug!(upstream, "a connect page was already spent");
    }
    connections::keep(s, user_id, upstream, &held.write()).await?;
    Ok(upstream.to_owned())
}

/// The person's access token for `upstream`, refreshed first when it is due, or when
/// it is `refused` (the upstream answered 401 to it). `None`: not connected (or no
/// longer: the upstream refused the refresh), so the call asks them to connect.
pub async fn access_token(
    s: &Authority,
    user_id: &str,
    upstream: &str,
    refused: Option<&str>,
) -> Result<Option<String>, ConnectError> {
    let up = oauth_of(s, upstream).ok_or(NotYours::Spent)?;
    if refused.is_none()
        && let Some(t) = s.vault.get(user_id, upstream, s.now())
    {
        return Ok(Some(t));
    }
    for waits in 0..MAX_WAITS {
        let now = s.now();
        let Some(c) = s.store.connection(user_id, upstream).await? else {
            return Ok(None);
        };
        let Some(held) = Held::read(&c.secret) else {
            // Not tokens of this kind (the upstream's kind changed): connect again.
            connections::disconnect(s, user_id, upstream, &Actor::Upstream(upstream.into()))
                .await?;
            return Ok(None);
        };
        let stale = refused.is_some_and(|r| r == held.access_token);
        if now < held.refresh_at && !stale {
            s.store.touch_connection(user_id, upstream, now).await?;
            return Ok(Some(held.remember(s, user_id, upstream, now)));
        }
        let Some(refresh_token) = held.refresh_token.clone() else {
            // Nothing to refresh with: the person signs in there again.
            connections::disconnect(s, user_id, upstream, &Actor::Upstream(upstream.into()))
                .await?;
            return Ok(None);
        };
        // Who to ask, found before the claim: the claim's time is the token request's
        // alone (its 10 s deadline well within the lease).
        let server = server(s, upstream, up).await?;
        if held.issuer.as_deref().is_some_and(|i| i != server.issuer) {
            // Another authorization server now: the tokens are not sent to it.
            connections::forget(s, user_id, upstream).await?;
            return Ok(None);
        }
        let client = client(s, upstream, &server, up).await?;
        let until = now + LEASE_SECS;
        if s.store
            .claim_refresh(user_id, upstream, c.generation, now, until)
            .await?
        {
            let claim = Claim {
                user_id,
                upstream,
                generation: c.generation,
                until,
            };
            return refresh(s, claim, &server, &client, refresh_token).await;
        }
        // Another caller, here or on another instance, is refreshing this generation:
        // its result is the one to use. Looked for more slowly as the wait goes on.
        s.upstream_oauth
            .pause((WAIT_MILLIS * (1 + waits / 10)).min(200))
            .await;
        if let Some(t) = s.vault.get(user_id, upstream, s.now())
            && refused.is_none_or(|r| r != t)
        {
            return Ok(Some(t));
        }
    }
    Err(ConnectError::Upstream {
        upstream: upstream.to_owned(),
        why: "a refresh by another instance did not finish".into(),
    })
}

/// A claim to refresh one generation of a person's connection, until `until`.
struct Claim<'a> {
    user_id: &'a str,
    upstream: &'a str,
    generation: i64,
    until: i64,
}

/// The one refresh of a generation, by the caller that claimed it. Only `invalid_grant`
/// ends the connection (the grant is over at the upstream); any other failure gives the
/// claim up, so that the next call tries again.
async fn refresh(
    s: &Authority,
    claim: Claim<'_>,
    server: &UpstreamServer,
    client: &UpstreamClient,
    refresh_token: String,
) -> Result<Option<String>, ConnectError> {
    let Claim {
        user_id,
        upstream,
        generation,
        until,
    } = claim;
    let answer = s
        .upstream_oauth
        .token(
            server,
            client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh_token),
                ("resource", &server.resource),
            ],
        )
        .await;
    metrics::counter!("mcpgate_upstream_refreshes_total", "upstream" => upstream.to_owned(),
        "outcome" => if answer.is_ok() { "ok" } else { "failed" })
    .increment(1);
    match answer {
        Ok(tokens) => {
            let now = s.now();
            let held = Held::new(tokens, now, Some(refresh_token), &server.issuer);
            if s.store
                .finish_refresh(user_id, upstream, generation, until, &held.write())
                .await?
            {
                Ok(Some(held.remember(s, user_id, upstream, now)))
            } else {
                // Disconnected or connected anew meanwhile: that stands.
                Ok(None)
            }
        }
        Err(UpstreamError::Refused { error }) if error == "invalid_grant" => {
            // The grant is over there (revoked, expired, or its refresh token used by
            // someone else). The person is asked to connect again on their next call.
            tracing::info!(
                upstream,
                error,
                "the upstream refused to refresh a person's token"
            );
            s.audit(
                Event::AccountNeedsConsent {
                    upstream: upstream.to_owned(),
                },
                Some(user_id),
                None,
            )
            .await;
            connections::forget(s, user_id, upstream).await?;
            Ok(None)
        }
        Err(e) => {
            s.store
                .release_refresh(user_id, upstream, generation)
                .await?;
            Err(ConnectError::upstream(upstream, e))
        }
    }
}

/// The upstream's token for the person who presented `presented` here, by token
/// exchange at the upstream's authorization server (RFC 8693 §2.1: `presented` is the
/// subject token, the upstream the resource), kept for the answer's lifetime under the
/// hash of `presented`. `refused`: the upstream answered 401 to this one; a new exchange
/// is made. `None`: the upstream's server does not take the person's token.
pub async fn exchanged(
    s: &Authority,
    upstream: &str,
    presented: &str,
    refused: Option<&str>,
) -> Result<Option<String>, ConnectError> {
    let Some(up) = s.cfg.exchanges.get(upstream) else {
        return Ok(None);
    };
    // A token bound to the client's key (DPoP, `cnf`) is not the gateway's to present
    // anywhere else.
    if mcpgate_core::jose::unverified_claims(presented).is_none_or(|c| c.get("cnf").is_some()) {
        return Ok(None);
    }
    // Kept by the presented token's hash: each token of the person's has its own, and
    // ends with it.
    let key = format!("exchanged:{}", hash_token(presented));
    let now = s.now();
    if let Some(t) = s.vault.get(&key, upstream, now)
        && refused.is_none_or(|r| r != t)
    {
        return Ok(Some(t));
    }
    let server = server(s, upstream, up).await?;
    let client = client(s, upstream, &server, up).await?;
    let scopes = up
        .scopes
        .clone()
        .unwrap_or_else(|| server.scopes.clone())
        .join(" ");
    let mut form = vec![
        ("grant_type", super::token_exchange::GRANT_TYPE),
        ("subject_token", presented),
        ("subject_token_type", super::token_exchange::ACCESS_TOKEN),
        ("requested_token_type", super::token_exchange::ACCESS_TOKEN),
        ("resource", server.resource.as_str()),
    ];
    if !scopes.is_empty() {
        form.push(("scope", &scopes));
    }
    match s.upstream_oauth.token(&server, &client, &form).await {
        Ok(t) => {
            let held = Held::new(t, now, None, &server.issuer);
            // Kept for its lifetime: nothing in the store to read again.
            s.vault.keep_until(
                &key,
                upstream,
                held.access_token.clone(),
                now,
                held.refresh_at,
            );
            Ok(Some(held.access_token))
        }
        Err(UpstreamError::Refused { error }) => {
            tracing::info!(
                upstream,
                error,
                "the upstream's authorization server refused a token exchange"
            );
            Ok(None)
        }
        Err(e) => Err(ConnectError::upstream(upstream, e)),
    }
}

/// Revokes the person's tokens at the upstream (RFC 7009), when it has an endpoint
/// for it; `secret` is what the connection held. Failures are logged: the tokens are
/// already gone from here.
pub async fn revoke_at_upstream(s: &Authority, upstream: &str, secret: &str) {
    let (Some(up), Some(held)) = (oauth_of(s, upstream), Held::read(secret)) else {
        return;
    };
    let Ok(server) = server(s, upstream, up).await else {
        return;
    };
    if server.revocation_endpoint.is_none() {
        return;
    }
    let Ok(client) = client(s, upstream, &server, up).await else {
        return;
    };
    // The refresh token first: on most servers it takes the access token with it.
    let mut revoke = vec![(held.access_token, "access_token")];
    if let Some(r) = held.refresh_token {
        revoke.insert(0, (r, "refresh_token"));
    }
    for (token, hint) in revoke {
        if let Err(e) = s
            .upstream_oauth
            .revoke(&server, &client, &token, hint)
            .await
        {
            tracing::warn!(upstream, error = %e, "could not revoke a person's token at the upstream");
        }
    }
}
