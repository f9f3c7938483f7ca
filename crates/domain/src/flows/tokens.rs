//! Minting tokens: a JWT access token (RFC 9068) and an opaque refresh token.

use mcpgate_core::ScopeSet;
use mcpgate_core::jwt::{AccessClaims, Audience, Confirmation};
use mcpgate_core::secret::{Secret, random_id};
use serde::{Deserialize, Serialize};

use crate::Authority;
use crate::model::{RefreshToken, TokenFamily};

/// The token endpoint's success answer (RFC 6749 §5.1).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// What was granted: may be less than requested (RFC 6749 §5.1), e.g. when the
    /// person unticked a scope on the consent page.
    pub scope: String,
    /// RFC 8693 §2.2.1: what a token exchange issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<String>,
}

/// The `token_type` of access tokens bound to a key or not (RFC 9449 §5 and §6.2:
/// `DPoP` when bound), in token responses and introspection alike.
pub fn token_type(bound: bool) -> &'static str {
    if bound { "DPoP" } else { "Bearer" }
}

/// Signs an access token for `family` with `scope`; returns it with its lifetime in
/// seconds (`expires_in`). It ends with the family, whose end is capped by the grant's
/// (a consent that lasts an hour issues no token that lasts longer).
pub fn access_token(
    s: &Authority,
    family: &TokenFamily,
    scope: &ScopeSet,
    username: Option<String>,
) -> (String, i64) {
    let now = s.now();
    let exp = (now + s.cfg.access_ttl_secs).min(family.expires_at);
    let claims = AccessClaims {
        iss: s.cfg.issuer.clone(),
        sub: family.user_id.clone(),
        aud: Audience::One(family.resource.clone()),
        client_id: family.client_id.clone(),
        scope: scope.clone(),
        jti: random_id(),
        iat: now,
        exp,
        nbf: None,
        username,
        session_id: Some(family.id.clone()),
        cnf: family.dpop_jkt.clone().map(|jkt| Confirmation { jkt }),
    };
    (s.keys.sign(&claims), exp - now)
}

/// A new refresh token in `family`: the secret for the client and the row that
/// stores only its hash. Written by the store step that issues it (code exchange or
/// rotation), never on its own.
pub fn refresh_token(family: &TokenFamily, now: i64) -> (Secret, RefreshToken) {
    let token = Secret::generate();
    let row = RefreshToken {
        token_hash: token.hash(),
        family_id: family.id.clone(),
        created_at: now,
        expires_at: family.expires_at,
        rotated_at: None,
        grace_answer: None,
        grace_until: None,
    };
    (token, row)
}

/// The person's login name for the token's `username` claim; a token is still issued
/// without it if the store cannot say.
pub async fn username_of(s: &Authority, user_id: &str) -> Option<String> {
    s.store
        .user(user_id)
        .await
        .ok()
        .flatten()
        .map(|u| u.username)
}
