//! JWT access tokens (RFC 9068), signed with Ed25519 (`EdDSA`, RFC 8037).
//!
//! Keys are parsed once, when the ring is loaded; signing and verification then work
//! on ready key objects, so the per-request path does no key parsing. Verification
//! follows RFC 9068 §4: `typ` is `at+jwt`, the algorithm is the one the key is for
//! (never taken from the token alone), the signature, `iss`, `aud`, `exp`, `nbf`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::scope::ScopeSet;

/// Longest token we try to decode; ours are well under 1 KiB.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: i64 = 30;

/// The claims of an mcpgate access token (RFC 9068 §2.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Audience,
    pub client_id: String,
    #[serde(default)]
    pub scope: ScopeSet,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// The person's username, for logs and the tool's view of the caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The token family (one authorization code and its refreshes) the token belongs
    /// to: the handle revocation works on. Revoking the family, or the grant it is
    /// under, ends the token.
    #[serde(default, rename = "sid", skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The key the token is bound to (RFC 9449 §6.1, `cnf.jkt`): a DPoP token, valid
    /// only with a proof signed by that key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// `cnf` (RFC 7800 §3.1), with the DPoP key's thumbprint (RFC 9449 §6.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    pub jkt: String,
}

/// `aud`: one string or an array of strings (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn contains(&self, want: &str) -> bool {
        match self {
            Self::One(a) => a == want,
            Self::Many(v) => v.iter().any(|a| a == want),
        }
    }
}

/// The `typ` of access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The `typ` of the identity JWTs the gateway sends upstreams: what mcpgate vouches
/// for about a caller, for one upstream's audience, never an access token to anything
/// mcpgate protects.
pub const IDENTITY_TYP: &str = "mcpgate-identity+jwt";

/// Why a token was refused. The guard collapses all of these into `invalid_token`
/// for the client; the variant is for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("not a compact JWS")]
    Malformed,
    #[error("token too long")]
    TooLong,
    #[error("unsupported typ or alg")]
    UnsupportedHeader,
    #[error("unknown key id")]
    UnknownKey,
    #[error("bad signature")]
    BadSignature,
    #[error("claims are not valid JSON of the expected shape")]
    BadClaims,
    #[error("wrong issuer")]
    WrongIssuer,
    #[error("wrong audience")]
    WrongAudience,
    #[error("expired")]
    Expired,
    #[error("not yet valid")]
    NotYetValid,
}

#[derive(Debug, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
}

/// A signing key as stored: its id, its 32-byte Ed25519 seed, and when it was made.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub kid: String,
    pub seed: [u8; 32],
    pub created_at: i64,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .finish()
    }
}

impl StoredKey {
    pub fn generate(now: i64) -> Self {
        let seed = crate::secret::random_bytes::<32>();
        let kid = URL_SAFE_NO_PAD.encode(crate::secret::random_bytes::<9>());
        Self {
            kid,
            seed,
            created_at: now,
        }
    }
}

/// Public keys by `kid`, ready to verify.
#[derive(Debug, Clone, Default)]
pub struct VerifyingKeys(HashMap<String, VerifyingKey>);

impl VerifyingKeys {
    pub fn insert(&mut self, kid: String, key: VerifyingKey) {
        self.0.insert(kid, key);
    }

    /// Reads the Ed25519 keys of a JWK Set (RFC 7517, RFC 8037 §2); other key types
    /// are skipped. Done once per fetch, never per request.
    pub fn from_jwks(jwks: &serde_json::Value) -> Self {
        let mut out = Self::default();
        for k in jwks
            .get("keys")
            .and_then(|k| k.as_array())
            .into_iter()
            .flatten()
        {
            let s = |n: &str| k.get(n).and_then(|v| v.as_str());
            if s("kty") != Some("OKP") || s("crv") != Some("Ed25519") {
                continue;
            }
            if s("use").is_some_and(|u| u != "sig") {
                continue;
            }
            let (Some(kid), Some(x)) = (s("kid"), s("x")) else {
                continue;
            };
            let Ok(bytes) = URL_SAFE_NO_PAD.decode(x) else {
                continue;
            };
            let Ok(arr) = <[u8; 32]>::try_from(bytes.as_slice()) else {
                continue;
            };
            if let Ok(vk) = VerifyingKey::from_bytes(&arr) {
                out.insert(kid.to_owned(), vk);
            }
        }
        out
    }

    pub fn contains(&self, kid: &str) -> bool {
        self.0.contains_key(kid)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What a verifier demands of a token besides a good signature.
#[derive(Debug, Clone)]
pub struct Expectations {
    pub issuer: String,
    /// Accepted audiences: the token's `aud` must contain one of them.
    pub audiences: Vec<String>,
}

impl Expectations {
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audiences: vec![audience.into()],
        }
    }
}

/// The revocation handle that names every token signed by key `kid`: retiring a key
/// revokes it, so that tokens verified before the retirement (and remembered as such
/// by a validator) are refused as well.
pub fn key_handle(kid: &str) -> String {
    format!("kid:{kid}")
}

/// The `kid` in a compact JWS header, unverified (to name the key a token claims).
pub fn header_kid(token: &str) -> Option<String> {
    let h = token.split('.').next()?;
    if h.len() > MAX_TOKEN_LEN {
        return None;
    }
    let header: Header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
    header.kid
}

/// Verifies a compact JWS access token and returns its claims.
pub fn verify(
    token: &str,
    keys: &VerifyingKeys,
    expect: &Expectations,
    now: i64,
) -> Result<AccessClaims, JwtError> {
    let claims = signed_claims(token, keys)?;
    if claims.iss != expect.issuer {
        return Err(JwtError::WrongIssuer);
    }
    // RFC 8707 / MCP "Token Handling": the token must be meant for this resource.
    if !expect.audiences.iter().any(|a| claims.aud.contains(a)) {
        return Err(JwtError::WrongAudience);
    }
    if claims.exp + LEEWAY_SECS <= now {
        return Err(JwtError::Expired);
    }
    if claims.nbf.is_some_and(|nbf| nbf > now + LEEWAY_SECS) {
        return Err(JwtError::NotYetValid);
    }
    Ok(claims)
}

/// The claims of a token signed by one of `keys`, with no check of what they say
/// (issuer, audience, time): [`verify`]'s first half. Only for saying why a token our
/// keys signed was refused, never for accepting one.
pub fn signed_claims(token: &str, keys: &VerifyingKeys) -> Result<AccessClaims, JwtError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwtError::TooLong);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let header: Header = URL_SAFE_NO_PAD
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(JwtError::Malformed)?;
    // RFC 9068 §4: typ MUST be at+jwt (or application/at+jwt); this stops an ID token
    // or another JWT from the same issuer being replayed as an access token.
    let typ_ok = header.typ.as_deref().is_some_and(|t| {
        t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
    });
    if header.alg != "EdDSA" || !typ_ok {
        return Err(JwtError::UnsupportedHeader);
    }
    let key = header
        .kid
        .as_deref()
        .and_then(|k| keys.0.get(k))
        .ok_or(JwtError::UnknownKey)?;
    let sig_bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| JwtError::Malformed)?;
    let sig = Signature::from_slice(&sig_bytes).map_err(|_| JwtError::Malformed)?;
    let signing_input_len = h.len() + 1 + p.len();
    key.verify_strict(&token.as_bytes()[..signing_input_len], &sig)
        .map_err(|_| JwtError::BadSignature)?;
    URL_SAFE_NO_PAD
        .decode(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(JwtError::BadClaims)
}

struct Ring {
    current: (String, SigningKey),
    verifying: VerifyingKeys,
    public_jwks: serde_json::Value,
}

/// The signing keys of this authorization server: the newest signs, all published
/// ones verify, so that tokens signed before a rotation stay valid until they expire.
pub struct KeyRing {
    ring: RwLock<Arc<Ring>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyRing(***)")
    }
}

impl KeyRing {
    /// Builds the ring from stored keys; the newest one signs. Panics on an empty list:
    /// callers create a first key before building a ring.
    pub fn new(keys: &[StoredKey]) -> Self {
        Self {
            ring: RwLock::new(Arc::new(Self::build(keys))),
        }
    }

    fn build(keys: &[StoredKey]) -> Ring {
        let newest = keys
            .iter()
            .max_by_key(|k| (k.created_at, k.kid.clone()))
            .expect("at least one signing key");
        let mut verifying = VerifyingKeys::default();
        let mut jwks = Vec::new();
        for k in keys {
            let vk = SigningKey::from_bytes(&k.seed).verifying_key();
            jwks.push(json!({
                "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA",
                "kid": k.kid, "x": URL_SAFE_NO_PAD.encode(vk.as_bytes()),
            }));
            verifying.insert(k.kid.clone(), vk);
        }
        Ring {
            current: (newest.kid.clone(), SigningKey::from_bytes(&newest.seed)),
            verifying,
            public_jwks: json!({ "keys": jwks }),
        }
    }

    /// Replaces the keys (after a rotation, possibly by another process or instance).
    pub fn reload(&self, keys: &[StoredKey]) {
        if keys.is_empty() {
            return;
        }
        let ring = Arc::new(Self::build(keys));
        *self.ring.write().unwrap_or_else(|e| e.into_inner()) = ring;
    }

    fn snapshot(&self) -> Arc<Ring> {
        self.ring.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The kids of every key that verifies.
    pub fn kids(&self) -> Vec<String> {
        let mut kids: Vec<String> = self.snapshot().verifying.0.keys().cloned().collect();
        kids.sort();
        kids
    }

    /// The kid of the key that signs now.
    pub fn current_kid(&self) -> String {
        self.snapshot().current.0.clone()
    }

    /// The public JWK Set for `/jwks.json`.
    pub fn jwks(&self) -> serde_json::Value {
        self.snapshot().public_jwks.clone()
    }

    /// Signs an access token (RFC 9068: `typ` `at+jwt`).
    pub fn sign(&self, claims: &AccessClaims) -> String {
        self.sign_typed(claims, ACCESS_TOKEN_TYP)
    }

    /// Signs a JWT of another kind, named by `typ` (RFC 7515 §4.1.9): one that no
    /// verifier of access tokens here takes for one ([`verify`] wants `at+jwt`).
    pub fn sign_typed(&self, claims: &AccessClaims, typ: &str) -> String {
        let ring = self.snapshot();
        let (kid, key) = &ring.current;
        let header = json!({ "alg": "EdDSA", "typ": typ, "kid": kid });
        let mut out = URL_SAFE_NO_PAD.encode(header.to_string());
        out.push('.');
        out.push_str(
            &URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize")),
        );
        let sig = key.sign(out.as_bytes());
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(sig.to_bytes()));
        out
    }

    pub fn verify(
        &self,
        token: &str,
        expect: &Expectations,
        now: i64,
    ) -> Result<AccessClaims, JwtError> {
        verify(token, &self.snapshot().verifying, expect, now)
    }

    /// See [`signed_claims`].
    pub fn signed_claims(&self, token: &str) -> Result<AccessClaims, JwtError> {
        signed_claims(token, &self.snapshot().verifying)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(now: i64) -> AccessClaims {
        AccessClaims {
            iss: "http://as".into(),
            sub: "u1".into(),
            aud: Audience::One("http://rs/mcp".into()),
            client_id: "c1".into(),
            scope: ScopeSet::parse("op:add").unwrap(),
            jti: "j1".into(),
            iat: now,
            exp: now + 300,
            nbf: None,
            username: Some("alice".into()),
            session_id: Some("g1".into()),
            cnf: None,
        }
    }

    fn expect() -> Expectations {
        Expectations::new("http://as", "http://rs/mcp")
    }

    #[test]
    fn sign_then_verify_round_trips() {
        let ring = KeyRing::new(&[StoredKey::generate(0)]);
        let t = ring.sign(&claims(1000));
        assert_eq!(ring.verify(&t, &expect(), 1000).unwrap(), claims(1000));
    }

    #[test]
    fn rejects_wrong_iss_aud_and_expiry() {
        let ring = KeyRing::new(&[StoredKey::generate(0)]);
        let t = ring.sign(&claims(1000));
        let mut e = expect();
        e.issuer = "http://other".into();
        assert_eq!(ring.verify(&t, &e, 1000), Err(JwtError::WrongIssuer));
        let mut e = expect();
        e.audiences = vec!["http://rs/other".into()];
        assert_eq!(ring.verify(&t, &e, 1000), Err(JwtError::WrongAudience));
        assert_eq!(
            ring.verify(&t, &expect(), 1000 + 300 + LEEWAY_SECS),
            Err(JwtError::Expired)
        );
    }

    #[test]
    fn rejects_other_keys_and_tampering() {
        let ring = KeyRing::new(&[StoredKey::generate(0)]);
        let other = KeyRing::new(&[StoredKey::generate(0)]);
        let t = other.sign(&claims(1000));
        assert_eq!(ring.verify(&t, &expect(), 1000), Err(JwtError::UnknownKey));
        // same kid, other key: signature must fail
        let k = StoredKey::generate(0);
        let mut forged_key = StoredKey::generate(0);
        forged_key.kid = k.kid.clone();
        let forged = KeyRing::new(&[forged_key]).sign(&claims(1000));
        assert_eq!(
            KeyRing::new(&[k]).verify(&forged, &expect(), 1000),
            Err(JwtError::BadSignature)
        );
        // payload swapped: signature must fail
        let good = ring.sign(&claims(1000));
        let mut c = claims(1000);
        c.scope = ScopeSet::parse("op:add op:div").unwrap();
        let evil = ring.sign(&c);
        let parts: Vec<&str> = good.split('.').collect();
        let evil_parts: Vec<&str> = evil.split('.').collect();
        let spliced = format!("{}.{}.{}", parts[0], evil_parts[1], parts[2]);
        assert_eq!(
            ring.verify(&spliced, &expect(), 1000),
            Err(JwtError::BadSignature)
        );
    }

    #[test]
    fn rejects_alg_none_and_wrong_typ() {
        let ring = KeyRing::new(&[StoredKey::generate(0)]);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(1000)).unwrap());
        for header in [
            json!({"alg":"none","typ":"at+jwt"}),
            json!({"alg":"EdDSA","typ":"JWT","kid": ring.current_kid()}),
        ] {
            let t = format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                payload
            );
            assert_eq!(
                ring.verify(&t, &expect(), 1000),
                Err(JwtError::UnsupportedHeader)
            );
        }
        assert_eq!(
            ring.verify("a.b", &expect(), 1000),
            Err(JwtError::Malformed)
        );
    }

    #[test]
    fn rotation_keeps_old_tokens_valid_and_signs_with_new_key() {
        let old = StoredKey::generate(0);
        let ring = KeyRing::new(std::slice::from_ref(&old));
        let before = ring.sign(&claims(1000));
        let new = StoredKey::generate(10);
        ring.reload(&[old.clone(), new.clone()]);
        assert_eq!(ring.current_kid(), new.kid);
        assert!(ring.verify(&before, &expect(), 1000).is_ok());
        let jwks = ring.jwks();
        assert_eq!(VerifyingKeys::from_jwks(&jwks).len(), 2);
    }
}
