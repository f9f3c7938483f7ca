//! Signing keys: live keys, the newest signing, older ones verifying until retired.

use async_trait::async_trait;

use super::StoreResult;
use mcpgate_core::jwt::StoredKey;

#[async_trait]
pub trait Keys: Send + Sync {
    /// Live keys, oldest first.
    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>>;

    /// Stores a new key, its seed sealed when a key-encryption key is configured.
    async fn insert_signing_key(&self, key: &StoredKey) -> StoreResult<()>;

    /// Retires one key that does not sign (not the newest); false otherwise.
    async fn retire_key(&self, kid: &str, now: i64) -> StoreResult<bool>;

    /// Retires every key superseded at least `grace` seconds ago.
    async fn retire_superseded_keys(&self, now: i64, grace: i64) -> StoreResult<()>;
}
