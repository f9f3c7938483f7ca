//! In-process validation: the authorization server and the guard share one key ring
//! and one revocation list, so a validated request costs a signature check and two
//! hash lookups — no network, no database, no key parsing.

use std::sync::Arc;

use mcpgate_core::clock::Clock;
use mcpgate_core::jwt::{Expectations, KeyRing};
use mcpgate_core::revocation::RevocationList;

use super::{Rejection, TokenValidator};
use crate::principal::Principal;

pub struct LocalJwt {
    pub keys: Arc<KeyRing>,
    pub revoked: Arc<RevocationList>,
    pub expect: Expectations,
    pub clock: Arc<dyn Clock>,
}

#[async_trait::async_trait]
impl TokenValidator for LocalJwt {
    async fn validate(&self, token: &str) -> Result<Principal, Rejection> {
        let claims = self
            .keys
            .verify(token, &self.expect, self.clock.now())
            .map_err(|e| Rejection::Invalid(jwt_reason(&e)))?;
        if self.revoked.is_revoked(&claims.jti)
            || claims
                .session_id
                .as_deref()
                .is_some_and(|g| self.revoked.is_revoked(g))
        {
            return Err(Rejection::Invalid("revoked"));
        }
        Ok(claims.into())
    }
}

pub(crate) fn jwt_reason(e: &mcpgate_core::jwt::JwtError) -> &'static str {
    use mcpgate_core::jwt::JwtError::*;
    match e {
        Malformed | TooLong | BadClaims => "malformed",
        UnsupportedHeader => "unsupported header",
        UnknownKey => "unknown key",
        BadSignature => "bad signature",
        WrongIssuer => "wrong issuer",
        WrongAudience => "wrong audience",
        Expired => "expired",
        NotYetValid => "not yet valid",
    }
}
