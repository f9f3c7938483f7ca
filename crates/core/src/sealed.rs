//! Secrets at rest (signing-key seeds, identity-provider client secrets) sealed with
//! AES-256-GCM under a key-encryption key that is not in the database: reading the
//! database alone must not let anyone mint tokens.
//!
//! A sealed value is `sealed:v1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>`. The
//! key id is derived from the key (a hash prefix), so a value names the key that opens
//! it and the wrapping key can be rotated: a [`Sealer`] seals with its current key and
//! opens with any key it was given. The associated data is the value's purpose and
//! row (`signing_key:<kid>`), so a sealed value cannot be moved to another row.
//! Values without the prefix are clear values written before sealing existed; the
//! store seals them on first start.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

const PREFIX: &str = "sealed:v1:";

/// Why a sealed value cannot be opened, or a key not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error(
        "{what} is sealed with key-encryption key {key_id}, which is not configured \
         (configured: {configured}); give the key that sealed it \
         (MCPGATE_KEY_ENCRYPTION_KEY, --key-encryption-key-file or \
         --previous-key-encryption-key-file)"
    )]
    UnknownKey {
        what: String,
        key_id: String,
        configured: String,
    },
    #[error("{what} does not open with key-encryption key {key_id}: the value was altered")]
    Altered { what: String, key_id: String },
    #[error("{what} is not a well-formed sealed value")]
    Malformed { what: String },
    #[error(
        "the key-encryption key must be 32 bytes, written as base64 (44 characters) or hex (64)"
    )]
    BadKey,
}

/// One key-encryption key.
#[derive(Clone)]
pub struct WrappingKey {
    id: String,
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for WrappingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WrappingKey").field("id", &self.id).finish()
    }
}

impl WrappingKey {
    pub fn from_bytes(key: &[u8; 32]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"mcpgate key-encryption key id\0")
            .chain_update(key)
            .finalize();
        let id = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        Self {
            id,
            cipher: Aes256Gcm::new(key.into()),
        }
    }

    /// Reads a key written as base64 (standard or URL-safe, padded or not) or hex;
    /// surrounding whitespace (a file's last newline) is ignored.
    pub fn parse(text: &str) -> Result<Self, SealError> {
        let t = text.trim();
        let bytes = if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&t[2 * i..2 * i + 2], 16))
                .collect::<Result<Vec<_>, _>>()
                .ok()
        } else {
            URL_SAFE_NO_PAD
                .decode(t.trim_end_matches('='))
                .or_else(|_| STANDARD.decode(t))
                .ok()
        };
        let key: [u8; 32] = bytes
            .and_then(|b| b.try_into().ok())
            .ok_or(SealError::BadKey)?;
        Ok(Self::from_bytes(&key))
    }

    /// A new random key and its text form (base64url, for a key file).
    pub fn generate() -> (Self, String) {
        let key = crate::secret::random_bytes::<32>();
        (Self::from_bytes(&key), URL_SAFE_NO_PAD.encode(key))
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

/// Seals with the current key; opens with the current or a previous one.
#[derive(Debug, Clone)]
pub struct Sealer {
    keys: Vec<WrappingKey>,
}

impl Sealer {
    pub fn new(current: WrappingKey, previous: Vec<WrappingKey>) -> Self {
        let mut keys = vec![current];
        keys.extend(previous);
        Self { keys }
    }

    pub fn current_id(&self) -> &str {
        self.keys[0].id()
    }

    /// Seals `plain` for the row `what` (e.g. `signing_key:<kid>`).
    pub fn seal(&self, what: &str, plain: &str) -> String {
        let key = &self.keys[0];
        let nonce = crate::secret::random_bytes::<12>();
        let ct = key
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plain.as_bytes(),
                    aad: what.as_bytes(),
                },
            )
            .expect("AES-GCM encryption");
        let mut out = nonce.to_vec();
        out.extend(ct);
        format!("{PREFIX}{}:{}", key.id, URL_SAFE_NO_PAD.encode(out))
    }

    /// Opens the stored value of row `what`; a clear (legacy) value is returned as it is.
    pub fn open(&self, what: &str, stored: &str) -> Result<String, SealError> {
        let Some((key_id, data)) = split(what, stored)? else {
            return Ok(stored.to_owned());
        };
        let key =
            self.keys
                .iter()
                .find(|k| k.id == key_id)
                .ok_or_else(|| SealError::UnknownKey {
                    what: what.to_owned(),
                    key_id: key_id.to_owned(),
                    configured: self
                        .keys
                        .iter()
                        .map(|k| k.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                })?;
        let malformed = || SealError::Malformed {
            what: what.to_owned(),
        };
        let raw = URL_SAFE_NO_PAD.decode(data).map_err(|_| malformed())?;
        if raw.len() < 12 + 16 {
            return Err(malformed());
        }
        let (nonce, ct) = raw.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| malformed())?;
        let plain = key
            .cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ct,
                    aad: what.as_bytes(),
                },
            )
            .map_err(|_| SealError::Altered {
                what: what.to_owned(),
                key_id: key_id.to_owned(),
            })?;
        String::from_utf8(plain).map_err(|_| malformed())
    }

    /// Whether a stored value must be (re)sealed: it is clear, or sealed with a key
    /// other than the current one.
    pub fn needs_sealing(&self, stored: &str) -> bool {
        split("", stored).map_or(true, |s| s.is_none_or(|(id, _)| id != self.current_id()))
    }
}

/// Whether a stored value is sealed.
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

/// Opens `stored` with `sealer`, or, with none configured, passes clear values and
/// refuses sealed ones with a message naming the key that is needed.
pub fn open_with(sealer: Option<&Sealer>, what: &str, stored: &str) -> Result<String, SealError> {
    match (sealer, split(what, stored)?) {
        (Some(s), _) => s.open(what, stored),
        (None, None) => Ok(stored.to_owned()),
        (None, Some((key_id, _))) => Err(SealError::UnknownKey {
            what: what.to_owned(),
            key_id: key_id.to_owned(),
            configured: "none".into(),
        }),
    }
}

/// (key id, data) of a sealed value; None for a clear one.
fn split<'a>(what: &str, stored: &'a str) -> Result<Option<(&'a str, &'a str)>, SealError> {
    match stored.strip_prefix(PREFIX) {
        None => Ok(None),
        Some(rest) => rest.split_once(':').map(Some).ok_or(SealError::Malformed {
            what: what.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> WrappingKey {
        WrappingKey::from_bytes(&[b; 32])
    }

    #[test]
    fn sealed_values_open_with_their_key_and_row_only() {
        let s = Sealer::new(key(1), vec![]);
        let sealed = s.seal("signing_key:k1", "seed");
        assert!(is_sealed(&sealed) && !sealed.contains("seed"));
        assert_eq!(s.open("signing_key:k1", &sealed).unwrap(), "seed");
        // moved to another row
        assert!(matches!(
            s.open("signing_key:k2", &sealed),
            Err(SealError::Altered { .. })
        ));
        // another key
        let other = Sealer::new(key(2), vec![]);
        assert!(matches!(
            other.open("signing_key:k1", &sealed),
            Err(SealError::UnknownKey { .. })
        ));
        // tampered
        let mut t = sealed.clone();
        t.pop();
        t.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(s.open("signing_key:k1", &t).is_err());
        assert!(matches!(
            s.open("x", "sealed:v1:zz"),
            Err(SealError::Malformed { .. }) | Err(SealError::UnknownKey { .. })
        ));
        // no key configured: a clear message, not garbage
        assert!(
            open_with(None, "signing_key:k1", &sealed)
                .unwrap_err()
                .to_string()
                .contains(key(1).id())
        );
    }

    #[test]
    fn rotation_opens_with_previous_keys_and_reseals_with_the_current() {
        let old = Sealer::new(key(1), vec![]);
        let sealed = old.seal("w", "secret");
        let new = Sealer::new(key(2), vec![key(1)]);
        assert_eq!(new.open("w", &sealed).unwrap(), "secret");
        assert!(new.needs_sealing(&sealed) && new.needs_sealing("clear"));
        assert!(!new.needs_sealing(&new.seal("w", "secret")));
        assert_eq!(new.open("w", "clear").unwrap(), "clear");
    }

    #[test]
    fn keys_parse_from_base64_or_hex() {
        let (k, text) = WrappingKey::generate();
        assert_eq!(
            WrappingKey::parse(&format!("{text}\n")).unwrap().id(),
            k.id()
        );
        let hex = "11".repeat(32);
        assert_eq!(WrappingKey::parse(&hex).unwrap().id(), key(0x11).id());
        assert_eq!(
            WrappingKey::parse(&STANDARD.encode([0x11; 32]))
                .unwrap()
                .id(),
            key(0x11).id()
        );
        for bad in ["", "short", &"1".repeat(63), &STANDARD.encode([0u8; 16])] {
            assert_eq!(
                WrappingKey::parse(bad).unwrap_err(),
                SealError::BadKey,
                "{bad}"
            );
        }
    }
}
