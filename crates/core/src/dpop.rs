//! DPoP proofs (RFC 9449): a client proves, with each request, that it holds the
//! private key its tokens are bound to. This checks one proof (§4.3); remembering its
//! `jti` (a replay) and a server nonce are the caller's, which knows where to keep them.
//!
//! The checks, in §4.3's order: one header value, a JWT whose `typ` is `dpop+jwt`,
//! signed with an asymmetric algorithm by the public key in its own `jwk` header (no
//! private key in it), `htm` the request's method, `htu` the request's URL without
//! query and fragment (both normalised, RFC 3986 §6.2.2-3), `iat` within the window,
//! `nonce` the server's when it gives one, and at a resource `ath` the token's hash
//! (§4.2) and the key the one the token is bound to (`cnf.jkt`, §6.1).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::jose::{self, PinnedKey};

/// How far back a proof's `iat` may be (§11.1: "seconds or minutes").
pub const MAX_AGE_SECS: i64 = 300;
/// How far ahead: clients' clocks run a little fast.
pub const MAX_AHEAD_SECS: i64 = 60;
/// The algorithms accepted for proofs (`dpop_signing_alg_values_supported`).
pub const ALGS: [&str; 5] = ["ES256", "ES384", "EdDSA", "RS256", "PS256"];

/// Why a proof was refused: the `error_description` of `invalid_dpop_proof`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DpopError {
    #[error("the DPoP proof is not a dpop+jwt signed with an asymmetric key")]
    Header,
    #[error("the DPoP proof's jwk holds a private key")]
    PrivateKey,
    #[error("the DPoP proof's signature does not verify")]
    Signature,
    #[error("the DPoP proof lacks a claim it must carry")]
    Claims,
    #[error("the DPoP proof is for another method")]
    Method,
    #[error("the DPoP proof is for another URL")]
    Url,
    #[error("the DPoP proof is too old or from the future")]
    Time,
    #[error("the DPoP proof does not carry the server's nonce")]
    Nonce,
    #[error("the DPoP proof is not for this access token")]
    TokenHash,
}

/// A proof that passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The key's thumbprint (RFC 7638): what a token is bound to.
    pub jkt: String,
    pub jti: String,
    pub iat: i64,
}

impl Proof {
    /// How long its `jti` must be remembered: as long as the proof could be accepted.
    pub fn kept_until(&self) -> i64 {
        self.iat + MAX_AGE_SECS + MAX_AHEAD_SECS
    }
}

/// The request's one `DPoP` header, from its values (RFC 9449 §4.3: a request with more
/// than one is refused); `Ok(None)` when it has none.
pub fn the_proof<'a>(
    mut values: impl Iterator<Item = &'a [u8]>,
) -> Result<Option<&'a str>, &'static str> {
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err("send one DPoP proof");
    }
    std::str::from_utf8(first)
        .map(Some)
        .map_err(|_| "the DPoP header is not a JWT")
}

/// The request a proof must be for.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub method: &'a str,
    /// The URL the client called, as it named it (the public URL, not what a proxy
    /// forwarded).
    pub url: &'a str,
    pub now: i64,
    /// The server's nonces, when it requires one (§8, §9).
    pub nonces: Option<&'a Nonces>,
    /// At a resource: the access token the proof comes with (§4.2 `ath`).
    pub access_token: Option<&'a str>,
}

#[derive(Deserialize)]
struct Claims {
    jti: String,
    htm: String,
    htu: String,
    iat: i64,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    ath: Option<String>,
}

/// Members of a JWK that only a private key has (RFC 7518 §6.2.2, §6.3.2, §6.4).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Checks `proof` for the `expected` request.
pub fn verify(proof: &str, expected: Expected<'_>) -> Result<Proof, DpopError> {
    let raw = raw_header(proof).ok_or(DpopError::Header)?;
    if raw.get("typ").and_then(Value::as_str) != Some("dpop+jwt") {
        return Err(DpopError::Header);
    }
    if !raw
        .get("alg")
        .and_then(Value::as_str)
        .is_some_and(|a| ALGS.contains(&a))
    {
        return Err(DpopError::Header);
    }
    let jwk_value = raw.get("jwk").ok_or(DpopError::Header)?;
    if PRIVATE_MEMBERS.iter().any(|m| jwk_value.get(m).is_some()) {
        return Err(DpopError::PrivateKey);
    }
    let jwk: Jwk = serde_json::from_value(jwk_value.clone()).map_err(|_| DpopError::Header)?;
    let key = PinnedKey::from_jwk(&jwk).ok_or(DpopError::Header)?;
    let jkt = jose::thumbprint(&jwk).ok_or(DpopError::Header)?;
    let c: Claims = jose::verify_with(proof, &key, |_| {}).map_err(|e| match e {
        crate::jwt::JwtError::BadClaims => DpopError::Claims,
        crate::jwt::JwtError::UnsupportedHeader => DpopError::Header,
        _ => DpopError::Signature,
    })?;
    if c.jti.is_empty() || c.jti.len() > 256 {
        return Err(DpopError::Claims);
    }
    if c.htm != expected.method {
        return Err(DpopError::Method);
    }
    if normal_url(&c.htu).is_none() || normal_url(&c.htu) != normal_url(expected.url) {
        return Err(DpopError::Url);
    }
    if c.iat < expected.now - MAX_AGE_SECS || c.iat > expected.now + MAX_AHEAD_SECS {
        return Err(DpopError::Time);
    }
    if let Some(n) = expected.nonces
        && !c
            .nonce
            .as_deref()
            .is_some_and(|v| n.accepts(v, expected.now))
    {
        return Err(DpopError::Nonce);
    }
    if let Some(token) = expected.access_token
        && c.ath.as_deref() != Some(token_hash(token).as_str())
    {
        return Err(DpopError::TokenHash);
    }
    Ok(Proof {
        jkt,
        jti: c.jti,
        iat: c.iat,
    })
}

/// Server nonces (§8, §9): what this instance gives clients to put in their proofs, so
/// that a proof cannot have been made before the nonce existed. A nonce is the MAC of
/// a time window under a key of this process (no state, unpredictable), accepted in
/// its window and the next; another instance's nonce (another key) is never accepted,
/// so a proof made for one instance cannot be replayed at another. The authorization
/// server and the resources of one process share it: clients keep one nonce per origin.
pub struct Nonces {
    key: [u8; 32],
    window_secs: i64,
}

impl std::fmt::Debug for Nonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nonces")
            .field("window_secs", &self.window_secs)
            .finish_non_exhaustive()
    }
}

impl Nonces {
    pub fn new(window_secs: i64) -> Self {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("system randomness");
        Self {
            key,
            window_secs: window_secs.max(10),
        }
    }

    fn of_window(&self, w: i64) -> String {
        let mut h = Sha256::new();
        h.update(self.key);
        h.update(w.to_be_bytes());
        URL_SAFE_NO_PAD.encode(&h.finalize()[..18])
    }

    /// The nonce to give now.
    pub fn current(&self, now: i64) -> String {
        self.of_window(now.div_euclid(self.window_secs))
    }

    /// Whether `nonce` is this instance's, of this window or the last.
    pub fn accepts(&self, nonce: &str, now: i64) -> bool {
        let w = now.div_euclid(self.window_secs);
        [w, w - 1]
            .iter()
            .any(|w| crate::secret::constant_time_eq(nonce, &self.of_window(*w)))
    }
}

/// `ath`: the access token's SHA-256, base64url (§4.2).
pub fn token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

fn raw_header(jwt: &str) -> Option<Value> {
    if jwt.len() > jose::MAX_LEN {
        return None;
    }
    let h = jwt.split('.').next()?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()
}

/// A URL without query and fragment, in normal form (scheme and host in lower case,
/// the default port dropped, an empty path as `/`): what `htu` is compared as.
fn normal_url(u: &str) -> Option<String> {
    let mut url = url::Url::parse(u).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    url.set_query(None);
    url.set_fragment(None);
    // `url` already lower-cases scheme and host and drops a default port.
    Some(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htu_is_compared_without_query_fragment_case_or_default_port() {
        let n = |u| normal_url(u).unwrap();
        assert_eq!(
            n("HTTPS://Mcp.Example:443/mcp?x=1#f"),
            n("https://mcp.example/mcp")
        );
        assert_ne!(n("https://mcp.example/mcp"), n("https://mcp.example/mcp/"));
        assert_ne!(n("https://mcp.example/mcp"), n("http://mcp.example/mcp"));
        assert!(normal_url("ftp://x/").is_none());
    }
}
