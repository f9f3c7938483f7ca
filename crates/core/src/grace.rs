//! The refresh grace answer: when a refresh token is rotated, the answer is kept for a
//! few seconds so that a duplicate request (two requests racing, a client retrying
//! after a lost response) gets the same new pair instead of tripping reuse detection.
//!
//! The answer holds live tokens, so it is stored encrypted (AES-256-GCM) under a key
//! derived from the *old* refresh token, which the database does not have: only a
//! caller presenting that token can read it.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

fn cipher(token: &str) -> Aes256Gcm {
    let key = Sha256::new()
        .chain_update(b"mcpgate refresh grace v1\0")
        .chain_update(token.as_bytes())
        .finalize();
    Aes256Gcm::new(&key)
}

/// Encrypts `answer` for whoever holds `token`.
pub fn seal(token: &str, answer: &str) -> String {
    let nonce = crate::secret::random_bytes::<12>();
    let ct = cipher(token)
        .encrypt(&Nonce::from(nonce), answer.as_bytes())
        .expect("AES-GCM encryption");
    let mut out = nonce.to_vec();
    out.extend(ct);
    URL_SAFE_NO_PAD.encode(out)
}

/// Decrypts an answer sealed for `token`; `None` if the token is not the right one.
pub fn open(token: &str, sealed: &str) -> Option<String> {
    let raw = URL_SAFE_NO_PAD.decode(sealed).ok()?;
    if raw.len() < 12 {
        return None;
    }
    let (nonce, ct) = raw.split_at(12);
    let nonce: [u8; 12] = nonce.try_into().ok()?;
    let pt = cipher(token).decrypt(&Nonce::from(nonce), ct).ok()?;
    String::from_utf8(pt).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_old_token_opens_the_answer() {
        let sealed = seal("old-token", r#"{"access_token":"x"}"#);
        assert_eq!(
            open("old-token", &sealed).as_deref(),
            Some(r#"{"access_token":"x"}"#)
        );
        assert_eq!(open("other-token", &sealed), None);
        assert!(!sealed.contains("access_token"));
    }
}
