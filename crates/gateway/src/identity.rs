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

/// The identity policy of one upstream.
#[derive(Clone)]
pub struct Identity {
    pub mode: IdentityMode,
    pub audience: String,
    pub signer: Option<JwtSigner>,
}

static USER: HeaderName = HeaderName::from_static("x-forwarded-user");
static SUBJECT: HeaderName = HeaderName::from_static("x-forwarded-subject");
static CLIENT: HeaderName = HeaderName::from_static("x-forwarded-client-id");
static SCOPES: HeaderName = HeaderName::from_static("x-forwarded-scopes");

impl Identity {
    /// Adds the caller's identity to headers bound for the upstream (which
    /// [`crate::headers::for_upstream`] has already cleaned of the client's own).
    pub fn apply(&self, p: &Principal, headers: &mut HeaderMap) {
        match self.mode {
            IdentityMode::None => {}
            IdentityMode::Headers => {
                let mut put = |name: &HeaderName, v: &str| {
                    if let Ok(v) = HeaderValue::from_str(v) {
                        headers.insert(name.clone(), v);
                    }
                };
                put(&USER, p.display_name());
                put(&SUBJECT, &p.subject);
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
    /// mcpgate's own resources, so it cannot be replayed against mcpgate).
    pub fn jwt(&self, p: &Principal) -> Option<String> {
        let s = self.signer.as_ref()?;
        let now = s.clock.now();
        let claims = AccessClaims {
            iss: s.issuer.clone(),
            sub: p.subject.clone(),
            aud: Audience::One(self.audience.clone()),
            client_id: p.client_id.clone(),
            scope: p.scopes.clone(),
            jti: random_id(),
            iat: now,
            exp: now + JWT_TTL_SECS,
            nbf: None,
            username: p.username.clone(),
            session_id: None,
        };
        Some(s.keys.sign(&claims))
    }
}
