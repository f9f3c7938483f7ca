//! The state every handler shares.

use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcpgate_core::clock::Clock;
use mcpgate_core::jwt::{KeyRing, StoredKey};
use mcpgate_core::revocation::RevocationList;
use mcpgate_store::{Store, StoreError};
use serde_json::Value;

use crate::config::AsConfig;

#[derive(Clone)]
pub struct AuthServer {
    pub store: Store,
    pub keys: Arc<KeyRing>,
    pub revoked: Arc<RevocationList>,
    pub clock: Arc<dyn Clock>,
    pub cfg: Arc<AsConfig>,
    /// Where the next poll of the revocations starts.
    pub(crate) cursor: Arc<Mutex<crate::sync::Cursor>>,
    /// Whether changes made elsewhere reach this process at once (`/readyz`).
    pub notifications: Arc<crate::sync::Notifications>,
    /// Upstream identity providers of the sign-in page (none unless configured).
    pub idps: Arc<crate::idp::Registry>,
}

impl AuthServer {
    /// Loads (creating on first run) the signing keys, and every live revocation.
    pub async fn start(
        store: Store,
        cfg: AsConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        let keys = load_keys(&store, clock.now()).await?;
        let s = Self {
            store,
            keys: Arc::new(KeyRing::new(&keys)),
            revoked: Arc::new(RevocationList::new()),
            clock,
            cfg: Arc::new(cfg),
            cursor: crate::sync::new_cursor(),
            notifications: Arc::default(),
            idps: Arc::new(crate::idp::Registry::new(Vec::new())),
        };
        s.sync().await?;
        Ok(s)
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Records revocation handles (token-family ids, access-token jtis): in memory at
    /// once for this process's guard, and in the store for other processes.
    pub async fn revoke_handles(&self, handles: &[String]) -> Result<(), StoreError> {
        let now = self.now();
        // An access token can live access_ttl after the last issuance, plus leeway.
        let until = now + self.revocation_cover();
        for h in handles {
            self.revoked.revoke(h, until);
            self.store.insert_revocation(h, until, now).await?;
        }
        Ok(())
    }

    /// Writes an audit event to the store and the log.
    pub async fn audit(
        &self,
        event: &str,
        user_id: Option<&str>,
        client_id: Option<&str>,
        detail: Value,
    ) {
        tracing::info!(target: "mcpgate::audit", event, user_id, client_id, %detail);
        if let Err(e) = self
            .store
            .audit(self.now(), event, user_id, client_id, &detail)
            .await
        {
            tracing::error!(error = %e, "audit write failed");
        }
    }
}

pub(crate) async fn stored_keys(store: &Store) -> Result<Vec<StoredKey>, StoreError> {
    Ok(store
        .signing_keys()
        .await?
        .into_iter()
        .filter_map(|(kid, seed, created_at)| {
            let seed: [u8; 32] = URL_SAFE_NO_PAD.decode(seed).ok()?.try_into().ok()?;
            Some(StoredKey {
                kid,
                seed,
                created_at,
            })
        })
        .collect())
}

/// The stored signing keys, creating the first one on an empty database.
pub async fn load_keys(store: &Store, now: i64) -> Result<Vec<StoredKey>, StoreError> {
    let keys = stored_keys(store).await?;
    if !keys.is_empty() {
        return Ok(keys);
    }
    let k = StoredKey::generate(now);
    store
        .insert_signing_key(&k.kid, &URL_SAFE_NO_PAD.encode(k.seed), k.created_at)
        .await?;
    // Instances starting together may each have made one: use them all, so every
    // instance verifies the others' tokens at once and they agree on the newest.
    stored_keys(store).await
}

/// Keys stay published this long after being superseded: far longer than any access
/// token lives, so rotation never invalidates a token before it expires.
pub const KEY_RETIREMENT_SECS: i64 = 24 * 3600;

/// Adds a new signing key; the previous ones keep verifying until they have been
/// superseded for [`KEY_RETIREMENT_SECS`] (rotation with overlap).
pub async fn rotate_keys(store: &Store, now: i64) -> Result<String, StoreError> {
    let mut k = StoredKey::generate(now);
    // Keys made in the same second must still order after the current one.
    let latest = stored_keys(store)
        .await?
        .iter()
        .map(|k| k.created_at)
        .max()
        .unwrap_or(0);
    k.created_at = now.max(latest + 1);
    store
        .insert_signing_key(&k.kid, &URL_SAFE_NO_PAD.encode(k.seed), k.created_at)
        .await?;
    store
        .retire_superseded_keys(now, KEY_RETIREMENT_SECS)
        .await?;
    Ok(k.kid)
}
