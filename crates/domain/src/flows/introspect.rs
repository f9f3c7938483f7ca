//! Token introspection (RFC 7662) for resource servers holding introspection
//! credentials. Revoked, expired, unknown or foreign tokens are `{"active": false}`
//! and nothing else (RFC 7662 §2.2).
//!
//! The answer for an active access token: `active`, `token_type` (`Bearer`), `scope`
//! (space-separated), `client_id`, `sub` (the person's id), `username` (their login
//! name), `email` and `email_verified` when the person has an email (set by the
//! operator, so verified), `aud` (a string: the one resource the token is bound to,
//! RFC 8707), `iss`, `exp`, `iat`, `jti`, `sid` (the token family).
//!
//! A refresh token is active only to the client it was issued to (RFC 7662 §2.2 lets
//! the server decide what to disclose to whom). A resource server never needs to see
//! one, and many hand-written resource servers never check `token_type`: answering
//! `active: true` to them would make a 30-day refresh token a bearer token.

use std::sync::{Arc, Mutex};

use mcpgate_core::jwt::{self, AccessClaims, Audience, LEEWAY_SECS, header_kid, key_handle};
use mcpgate_core::secret::hash_token;
use mcpgate_core::token_map::TokenMap;
use serde_json::{Value, json};

use crate::flows::{client_credentials, entitlements};
use crate::{Authority, OAuthResult};

/// Introspects `token` for the authenticated client `requester`.
pub async fn introspect(s: &Authority, token: &str, requester: &str) -> OAuthResult<Value> {
    let now = s.now();
    let inactive = json!({ "active": false });
    if token.len() > jwt::MAX_TOKEN_LEN {
        return Ok(inactive);
    }
    // An access token of ours: verify the signature and issuer; the audience is
    // reported, and the resource server checks it is its own.
    if let Some(checked) = verified(s, token, now) {
        let claims = &checked.claims;
        let revoked = s.revoked.is_revoked(&claims.jti)
            || claims
                .session_id
                .as_deref()
                .is_some_and(|f| s.revoked.is_revoked(f));
        let family_live = match claims.session_id.as_deref() {
            // A machine's token lives as long as the machine does.
            Some(sid) if let Some(machine) = client_credentials::machine_of(sid) => s
                .store
                .client(machine)
                .await?
                .is_some_and(|c| c.machine.is_some()),
            Some(f) => s
                .store
                .family(f)
                .await?
                .is_some_and(|f| f.revoked_at.is_none()),
            None => true,
        };
        if revoked || !family_live {
            return Ok(inactive);
        }
        let machine = claims
            .session_id
            .as_deref()
            .is_some_and(|sid| client_credentials::machine_of(sid).is_some());
        let email = match s.store.user(&claims.sub).await? {
            Some(u) if u.disabled => return Ok(inactive),
            Some(u) => u.email,
            None => None,
        };
        // A token carrying a scope its person may no longer hold is not active: the
        // same answer the guard gives once the withdrawal's revocation reaches it.
        if !machine
            && !entitlements::holdable(s, &claims.sub, &claims.scope)
                .await?
                .withheld
                .is_empty()
        {
            return Ok(inactive);
        }
        return Ok(without_nulls(json!({
            "active": true,
            "scope": claims.scope.to_string(),
            "email": email,
            "email_verified": email.as_ref().map(|_| true),
            "client_id": claims.client_id,
            "username": claims.username,
            "sub": claims.sub,
            "aud": claims.aud,
            "iss": claims.iss,
            "exp": claims.exp,
            "iat": claims.iat,
            "jti": claims.jti,
            "sid": claims.session_id,
            // RFC 9449 §6.2: a bound token says so, with its key.
            "token_type": super::tokens::token_type(claims.cnf.is_some()),
            "cnf": claims.cnf,
        })));
    }
    if let Some(row) = s.store.refresh(&hash_token(token)).await?
        && row.rotated_at.is_none()
        && row.expires_at > now
        && let Some(f) = s.store.family(&row.family_id).await?
        && f.revoked_at.is_none()
        && f.client_id == requester
    {
        let scope = entitlements::holdable(s, &f.user_id, &f.scope).await?.held;
        return Ok(json!({
            "active": true,
            "scope": scope,
            "client_id": f.client_id,
            "sub": f.user_id,
            "aud": Audience::One(f.resource),
            "iss": s.cfg.issuer,
            "exp": row.expires_at,
            "iat": row.created_at,
            "token_type": "refresh_token",
        }));
    }
    Ok(inactive)
}

/// Our access tokens that verified, remembered: a resource server introspects the
/// same token on each call it does not cache, and an Ed25519 verification was a
/// quarter of the endpoint's time. Like the guard's cache ([`TokenMap`]): bounded,
/// only tokens that verified, and expiry and the signing key's retirement checked on
/// every use; everything else [`introspect`] checks afresh each time.
#[derive(Default)]
pub struct Verified(Mutex<TokenMap<Arc<Checked>>>);

/// Most tokens remembered, and most bytes they may hold (the guard's bounds).
const MAX_CACHED: usize = 20_000;
const MAX_CACHED_BYTES: usize = 8 << 20;

impl Verified {
    /// Drops the tokens that expired: they can never be active again. Run with the
    /// periodic sync, so that the map follows the live tokens rather than its bound.
    pub fn sweep(&self, now: i64) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|c| c.claims.exp + LEEWAY_SECS > now);
    }

    /// Tokens held, for the memory log.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A token's claims, and the revocation handle of the key that signed it.
pub struct Checked {
    claims: AccessClaims,
    key: String,
}

/// The claims of `token` if it is an access token of ours (signature, issuer, one of
/// our resources as audience, not expired) whose signing key was not retired.
fn verified(s: &Authority, token: &str, now: i64) -> Option<Arc<Checked>> {
    let live = |c: &Checked| c.claims.exp + LEEWAY_SECS > now && !s.revoked.is_revoked(&c.key);
    let cache = &s.introspected.0;
    if let Some(c) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(token) {
        return live(c).then(|| c.clone());
    }
    // The audience of our tokens is always one of our resources; check against them.
    let claims = s.keys.verify(token, &s.cfg.expectations(), now).ok()?;
    let c = Arc::new(Checked {
        key: key_handle(&header_kid(token).unwrap_or_default()),
        claims,
    });
    if !live(&c) {
        return None;
    }
    // The claims hold no more than the token's payload spells out; the shared
    // allocation holds them and its two counts.
    let bytes = std::mem::size_of::<Checked>() + 16 + c.key.len() + token.len();
    let mut map = cache.lock().unwrap_or_else(|e| e.into_inner());
    let weight = TokenMap::<Arc<Checked>>::weight(token, bytes);
    map.make_room(MAX_CACHED, MAX_CACHED_BYTES, weight, |c| {
        c.claims.exp + LEEWAY_SECS <= now
    });
    map.insert(token, c.clone(), bytes);
    Some(c)
}

/// Members without a value are left out rather than sent as `null` (RFC 7662 §2.2
/// lists them as OPTIONAL).
fn without_nulls(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.retain(|_, m| !m.is_null());
    }
    v
}
