//! The state every handler shares.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

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
    /// Sequence number of the last revocation row this process has applied.
    revocation_seq: Arc<AtomicI64>,
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
            revocation_seq: Arc::new(AtomicI64::new(0)),
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
        let until = now + self.cfg.access_ttl_secs + mcpgate_core::jwt::LEEWAY_SECS + 60;
        for h in handles {
            self.revoked.revoke(h, until);
            self.store.insert_revocation(h, until, now).await?;
        }
        Ok(())
    }

    /// Applies revocations and key changes made by other processes (the CLI, other
    /// instances). Runs off the request path, on a timer.
    pub async fn sync(&self) -> Result<(), StoreError> {
        let after = self.revocation_seq.load(Ordering::SeqCst);
        for (seq, handle, until) in self.store.revocations_since(after).await? {
            self.revoked.revoke(&handle, until);
            self.revocation_seq.fetch_max(seq, Ordering::SeqCst);
        }
        self.revoked.prune(self.now());
        // A key rotated elsewhere (`mcpgate keys rotate`, another instance) is picked
        // up here: the newest stored key must be the one that signs.
        let keys = stored_keys(&self.store).await?;
        let newest = keys.iter().max_by_key(|k| (k.created_at, k.kid.clone()));
        if newest.is_some_and(|k| k.kid != self.keys.current_kid()) {
            self.keys.reload(&keys);
        }
        Ok(())
    }

    /// Runs [`Self::sync`] and housekeeping every `period` until cancelled.
    pub fn spawn_background(&self, period: Duration, cancel: tokio_util::sync::CancellationToken) {
        let s = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            let mut n: u64 = 0;
            loop {
                tokio::select! { _ = cancel.cancelled() => break, _ = tick.tick() => {} }
                if let Err(e) = s.sync().await {
                    tracing::warn!(error = %e, "revocation sync failed");
                }
                n += 1;
                if n.is_multiple_of(5)
                    && let Err(e) = s.store.checkpoint().await
                {
                    tracing::warn!(error = %e, "database checkpoint failed");
                }
                if n.is_multiple_of(60) {
                    let now = s.now();
                    let _ = s.store.delete_expired(now).await;
                    let _ = s
                        .store
                        .sweep_unused_dynamic_clients(now - s.cfg.unused_client_ttl_secs)
                        .await;
                }
            }
        });
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

async fn stored_keys(store: &Store) -> Result<Vec<StoredKey>, StoreError> {
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
