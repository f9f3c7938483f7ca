//! Verifying JWTs signed by someone else's keys: an issuer's access tokens at the
//! guard, a client's `private_key_jwt` assertions (RFC 7523 §2.2), an identity
//! provider's ID-JAG (RFC 7523 §2.1), a DPoP proof signed by the key it carries
//! (RFC 9449 §4.3). One set of rules keeps each of them safe against a hostile token
//! (RFC 8725 §3.1, §3.2):
//! - the algorithm is pinned per key, from what the JWK declares (`alg`) or, when it
//!   declares nothing, from its key type and curve; a token whose header names another
//!   algorithm is refused before any signature check. `none` is not an algorithm here,
//!   and no key is ever an HMAC secret (`oct` keys are skipped), so a token "signed"
//!   with HS256 and the public key as the secret finds nothing to verify with;
//! - keys come from where the verifier was told to look (a JWK Set, or for DPoP the
//!   proof's own `jwk`), never from `jku`, `x5u` or `x5c` headers;
//! - RSA moduli under 2048 bits are refused (RFC 7518 §3.3).

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::jwt::JwtError;

/// Longest JWT considered: others' tokens carry more claims than ours (groups, roles).
pub const MAX_LEN: usize = 16 * 1024;
/// Most keys read from one JWK Set; real sets hold a handful.
pub const MAX_KEYS: usize = 64;
/// Smallest RSA modulus accepted, in bits (RFC 7518 §3.3: 2048 or larger).
const MIN_RSA_BITS: usize = 2048;

/// A public key ready to verify, with the algorithms it may be used with.
pub struct PinnedKey {
    key: DecodingKey,
    algorithms: Vec<Algorithm>,
}

impl PinnedKey {
    /// The key of one JWK, pinned to its algorithms; `None` when it must not verify
    /// signatures (an encryption or symmetric key, a weak or malformed one).
    pub fn from_jwk(jwk: &Jwk) -> Option<Self> {
        let algorithms = pinned_algorithms(jwk)?;
        let key = DecodingKey::from_jwk(jwk).ok()?;
        // Build a verifier once now: a key the library cannot use is dropped here, not
        // found broken on a request.
        jsonwebtoken::crypto::verify("", b"", &key, algorithms[0]).ok()?;
        Some(Self { key, algorithms })
    }
}

/// The usable signing keys of a JWK Set, by `kid`.
#[derive(Default)]
pub struct PublicKeys {
    keys: HashMap<String, PinnedKey>,
    /// Keys without a `kid`: tried, with the others, for a token without one.
    anonymous: Vec<PinnedKey>,
}

impl PublicKeys {
    /// Reads the signature keys of a JWK Set (RFC 7517 §5), skipping what cannot be
    /// used safely. Done once per fetch.
    pub fn from_jwks(jwks: &Value) -> Self {
        let mut out = Self::default();
        let keys = jwks.get("keys").and_then(Value::as_array);
        for raw in keys.into_iter().flatten().take(MAX_KEYS) {
            let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else {
                continue;
            };
            let Some(pinned) = PinnedKey::from_jwk(&jwk) else {
                continue;
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

    /// Whether a key of this `kid` is in the set.
    pub fn has(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }
}

/// The claims of a compact JWS, unverified: only to choose how to verify it (whose
/// keys), never to act on.
pub fn unverified_claims(token: &str) -> Option<Value> {
    if token.len() > MAX_LEN {
        return None;
    }
    let payload = token.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

/// The header of a compact JWS, unverified: to choose how to verify it.
pub fn header(token: &str) -> Result<Header, JwtError> {
    if token.len() > MAX_LEN {
        return Err(JwtError::TooLong);
    }
    jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)
}

/// Verifies `token`'s signature with the key of `keys` its header names, and returns
/// its claims. Nothing else is checked unless `rules` turns it on (the issuer, the
/// audience with `validate_aud`, required claims); time is the caller's to check,
/// against its own clock.
///
/// RFC 7515 §4.1.4 makes `kid` optional, and some signers never send it (the official
/// Python SDK's client assertions). Without it, each key of the set pinned to the
/// header's `alg` is tried (at most [`MAX_KEYS`]), so a set holding two keys, as during
/// a rotation, still verifies what either signed.
pub fn verify<C: DeserializeOwned>(
    token: &str,
    keys: &PublicKeys,
    rules: impl Fn(&mut Validation),
) -> Result<C, JwtError> {
    let h = header(token)?;
    if let Some(kid) = h.kid.as_deref() {
        let key = keys.keys.get(kid).ok_or(JwtError::UnknownKey)?;
        return verify_with(token, key, rules);
    }
    let mut last = JwtError::UnknownKey;
    for key in keys
        .keys
        .values()
        .chain(&keys.anonymous)
        .filter(|k| k.algorithms.contains(&h.alg))
    {
        match verify_with(token, key, &rules) {
            Ok(c) => return Ok(c),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// [`verify`] with one given key (a DPoP proof's own).
pub fn verify_with<C: DeserializeOwned>(
    token: &str,
    key: &PinnedKey,
    rules: impl FnOnce(&mut Validation),
) -> Result<C, JwtError> {
    if token.len() > MAX_LEN {
        return Err(JwtError::TooLong);
    }
    let mut v = Validation::new(key.algorithms[0]);
    v.algorithms = key.algorithms.clone();
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    rules(&mut v);
    jsonwebtoken::decode::<C>(token, &key.key, &v)
        .map(|d| d.claims)
        .map_err(|e| library_error(e.kind()))
}

/// The JWK SHA-256 thumbprint (RFC 7638 §3): the required members of the public key,
/// in lexicographic order, hashed and base64url-encoded. `None` for a key type DPoP
/// does not use here.
pub fn thumbprint(jwk: &Jwk) -> Option<String> {
    let canonical = match &jwk.algorithm {
        AlgorithmParameters::RSA(p) => {
            format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, p.e, p.n)
        }
        AlgorithmParameters::EllipticCurve(p) => {
            let crv = match p.curve {
                EllipticCurve::P256 => "P-256",
                EllipticCurve::P384 => "P-384",
                _ => return None,
            };
            format!(
                r#"{{"crv":"{crv}","kty":"EC","x":"{}","y":"{}"}}"#,
                p.x, p.y
            )
        }
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, p.x)
        }
        _ => return None,
    };
    // The members are base64url text and names: nothing in them needs JSON escaping,
    // and a value that did would not be base64url.
    let safe = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let ok = match &jwk.algorithm {
        AlgorithmParameters::RSA(p) => safe(&p.e) && safe(&p.n),
        AlgorithmParameters::EllipticCurve(p) => safe(&p.x) && safe(&p.y),
        AlgorithmParameters::OctetKeyPair(p) => safe(&p.x),
        _ => false,
    };
    ok.then(|| URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
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
mod tests {
    use super::*;

    /// RFC 7638 §3.1's example key and thumbprint.
    #[test]
    fn thumbprint_of_the_rfc_example() {
        let jwk: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        }))
        .unwrap();
        assert_eq!(
            thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn symmetric_and_weak_keys_never_verify() {
        let oct: Jwk =
            serde_json::from_value(serde_json::json!({"kty": "oct", "k": "c2VjcmV0"})).unwrap();
        assert!(PinnedKey::from_jwk(&oct).is_none());
        let small_rsa: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "RSA", "e": "AQAB", "n": URL_SAFE_NO_PAD.encode([0xC1u8; 128])
        }))
        .unwrap();
        assert!(PinnedKey::from_jwk(&small_rsa).is_none(), "1024-bit RSA");
        let enc: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "use": "enc", "x": URL_SAFE_NO_PAD.encode([7u8; 32])
        }))
        .unwrap();
        assert!(PinnedKey::from_jwk(&enc).is_none(), "an encryption key");
    }
}
