//! PKCE (RFC 7636), `S256` only: OAuth 2.1 §4.1.1 and the MCP authorization spec
//! require it, and `plain` offers no protection when the challenge leaks.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::secret::constant_time_eq;

/// Why a PKCE value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PkceError {
    #[error("code_challenge is required (PKCE)")]
    MissingChallenge,
    #[error("code_challenge_method must be S256")]
    UnsupportedMethod,
    #[error("code_challenge must be 43 base64url characters (the SHA-256 of the verifier)")]
    MalformedChallenge,
    #[error("code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~]")]
    MalformedVerifier,
    #[error("code_verifier does not match the code_challenge")]
    Mismatch,
}

/// Checks an authorization request's challenge. A missing method means `plain`
/// (RFC 7636 §4.3), which we refuse.
pub fn validate_challenge(
    challenge: Option<&str>,
    method: Option<&str>,
) -> Result<String, PkceError> {
    let challenge = challenge
        .filter(|c| !c.is_empty())
        .ok_or(PkceError::MissingChallenge)?;
    if method != Some("S256") {
        return Err(PkceError::UnsupportedMethod);
    }
    // A SHA-256 digest, base64url without padding, is exactly 43 characters.
    if challenge.len() != 43
        || !challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(PkceError::MalformedChallenge);
    }
    Ok(challenge.to_owned())
}

/// Checks a token request's verifier against the stored challenge (RFC 7636 §4.6).
pub fn verify(verifier: &str, challenge: &str) -> Result<(), PkceError> {
    // code-verifier = 43*128unreserved (RFC 7636 §4.1)
    if !(43..=128).contains(&verifier.len())
        || !verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
    {
        return Err(PkceError::MalformedVerifier);
    }
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if constant_time_eq(&computed, challenge) {
        Ok(())
    } else {
        Err(PkceError::Mismatch)
    }
}

/// The S256 challenge of a verifier (for clients and tests).
pub fn challenge_of(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc7636_appendix_b() {
        assert_eq!(challenge_of(VERIFIER), CHALLENGE);
        assert_eq!(verify(VERIFIER, CHALLENGE), Ok(()));
    }

    #[test]
    fn plain_and_missing_are_refused() {
        assert_eq!(
            validate_challenge(None, Some("S256")),
            Err(PkceError::MissingChallenge)
        );
        assert_eq!(
            validate_challenge(Some(CHALLENGE), None),
            Err(PkceError::UnsupportedMethod)
        );
        assert_eq!(
            validate_challenge(Some(CHALLENGE), Some("plain")),
            Err(PkceError::UnsupportedMethod)
        );
        assert_eq!(
            validate_challenge(Some("short"), Some("S256")),
            Err(PkceError::MalformedChallenge)
        );
        assert!(validate_challenge(Some(CHALLENGE), Some("S256")).is_ok());
    }

    #[test]
    fn wrong_or_malformed_verifier_fails() {
        let other = "x".repeat(43);
        assert_eq!(verify(&other, CHALLENGE), Err(PkceError::Mismatch));
        assert_eq!(
            verify("short", CHALLENGE),
            Err(PkceError::MalformedVerifier)
        );
        assert_eq!(
            verify(&"a".repeat(129), CHALLENGE),
            Err(PkceError::MalformedVerifier)
        );
        // plain: sending the challenge itself as the verifier must not pass
        assert_eq!(verify(CHALLENGE, CHALLENGE), Err(PkceError::Mismatch));
    }
}
