//! The authorization server's rules as one value: the store, the signing keys, the
//! revocations this process has heard of, the clock, the settings, and the outside
//! world's ports. Every flow takes `&Authority`; the HTTP server, the admin pages and
//! the command line all build one from the same settings and call the same flows.

use std::sync::Arc;

use mcpgate_core::clock::Clock;
use mcpgate_core::jwt::KeyRing;
use mcpgate_core::revocation::RevocationList;

use crate::audit::Event;
use crate::ports::{DocumentFetcher, PasswordHasher};
use crate::settings::Settings;
use crate::store::{Store, StoreError};

#[derive(Clone)]
pub struct Authority {
    pub store: Arc<dyn Store>,
    pub keys: Arc<KeyRing>,
    pub revoked: Arc<RevocationList>,
    pub clock: Arc<dyn Clock>,
    pub cfg: Arc<Settings>,
    pub documents: Arc<dyn DocumentFetcher>,
    pub passwords: Arc<dyn PasswordHasher>,
    /// Steps of clients' connections noted and not yet written (the doctor's record).
    pub steps: Arc<crate::flows::doctor::StepBuffer>,
    /// Others' public keys, fetched and kept (client assertions, ID-JAGs).
    pub key_sets: Arc<crate::flows::keysets::KeySets>,
    /// People's upstream tokens read lately (connected accounts): no database read on
    /// every forwarded call.
    pub vault: Arc<crate::flows::connections::Vault>,
    /// Upstreams' own authorization servers (connected accounts through OAuth): set by
    /// the HTTP server; none reachable by default.
    pub upstream_oauth: Arc<dyn crate::ports::UpstreamOAuth>,
    /// Those servers as found lately.
    pub discovered: Arc<crate::flows::upstream_oauth::Discovered>,
    /// Access tokens introspection verified lately.
    pub introspected: Arc<crate::flows::introspect::Verified>,
}

impl Authority {
    /// Loads (creating on first run) the signing keys.
    pub async fn start(
        store: Arc<dyn Store>,
        cfg: Settings,
        clock: Arc<dyn Clock>,
        documents: Arc<dyn DocumentFetcher>,
        passwords: Arc<dyn PasswordHasher>,
    ) -> Result<Self, StoreError> {
        let keys = crate::flows::keys::load(store.as_ref(), clock.now()).await?;
        Ok(Self {
            store,
            keys: Arc::new(KeyRing::new(&keys)),
            revoked: Arc::new(RevocationList::new()),
            clock,
            cfg: Arc::new(cfg),
            documents,
            passwords,
            steps: Arc::default(),
            key_sets: Arc::default(),
            vault: Arc::default(),
            upstream_oauth: Arc::new(crate::ports::NoUpstreams),
            discovered: Arc::default(),
            introspected: Arc::default(),
        })
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Records revocation handles (token-family ids, access-token jtis, key handles):
    /// in memory at once for this process's guard, and in the store for the others.
    pub async fn revoke_handles(&self, handles: &[String]) -> Result<(), StoreError> {
        let now = self.now();
        // An access token can live access_ttl after the last issuance, plus leeway.
        let until = now + self.cfg.revocation_cover();
        for h in handles {
            self.revoked.revoke(h, until);
            self.store.insert_revocation(h, until, now).await?;
        }
        Ok(())
    }

    /// Writes an audit event to the store and the log. A failed write is logged, not
    /// returned: the act it records has already happened.
    pub async fn audit(&self, event: Event, user_id: Option<&str>, client_id: Option<&str>) {
        let (name, detail) = event.record();
        tracing::info!(target: "mcpgate::audit", event = %name, user_id, client_id, %detail);
        if let Err(e) = self
            .store
            .audit(self.now(), &name, user_id, client_id, &detail)
            .await
        {
            tracing::error!(error = %e, "audit write failed");
        }
    }
}
