//! JWT access tokens of any standards-compliant authorization server, verified against
//! keys read from the issuer's JWK Set with [`mcpgate_core::jose`] (algorithms pinned
//! per key, no HMAC, no key from the token; RFC 8725 §3.1, §3.2). Besides the signature
//! (RFC 9068 §4):
//! - `typ` is `at+jwt` (RFC 9068 §2.1), or, only when the operator allows it, `JWT` or
//!   absent (RFC 7519 §5.1), which many providers still send;
//! - `iss`, the audience (`aud`, or another claim some providers use for the
//!   resource), `exp`, `nbf` and `sub` are checked, with a small leeway for clock skew.
//!
//! Scopes come from `scope` (space-separated, RFC 9068 §2.2.3) or `scp` (an array, or a
//! space-separated string), the forms providers use.

use std::collections::HashMap;

use jsonwebtoken::Validation;
use mcpgate_core::ScopeSet;
use mcpgate_core::jose;
use mcpgate_core::jwt::{JwtError, LEEWAY_SECS};
use serde::Deserialize;
use serde_json::Value;

use crate::principal::Principal;

/// Longest token considered (see [`mcpgate_core::jose::MAX_LEN`]).
pub const MAX_EXTERNAL_TOKEN_LEN: usize = jose::MAX_LEN;

/// What a token must say besides carrying a good signature.
#[derive(Debug, Clone)]
pub struct TokenRules {
    /// The issuer identifier, compared exactly.
    pub issuer: String,
    /// Accepted audiences: the audience claim must contain one of them (RFC 8707).
    pub audiences: Vec<String>,
    /// The claim that names the resource: `aud` unless the provider uses another one.
    pub audience_claim: String,
    /// Accept `typ: JWT` (or no `typ`) as well as `at+jwt`.
    pub accept_plain_jwt: bool,
}

impl TokenRules {
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audiences: vec![audience.into()],
            audience_claim: "aud".into(),
            accept_plain_jwt: false,
        }
    }

    /// What the library checks besides the signature: the issuer, the audience when
    /// it is `aud`, and the claims a token must carry.
    fn apply(&self, v: &mut Validation) {
        v.set_issuer(&[&self.issuer]);
        if self.audience_claim == "aud" {
            v.validate_aud = true;
            v.set_audience(&self.audiences);
            v.set_required_spec_claims(&["iss", "aud", "sub"]);
        } else {
            v.set_required_spec_claims(&["iss", "sub"]);
        }
    }
}

/// The usable signing keys of an issuer's JWK Set.
pub type ProviderKeys = jose::PublicKeys;

/// `cnf` of another issuer's token: only its DPoP member matters here.
#[derive(Deserialize)]
struct ExternalConfirmation {
    #[serde(default)]
    jkt: Option<String>,
}

#[derive(Deserialize)]
struct ExternalClaims {
    /// RFC 9449 §6.1: a DPoP-bound token is valid only with a proof of that key.
    #[serde(default)]
    cnf: Option<ExternalConfirmation>,
    sub: String,
    exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    scp: Option<Value>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    azp: Option<String>,
    /// Okta's name for the client.
    #[serde(default)]
    cid: Option<String>,
    /// Entra ID v1's name for the client.
    #[serde(default)]
    appid: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    preferred_username: Option<String>,
    /// OpenID Connect Core §5.1; many providers put it in access tokens too.
    #[serde(default)]
    email: Option<String>,
    #[serde(flatten)]
    rest: HashMap<String, Value>,
}

/// Verifies an access token of an external issuer and names its principal.
pub fn verify(
    token: &str,
    keys: &ProviderKeys,
    rules: &TokenRules,
    now: i64,
) -> Result<Principal, JwtError> {
    let header = jose::header(token)?;
    // RFC 9068 §4: `at+jwt` keeps an ID token or another JWT of the same issuer from
    // passing as an access token; `JWT` is accepted only when the operator says so.
    let typ_ok = match header
        .typ
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("at+jwt" | "application/at+jwt") => true,
        Some("jwt" | "application/jwt") | None => rules.accept_plain_jwt,
        Some(_) => false,
    };
    if !typ_ok {
        return Err(JwtError::UnsupportedHeader);
    }
    let c: ExternalClaims = jose::verify(token, keys, |v| rules.apply(v))?;
    if rules.audience_claim != "aud" {
        let ok = match c.rest.get(&rules.audience_claim) {
            Some(Value::String(s)) => rules.audiences.contains(s),
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .any(|s| rules.audiences.iter().any(|w| w == s)),
            _ => false,
        };
        if !ok {
            return Err(JwtError::WrongAudience);
        }
    }
    if c.exp + LEEWAY_SECS <= now {
        return Err(JwtError::Expired);
    }
    if c.nbf.is_some_and(|nbf| nbf > now + LEEWAY_SECS) {
        return Err(JwtError::NotYetValid);
    }
    let scopes = scopes(c.scope.as_deref(), c.scp.as_ref())?;
    Ok(Principal {
        subject: c.sub,
        username: c.username.or(c.preferred_username),
        email: c.email.filter(|e| e.len() <= super::MAX_EMAIL_LEN),
        client_id: c
            .client_id
            .or(c.azp)
            .or(c.cid)
            .or(c.appid)
            .unwrap_or_default(),
        scopes,
        session_id: None,
        jkt: c.cnf.and_then(|c| c.jkt),
        expires_at: c.exp,
    })
}

/// Scopes from `scope` (RFC 9068 §2.2.3, space-separated) or `scp` (array or string).
fn scopes(scope: Option<&str>, scp: Option<&Value>) -> Result<ScopeSet, JwtError> {
    let joined;
    let text = match (scope, scp) {
        (Some(s), _) => s,
        (None, Some(Value::String(s))) => s,
        (None, Some(Value::Array(a))) => {
            let parts: Option<Vec<&str>> = a.iter().map(Value::as_str).collect();
            joined = parts.ok_or(JwtError::BadClaims)?.join(" ");
            &joined
        }
        (None, Some(_)) => return Err(JwtError::BadClaims),
        (None, None) => "",
    };
    ScopeSet::parse(text).map_err(|_| JwtError::BadClaims)
}

#[cfg(test)]
#[path = "jose_tests.rs"]
pub(crate) mod tests;
