//! Token validation, three ways (chosen by configuration):
//! - [`local::LocalJwt`]: mcpgate is its own authorization server; JWTs are checked
//!   against the in-memory key ring and revocation list. No network, no database.
//! - [`jwks::Jwks`]: JWTs of an external authorization server (any algorithm of
//!   [`jose`]), verified against its `jwks_uri`, cached, read again every 5–15 minutes
//!   (as its `max-age` says) and on an unknown `kid` at a bounded rate.
//! - [`introspection::Introspection`]: RFC 7662 against any authorization server,
//!   with a bounded cache.
//!
//! Every mode demands that the audience contains this resource (RFC 8707, MCP
//! "Token Handling") and that the issuer matches.

pub mod discovery;
pub mod introspection;
pub mod jose;
pub mod jwks;
pub mod local;
pub mod token_map;

use std::sync::Arc;

use crate::housekeeping::CacheSize;
use crate::principal::Principal;
use mcpgate_core::jwt::AccessClaims;

/// Longest email address kept from a token or an introspection answer (RFC 5321
/// §4.5.3.1 bounds a path at 256 octets); a longer one is dropped, not cut.
pub const MAX_EMAIL_LEN: usize = 254;

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The token is not valid for this resource (401 `invalid_token`). The reason is
    /// for the log, never for the client.
    Invalid(&'static str),
    /// Validity could not be decided (the authorization server is unreachable): 503.
    Unavailable(String),
}

/// Validates a bearer token and names its principal. The principal is shared: a
/// token reused for many calls is validated into the same `Arc`, not copied per call.
#[async_trait::async_trait]
pub trait TokenValidator: Send + Sync + 'static {
    async fn validate(&self, token: &str) -> Result<Arc<Principal>, Rejection>;

    /// What the validator keeps for the tokens it has seen.
    fn cache_size(&self) -> CacheSize {
        CacheSize::default()
    }

    /// Drops what it keeps for tokens that have expired. Called off the request path
    /// ([`crate::housekeeping::spawn_housekeeping`]).
    fn sweep(&self) {}
}

impl From<AccessClaims> for Principal {
    fn from(c: AccessClaims) -> Self {
        Principal {
            subject: c.sub,
            username: c.username,
            // mcpgate's own tokens carry no email (a gateway looks it up by subject).
            email: None,
            client_id: c.client_id,
            scopes: c.scope,
            session_id: c.session_id,
            expires_at: c.exp,
        }
    }
}
