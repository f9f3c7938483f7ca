//! In-process validation: the authorization server and the guard share one key ring
//! and one revocation list, so a validated request costs no network, no database and
//! no key parsing.
//!
//! Clients reuse one access token for many calls (until it expires), so verified
//! tokens are remembered ([`TokenMap`]): a repeat costs a short hash and a comparison
//! instead of an Ed25519 verification. Expiry and revocation are still checked on
//! every request; the cache is bounded and holds only tokens that verified.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::token_map::TokenMap;
use super::{Reason, Rejection, TokenValidator};
use crate::housekeeping::CacheSize;
use crate::principal::Principal;
use mcpgate_core::clock::Clock;
use mcpgate_core::jwt::{AccessClaims, Expectations, KeyRing, LEEWAY_SECS, header_kid, key_handle};
use mcpgate_core::revocation::RevocationList;

/// Most verified tokens remembered at once (about 1 KB each with the token)...
const MAX_CACHED: usize = 20_000;
/// ...and most bytes they may hold: tokens' sizes are the issuer's choice.
const MAX_CACHED_BYTES: usize = 8 << 20;

pub struct LocalJwt {
    keys: Arc<KeyRing>,
    revoked: Arc<RevocationList>,
    expect: Expectations,
    clock: Arc<dyn Clock>,
    verified: Mutex<TokenMap<Verified>>,
    observer: Option<Arc<dyn CallObserver>>,
}

/// Told of the tokens a validator meets: each token the first time it is verified
/// (a client's first call with it), and each refused one our keys signed, with why
/// (another resource's, expired, revoked). The connection doctor's view of calls. Never
/// called for a token already verified and remembered: not on the hot path of a
/// validated call.
pub trait CallObserver: Send + Sync + 'static {
    fn seen(&self, client_id: &str, accepted: bool, detail: String);
}

/// A token that verified: who it names, and what revocation may name it by.
struct Verified {
    principal: Arc<Principal>,
    jti: Box<str>,
    /// [`key_handle`] of the signing key: retiring the key revokes the token.
    key: Box<str>,
    /// The revocation generation at which neither its jti nor its grant was revoked
    /// (`u64::MAX`: not checked yet).
    clear_at: AtomicU64,
}

impl LocalJwt {
    pub fn new(
        keys: Arc<KeyRing>,
        revoked: Arc<RevocationList>,
        expect: Expectations,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            keys,
            revoked,
            expect,
            clock,
            verified: Mutex::new(TokenMap::default()),
            observer: None,
        }
    }

    /// Tells `observer` of first uses and refusals.
    pub fn with_observer(mut self, observer: Arc<dyn CallObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Says why a token was refused, when our keys signed it (so the client it names
    /// is the one that holds it).
    fn observe_refusal(&self, token: &str, reason: Reason) {
        let Some(o) = &self.observer else { return };
        let Ok(claims) = self.keys.signed_claims(token) else {
            return;
        };
        let here = self.expect.audiences.first().map_or("", String::as_str);
        let detail = match reason {
            Reason::WrongAudience => format!(
                "audience: the token is for {}, not {here}",
                audiences(&claims.aud)
            ),
            Reason::Expired => format!("expired: the token ended at {} (Unix time)", claims.exp),
            Reason::Revoked => "revoked: the grant or token was revoked".to_owned(),
            other => format!("{}: refused at {here}", other.label()),
        };
        o.seen(&claims.client_id, false, detail);
    }

    /// Expiry and revocation, checked on every use, cached or not.
    fn admit(&self, v: &Verified, now: i64) -> Result<Arc<Principal>, Rejection> {
        if v.principal.expires_at + LEEWAY_SECS <= now {
            return Err(Rejection::Invalid(Reason::Expired));
        }
        // Look the ids up only when something was revoked since the last look.
        let generation = self.revoked.generation();
        if v.clear_at.load(Ordering::Relaxed) != generation {
            if self.revoked.is_revoked(&v.jti)
                || self.revoked.is_revoked(&v.key)
                || v.principal
                    .session_id
                    .as_deref()
                    .is_some_and(|s| self.revoked.is_revoked(s))
            {
                return Err(Rejection::Invalid(Reason::Revoked));
            }
            v.clear_at.store(generation, Ordering::Relaxed);
        }
        Ok(v.principal.clone())
    }
}

#[async_trait::async_trait]
impl TokenValidator for LocalJwt {
    async fn validate(&self, token: &str) -> Result<Arc<Principal>, Rejection> {
        let now = self.clock.now();
        if let Some(v) = self
            .verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(token)
        {
            return self.admit(v, now);
        }
        let claims: AccessClaims = match self.keys.verify(token, &self.expect, now) {
            Ok(c) => c,
            Err(e) => {
                let reason = Reason::from(&e);
                self.observe_refusal(token, reason);
                return Err(Rejection::Invalid(reason));
            }
        };
        let client_id = self.observer.as_ref().map(|_| claims.client_id.clone());
        let v = Verified {
            jti: claims.jti.clone().into(),
            key: key_handle(&header_kid(token).unwrap_or_default()).into(),
            principal: Arc::new(claims.into()),
            clear_at: AtomicU64::new(u64::MAX),
        };
        let admitted = self.admit(&v, now);
        if let (Some(o), Some(client)) = (&self.observer, client_id) {
            match &admitted {
                Ok(_) => o.seen(
                    &client,
                    true,
                    format!(
                        "a new token accepted at {}",
                        self.expect.audiences.first().map_or("", String::as_str)
                    ),
                ),
                Err(Rejection::Invalid(r)) => self.observe_refusal(token, *r),
                Err(Rejection::Unavailable(_)) => {}
            }
        }
        let value_bytes = v.principal.heap_bytes() + v.jti.len();
        let mut map = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        let weight = TokenMap::<Verified>::weight(token, value_bytes);
        map.make_room(MAX_CACHED, MAX_CACHED_BYTES, weight, |c| {
            c.principal.expires_at + LEEWAY_SECS <= now
        });
        map.insert(token, v, value_bytes);
        admitted
    }

    fn cache_size(&self) -> CacheSize {
        let map = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        CacheSize {
            entries: map.len(),
            bytes: map.bytes(),
        }
    }

    /// Expired tokens can never be admitted again: their entries go.
    fn sweep(&self) {
        let now = self.clock.now();
        self.verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|c| c.principal.expires_at + LEEWAY_SECS > now);
    }
}

fn audiences(aud: &mcpgate_core::jwt::Audience) -> String {
    match aud {
        mcpgate_core::jwt::Audience::One(a) => a.clone(),
        mcpgate_core::jwt::Audience::Many(v) => v.join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcpgate_core::ScopeSet;
    use mcpgate_core::clock::ManualClock;
    use mcpgate_core::jwt::{Audience, StoredKey};

    fn setup() -> (
        Arc<KeyRing>,
        Arc<RevocationList>,
        Arc<ManualClock>,
        LocalJwt,
    ) {
        let keys = Arc::new(KeyRing::new(&[StoredKey::generate(0)]));
        let revoked = Arc::new(RevocationList::new());
        let clock = Arc::new(ManualClock::new(1000));
        let v = LocalJwt::new(
            keys.clone(),
            revoked.clone(),
            Expectations::new("iss", "aud"),
            clock.clone(),
        );
        (keys, revoked, clock, v)
    }

    fn token(keys: &KeyRing) -> String {
        keys.sign(&AccessClaims {
            iss: "iss".into(),
            sub: "u".into(),
            aud: Audience::One("aud".into()),
            client_id: "c".into(),
            scope: ScopeSet::parse("op:add").unwrap(),
            jti: "j".into(),
            iat: 1000,
            exp: 1100,
            nbf: None,
            username: None,
            session_id: Some("s".into()),
            cnf: None,
        })
    }

    #[tokio::test]
    async fn a_cached_token_still_expires_and_can_be_revoked() {
        let (keys, revoked, clock, v) = setup();
        let t = token(&keys);
        assert!(v.validate(&t).await.is_ok());
        assert!(v.validate(&t).await.is_ok(), "served from the cache");
        revoked.revoke("s", 2000);
        assert_eq!(
            v.validate(&t).await,
            Err(Rejection::Invalid(Reason::Revoked))
        );
        let (keys2, _, clock2, v2) = setup();
        let t2 = token(&keys2);
        assert!(v2.validate(&t2).await.is_ok());
        clock2.advance(100 + LEEWAY_SECS);
        assert_eq!(
            v2.validate(&t2).await,
            Err(Rejection::Invalid(Reason::Expired))
        );
        let _ = clock;
    }

    #[tokio::test]
    async fn a_revocation_after_many_clear_checks_is_still_seen() {
        let (keys, revoked, _, v) = setup();
        let t = token(&keys);
        for _ in 0..3 {
            assert!(v.validate(&t).await.is_ok());
        }
        revoked.revoke("another-grant", 2000);
        assert!(
            v.validate(&t).await.is_ok(),
            "other revocations leave it valid"
        );
        revoked.revoke("j", 2000);
        assert_eq!(
            v.validate(&t).await,
            Err(Rejection::Invalid(Reason::Revoked))
        );
        assert_eq!(
            v.validate(&t).await,
            Err(Rejection::Invalid(Reason::Revoked))
        );
    }

    fn token_with(keys: &KeyRing, jti: &str, exp: i64) -> String {
        keys.sign(&AccessClaims {
            iss: "iss".into(),
            sub: "u".into(),
            aud: Audience::One("aud".into()),
            client_id: "c".into(),
            scope: ScopeSet::parse("op:add op:sub").unwrap(),
            jti: jti.into(),
            iat: 1000,
            exp,
            nbf: None,
            username: Some("alice".into()),
            session_id: Some(format!("s-{jti}")),
            cnf: None,
        })
    }

    #[tokio::test]
    async fn expired_entries_are_swept_and_bytes_are_bounded() {
        let (keys, _, clock, v) = setup();
        for i in 0..100 {
            let exp = if i % 2 == 0 { 1100 } else { 5000 };
            assert!(
                v.validate(&token_with(&keys, &format!("j{i}"), exp))
                    .await
                    .is_ok()
            );
        }
        let full = v.cache_size();
        assert_eq!(full.entries, 100);
        assert!(
            (100 * 600..100 * 2000).contains(&full.bytes),
            "about a kilobyte a token: {full:?}"
        );
        clock.advance(100 + LEEWAY_SECS);
        v.sweep();
        let half = v.cache_size();
        assert_eq!(half.entries, 50, "the expired half is gone");
        assert!(half.bytes < full.bytes * 6 / 10);
        clock.advance(10_000);
        v.sweep();
        assert_eq!(v.cache_size(), CacheSize::default());

        // Many tokens, all valid: the cache holds at most its bytes.
        let big = token_with(&keys, &"j".repeat(2000), 1_000_000);
        let per = TokenMap::<Verified>::weight(&big, 4000);
        let n = MAX_CACHED_BYTES / per * 2;
        for i in 0..n {
            let t = token_with(&keys, &format!("{i:0>2000}"), 1_000_000);
            assert!(v.validate(&t).await.is_ok());
            assert!(v.cache_size().bytes <= MAX_CACHED_BYTES);
        }
        assert!(v.cache_size().entries > 0);
    }

    #[tokio::test]
    async fn a_tampered_token_is_not_a_cache_hit() {
        let (keys, _, _, v) = setup();
        let t = token(&keys);
        assert!(v.validate(&t).await.is_ok());
        let mut bad = t.clone();
        bad.push('A');
        assert!(v.validate(&bad).await.is_err());
    }
}
