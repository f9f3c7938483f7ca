//! JWT access tokens of any standards-compliant authorization server, verified with the
//! `jsonwebtoken` library against keys read from the issuer's JWK Set.
//!
//! The rules that keep a verifier safe against a hostile token (RFC 8725 §3.1, §3.2;
//! RFC 9068 §4):
//! - the algorithm is pinned per key, from what the JWK declares (`alg`) or, when it
//!   declares nothing, from its key type and curve; a token whose header names another
//!   algorithm is refused before any signature check. `none` is not an algorithm here,
//!   and no key of a JWK Set is ever an HMAC secret (`oct` keys are skipped), so a token
//!   "signed" with HS256 and the public key as the secret finds nothing to verify with;
//! - keys come only from the configured JWK Set, never from the token (`jwk`, `jku`,
//!   `x5u`, `x5c` headers are ignored);
//! - `typ` is `at+jwt` (RFC 9068 §2.1), or, only when the operator allows it, `JWT` or
//!   absent (RFC 7519 §5.1), which many providers still send;
//! - `iss`, the audience (`aud`, or another claim some providers use for the
//!   resource), `exp`, `nbf` and `sub` are checked, with a small leeway for clock skew.
//!
//! Scopes come from `scope` (space-separated, RFC 9068 §2.2.3) or `scp` (an array, or a
//! space-separated string), the forms providers use.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use mcpgate_core::ScopeSet;
use mcpgate_core::jwt::{JwtError, LEEWAY_SECS};
use serde::Deserialize;
use serde_json::Value;

use crate::principal::Principal;

/// Longest token considered. Tokens of other providers carry more claims than ours
/// (groups, roles), so the bound is wider than mcpgate's own.
pub const MAX_EXTERNAL_TOKEN_LEN: usize = 16 * 1024;
/// Most keys read from one JWK Set; real sets hold a handful.
pub const MAX_KEYS: usize = 64;
/// Smallest RSA modulus accepted, in bits (RFC 7518 §3.3: 2048 or larger).
const MIN_RSA_BITS: usize = 2048;

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
}

/// A public key ready to verify, with the algorithms it may be used with.
struct PinnedKey {
    key: DecodingKey,
    /// Algorithms allowed with this key, and the claims the library checks.
    validation: Validation,
}

/// The usable signing keys of a JWK Set, by `kid`.
#[derive(Default)]
pub struct ProviderKeys {
    keys: HashMap<String, PinnedKey>,
    /// Keys without a `kid`, usable only by tokens without one when there is exactly one.
    anonymous: Vec<PinnedKey>,
}

impl ProviderKeys {
    /// Reads the signature keys of a JWK Set (RFC 7517 §5), skipping what cannot be
    /// used safely: encryption keys, symmetric keys, unknown types, algorithms that do
    /// not fit the key, RSA moduli under 2048 bits. Done once per fetch.
    pub fn from_jwks(jwks: &Value, rules: &TokenRules) -> Self {
        let mut out = Self::default();
        let keys = jwks.get("keys").and_then(Value::as_array);
        for raw in keys.into_iter().flatten().take(MAX_KEYS) {
            let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else {
                continue;
            };
            let Some(algorithms) = pinned_algorithms(&jwk) else {
                continue;
            };
            let Ok(key) = DecodingKey::from_jwk(&jwk) else {
                continue;
            };
            // Build a verifier once now: a key the library cannot use is dropped here,
            // not found broken on a request.
            if jsonwebtoken::crypto::verify("", b"", &key, algorithms[0]).is_err() {
                continue;
            }
            let pinned = PinnedKey {
                key,
                validation: validation(algorithms, rules),
            };
            match jwk.common.key_id {
                Some(kid) => {
                    out.keys.insert(kid, pinned);
                }
                None => out.anonymous.push(pinned),
            }
        }
        out
    }

    pub fn len(&self) -> usize {
        self.keys.len() + self.anonymous.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn find(&self, kid: Option<&str>) -> Option<&PinnedKey> {
        match kid {
            Some(kid) => self.keys.get(kid),
            // RFC 7515 §4.1.4: `kid` is optional; without it, only an unambiguous set.
            None if self.len() == 1 => self.keys.values().chain(&self.anonymous).next(),
            None => None,
        }
    }
}

/// The algorithms a key may verify: the one it declares, else those of its type. `None`
/// when the key must not be used for signatures at all.
fn pinned_algorithms(jwk: &Jwk) -> Option<Vec<Algorithm>> {
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|u| *u != PublicKeyUse::Signature)
    {
        return None;
    }
    let by_type: Vec<Algorithm> = match &jwk.algorithm {
        AlgorithmParameters::RSA(p) => {
            let n = URL_SAFE_NO_PAD.decode(&p.n).ok()?;
            let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
            if bits < MIN_RSA_BITS {
                return None;
            }
            vec![
                Algorithm::RS256,
                Algorithm::RS384,
                Algorithm::RS512,
                Algorithm::PS256,
                Algorithm::PS384,
                Algorithm::PS512,
            ]
        }
        AlgorithmParameters::EllipticCurve(p) => {
            let (alg, len) = match p.curve {
                EllipticCurve::P256 => (Algorithm::ES256, 32),
                EllipticCurve::P384 => (Algorithm::ES384, 48),
                _ => return None,
            };
            if decoded_len(&p.x) != Some(len) || decoded_len(&p.y) != Some(len) {
                return None;
            }
            vec![alg]
        }
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            // RFC 8037 §2: `x` is the 32-byte public key.
            if decoded_len(&p.x) != Some(32) {
                return None;
            }
            vec![Algorithm::EdDSA]
        }
        // `oct` (HMAC secrets) and anything else: never a verification key here.
        _ => return None,
    };
    match jwk.common.key_algorithm {
        None => Some(by_type),
        Some(declared) => {
            let declared = match declared {
                KeyAlgorithm::RS256 => Algorithm::RS256,
                KeyAlgorithm::RS384 => Algorithm::RS384,
                KeyAlgorithm::RS512 => Algorithm::RS512,
                KeyAlgorithm::PS256 => Algorithm::PS256,
                KeyAlgorithm::PS384 => Algorithm::PS384,
                KeyAlgorithm::PS512 => Algorithm::PS512,
                KeyAlgorithm::ES256 => Algorithm::ES256,
                KeyAlgorithm::ES384 => Algorithm::ES384,
                KeyAlgorithm::EdDSA => Algorithm::EdDSA,
                _ => return None,
            };
            // A declared algorithm that does not fit the key type is a broken key.
            by_type.contains(&declared).then(|| vec![declared])
        }
    }
}

fn decoded_len(b64: &str) -> Option<usize> {
    URL_SAFE_NO_PAD.decode(b64).ok().map(|v| v.len())
}

fn validation(algorithms: Vec<Algorithm>, rules: &TokenRules) -> Validation {
    let mut v = Validation::new(algorithms[0]);
    v.algorithms = algorithms;
    v.set_issuer(&[&rules.issuer]);
    // Time is checked against the injected clock afterwards, not the library's.
    v.validate_exp = false;
    v.validate_nbf = false;
    if rules.audience_claim == "aud" {
        v.set_audience(&rules.audiences);
        v.set_required_spec_claims(&["iss", "aud", "sub"]);
    } else {
        v.validate_aud = false;
        v.set_required_spec_claims(&["iss", "sub"]);
    }
    v
}

#[derive(Deserialize)]
struct ExternalClaims {
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
    if token.len() > MAX_EXTERNAL_TOKEN_LEN {
        return Err(JwtError::TooLong);
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
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
    let key = keys
        .find(header.kid.as_deref())
        .ok_or(JwtError::UnknownKey)?;
    let data = jsonwebtoken::decode::<ExternalClaims>(token, &key.key, &key.validation)
        .map_err(|e| library_error(e.kind()))?;
    let c = data.claims;
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

fn library_error(kind: &jsonwebtoken::errors::ErrorKind) -> JwtError {
    use jsonwebtoken::errors::ErrorKind as K;
    match kind {
        K::InvalidSignature => JwtError::BadSignature,
        K::InvalidAlgorithm | K::InvalidAlgorithmName | K::UnsupportedAlgorithm => {
            JwtError::UnsupportedHeader
        }
        K::InvalidIssuer => JwtError::WrongIssuer,
        K::InvalidAudience => JwtError::WrongAudience,
        K::MissingRequiredClaim(_) | K::InvalidClaimFormat(_) | K::Json(_) => JwtError::BadClaims,
        K::InvalidEcdsaKey | K::InvalidEddsaKey | K::InvalidRsaKey(_) | K::InvalidKeyFormat => {
            JwtError::BadSignature
        }
        _ => JwtError::Malformed,
    }
}

#[cfg(test)]
#[path = "jose_tests.rs"]
pub(crate) mod tests;
