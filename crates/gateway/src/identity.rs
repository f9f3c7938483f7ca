//! What the upstream learns about the caller (configurable per upstream): nothing,
//! `X-Forwarded-*` headers, or a short-lived JWT signed by mcpgate for the upstream's
//! own audience. Never the client's token (MCP "Access Token Privilege Restriction").

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue, header};
use mcpgate_core::clock::Clock;
use mcpgate_core::jwt::{AccessClaims, Audience, KeyRing};
use mcpgate_core::secret::random_id;
use mcpgate_mcp::Principal;

use crate::config::IdentityMode;
use crate::jwt_cache::JwtCache;

/// Lifetime of identity JWTs: one request's worth, with room for clock skew.
pub const JWT_TTL_SECS: i64 = 60;

/// Signs identity JWTs with the authorization server's current key (keys are parsed
/// once, when the ring loads: no key parsing per request).
#[derive(Clone)]
pub struct JwtSigner {
    pub keys: Arc<KeyRing>,
    pub issuer: String,
    pub clock: Arc<dyn Clock>,
}

/// Where the gateway finds a person's email when the access token does not carry it
/// (mcpgate's own tokens do not: the authorization server knows it by subject).
#[async_trait::async_trait]
pub trait EmailDirectory: Send + Sync {
    async fn email(&self, subject: &str) -> Option<String>;
}

/// The identity policy of one upstream.
#[derive(Clone)]
pub struct Identity {
    pub mode: IdentityMode,
    pub audience: String,
    pub signer: Option<JwtSigner>,
    /// Finds `X-Forwarded-Email` when the token has no `email`.
    pub emails: Option<Arc<dyn EmailDirectory>>,
    cache: Arc<JwtCache>,
}

static USER: HeaderName = HeaderName::from_static("x-forwarded-user");
static SUBJECT: HeaderName = HeaderName::from_static("x-forwarded-subject");
static EMAIL: HeaderName = HeaderName::from_static("x-forwarded-email");
static CLIENT: HeaderName = HeaderName::from_static("x-forwarded-client-id");
static SCOPES: HeaderName = HeaderName::from_static("x-forwarded-scopes");

impl Identity {
    pub fn new(mode: IdentityMode, audience: String, signer: Option<JwtSigner>) -> Self {
        Self {
            mode,
            audience,
            signer,
            emails: None,
            cache: Arc::new(JwtCache::default()),
        }
    }

    pub fn with_emails(mut self, emails: Arc<dyn EmailDirectory>) -> Self {
        self.emails = Some(emails);
        self
    }

    /// Adds the caller's identity to headers bound for the upstream (which
    /// [`crate::headers::for_upstream`] has already cleaned of the client's own).
    pub async fn apply(&self, p: &Principal, headers: &mut HeaderMap) {
        match self.mode {
            IdentityMode::None => {}
            IdentityMode::Headers => {
                let email = match (&p.email, &self.emails) {
                    (Some(e), _) => Some(e.clone()),
                    (None, Some(d)) => d.email(&p.subject).await,
                    (None, None) => None,
                };
                let mut put = |name: &HeaderName, v: &str| {
                    if let Ok(v) = HeaderValue::from_str(v) {
                        headers.insert(name.clone(), v);
                    }
                };
                put(&USER, p.display_name());
                put(&SUBJECT, &p.subject);
                if let Some(e) = &email {
                    put(&EMAIL, e);
                }
                put(&CLIENT, &p.client_id);
                put(&SCOPES, &p.scopes.to_string());
            }
            IdentityMode::Jwt => {
                if let Some(token) = self.jwt(p)
                    && let Ok(v) = HeaderValue::from_str(&format!("Bearer {token}"))
                {
                    headers.insert(header::AUTHORIZATION, v);
                }
            }
        }
    }

    /// A JWT for the upstream's audience (RFC 9068 claims; `aud` is never one of
    /// mcpgate's own resources, so it cannot be replayed against mcpgate). One signed
    /// for the same caller is reused for most of its lifetime ([`JwtCache`]).
    pub fn jwt(&self, p: &Principal) -> Option<String> {
        let s = self.signer.as_ref()?;
        let now = s.clock.now();
        if let Some(t) = self.cache.get(p, now) {
            return Some(t);
        }
        let exp = now + JWT_TTL_SECS;
        let claims = AccessClaims {
            iss: s.issuer.clone(),
            sub: p.subject.clone(),
            aud: Audience::One(self.audience.clone()),
            client_id: p.client_id.clone(),
            scope: p.scopes.clone(),
            jti: random_id(),
            iat: now,
            exp,
            nbf: None,
            username: p.username.clone(),
            session_id: None,
            cnf: None,
        };
        // Its own `typ`: an upstream that replays it at mcpgate (at another upstream,
        // or a resource sharing its audience) presents no access token.
        let token = s.keys.sign_typed(&claims, mcpgate_core::jwt::IDENTITY_TYP);
        self.cache.put(p, token.clone(), exp, now);
        Some(token)
    }

    /// How many identity JWTs are cached, and the bytes they hold.
    pub fn cache_size(&self) -> (usize, usize) {
        self.cache.size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcpgate_core::ScopeSet;
    use mcpgate_core::clock::ManualClock;
    use mcpgate_core::jwt::{Expectations, StoredKey};

    fn caller(sub: &str, scopes: &str) -> Principal {
        Principal {
            subject: sub.into(),
            username: Some("alice".into()),
            email: None,
            client_id: "c1".into(),
            scopes: ScopeSet::parse(scopes).unwrap(),
            session_id: None,
            expires_at: 0,
            jkt: None,
        }
    }

    fn identity(clock: Arc<ManualClock>) -> Identity {
        let keys = Arc::new(KeyRing::new(&[StoredKey::generate(0)]));
        Identity::new(
            IdentityMode::Jwt,
            "urn:mcpgate:upstream:x".into(),
            Some(JwtSigner {
                keys,
                issuer: "http://as".into(),
                clock,
            }),
        )
    }

    #[test]
    fn identity_jwt_is_reused_then_renewed_before_it_expires() {
        let clock = Arc::new(ManualClock::new(1_000));
        let id = identity(clock.clone());
        let alice = caller("alice", "a b");
        let first = id.jwt(&alice).unwrap();
        clock.advance(30);
        assert_eq!(id.jwt(&alice).unwrap(), first, "reused within its lifetime");
        // Another person, client or scope set gets a token of their own.
        assert_ne!(id.jwt(&caller("bob", "a b")).unwrap(), first);
        assert_ne!(id.jwt(&caller("alice", "a")).unwrap(), first);
        let mut other_client = caller("alice", "a b");
        other_client.client_id = "c2".into();
        assert_ne!(id.jwt(&other_client).unwrap(), first);
        // Near its end (less than the margin left), a fresh one is signed, valid for
        // the full lifetime from now.
        clock.advance(JWT_TTL_SECS - 30 - crate::jwt_cache::MIN_REMAINING_SECS + 1);
        let renewed = id.jwt(&alice).unwrap();
        assert_ne!(renewed, first);
        let claims = decode_claims(&renewed);
        assert_eq!(claims["exp"], clock.now() + JWT_TTL_SECS);
        assert_eq!(claims["sub"], "alice");
    }

    fn decode_claims(token: &str) -> serde_json::Value {
        use base64::Engine;
        let part = |i: usize| {
            let b = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(token.split('.').nth(i).unwrap())
                .unwrap();
            serde_json::from_slice::<serde_json::Value>(&b).unwrap()
        };
        assert_eq!(part(0)["typ"], mcpgate_core::jwt::IDENTITY_TYP);
        part(1)
    }

    /// Before, an identity JWT was an RFC 9068 access token: an upstream could replay
    /// it wherever its audience was accepted and act as the person there.
    #[test]
    fn an_identity_jwt_is_never_an_access_token() {
        let clock = Arc::new(ManualClock::new(1_000));
        let id = identity(clock.clone());
        let token = id.jwt(&caller("alice", "a")).unwrap();
        let s = id.signer.as_ref().unwrap();
        let expect = Expectations::new("http://as", "urn:mcpgate:upstream:x");
        let refused = s.keys.verify(&token, &expect, clock.now());
        assert_eq!(
            refused.unwrap_err(),
            mcpgate_core::jwt::JwtError::UnsupportedHeader,
            "the same issuer, key and audience, and still no access token"
        );
    }

    #[tokio::test]
    async fn headers_carry_the_email_from_the_token_or_the_directory() {
        struct Book;
        #[async_trait::async_trait]
        impl EmailDirectory for Book {
            async fn email(&self, subject: &str) -> Option<String> {
                (subject == "alice").then(|| "alice@example.com".to_owned())
            }
        }
        let id =
            Identity::new(IdentityMode::Headers, "aud".into(), None).with_emails(Arc::new(Book));
        let mut h = HeaderMap::new();
        id.apply(&caller("alice", "a"), &mut h).await;
        assert_eq!(h["x-forwarded-email"], "alice@example.com");
        assert_eq!(h["x-forwarded-user"], "alice");
        let mut h = HeaderMap::new();
        id.apply(&caller("bob", "a"), &mut h).await;
        assert!(h.get("x-forwarded-email").is_none());
        let mut carried = caller("bob", "a");
        carried.email = Some("bob@example.org".into());
        let mut h = HeaderMap::new();
        id.apply(&carried, &mut h).await;
        assert_eq!(h["x-forwarded-email"], "bob@example.org");
    }
}
