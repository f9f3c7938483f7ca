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
pub use mcpgate_core::token_map;

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
    /// for the log and the metrics, never for the client.
    Invalid(Reason),
    /// Validity could not be decided (the authorization server is unreachable): 503.
    Unavailable(String),
}

/// Why a token is not valid here. A closed set, so that every refusal has one bounded
/// metric label (`mcpgate_token_validation_failures_total{reason}`) and a new reason
/// is a compile error where labels are named, not a silent "malformed".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Not a JWT, bad claims, or longer than any token we would issue.
    Malformed,
    /// A JOSE header we do not accept (`alg`, `typ`, `crit`).
    UnsupportedHeader,
    UnknownKey,
    BadSignature,
    WrongIssuer,
    /// Issued for another resource (RFC 8707).
    WrongAudience,
    Expired,
    NotYetValid,
    /// Revoked at the authorization server before it expired.
    Revoked,
    /// Introspection answered `active: false` (RFC 7662 §2.2).
    Inactive,
    /// Introspection described a token that is not an access token.
    NotAnAccessToken,
    /// The scope claim is not a valid scope list (RFC 6749 §3.3).
    BadScope,
    NoSubject,
}

impl Reason {
    /// The metric label: snake_case, one per variant.
    pub fn label(self) -> &'static str {
        match self {
            Reason::Malformed => "malformed",
            Reason::UnsupportedHeader => "unsupported_header",
            Reason::UnknownKey => "unknown_key",
            Reason::BadSignature => "bad_signature",
            Reason::WrongIssuer => "wrong_issuer",
            Reason::WrongAudience => "wrong_audience",
            Reason::Expired => "expired",
            Reason::NotYetValid => "not_yet_valid",
            Reason::Revoked => "revoked",
            Reason::Inactive => "inactive",
            Reason::NotAnAccessToken => "not_an_access_token",
            Reason::BadScope => "bad_scope",
            Reason::NoSubject => "no_subject",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

impl From<&mcpgate_core::jwt::JwtError> for Reason {
    fn from(e: &mcpgate_core::jwt::JwtError) -> Self {
        use mcpgate_core::jwt::JwtError::*;
        match e {
            Malformed | TooLong | BadClaims => Reason::Malformed,
            UnsupportedHeader => Reason::UnsupportedHeader,
            UnknownKey => Reason::UnknownKey,
            BadSignature => Reason::BadSignature,
            WrongIssuer => Reason::WrongIssuer,
            WrongAudience => Reason::WrongAudience,
            Expired => Reason::Expired,
            NotYetValid => Reason::NotYetValid,
        }
    }
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
            jkt: c.cnf.map(|c| c.jkt),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Reason::{self, *};

    const ALL: [Reason; 13] = [
        Malformed,
        UnsupportedHeader,
        UnknownKey,
        BadSignature,
        WrongIssuer,
        WrongAudience,
        Expired,
        NotYetValid,
        Revoked,
        Inactive,
        NotAnAccessToken,
        BadScope,
        NoSubject,
    ];

    /// Labels are metric label values: distinct, bounded, snake_case.
    #[test]
    fn every_reason_has_its_own_label() {
        let labels: std::collections::HashSet<_> = ALL.iter().map(|r| r.label()).collect();
        assert_eq!(labels.len(), ALL.len());
        for l in labels {
            assert!(
                l.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{l}"
            );
        }
    }
}
