//! The state every handler shares: the rules ([`Authority`], which this dereferences
//! to, so `s.keys`, `s.audit(…)` and the flows' `&s` read through), the concrete store
//! for the pages' read models and the edge's own records (sessions, rate limits), the
//! edge's settings, and what keeps this process in step with the others.

use std::ops::Deref;
use std::sync::{Arc, Mutex};

use mcpgate_core::clock::Clock;
use mcpgate_domain::Authority;
use mcpgate_store::Store;

use crate::config::AsConfig;

#[derive(Clone)]
pub struct AuthServer {
    pub auth: Authority,
    /// The same database as the rules' store, with the pages' queries besides.
    pub store: Store,
    pub cfg: Arc<AsConfig>,
    /// Where the next poll of the revocations starts.
    pub(crate) cursor: Arc<Mutex<crate::sync::Cursor>>,
    /// What notifications said to read again, not read yet.
    pub(crate) pending: Arc<crate::sync::Pending>,
    /// Whether changes made elsewhere reach this process at once (`/readyz`).
    pub notifications: Arc<crate::sync::Notifications>,
    /// Upstream identity providers of the sign-in page (none unless configured).
    pub idps: Arc<crate::idp::Registry>,
    /// The database ping `/readyz` shares between probes.
    pub db_probe: Arc<crate::routes::ready::DbProbe>,
}

impl AuthServer {
    /// Loads (creating on first run) the signing keys, and every live revocation.
    pub async fn start(
        store: Store,
        cfg: AsConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, mcpgate_domain::StoreError> {
        let documents = Arc::new(crate::documents::Fetcher::new(&cfg));
        let auth = Authority::start(
            Arc::new(store.clone()),
            cfg.oauth.clone(),
            clock,
            documents,
            Arc::new(crate::pages::passwords::Argon2id),
        )
        .await?;
        let s = Self {
            auth,
            store,
            cfg: Arc::new(cfg),
            cursor: crate::sync::new_cursor(),
            pending: crate::sync::new_pending(),
            notifications: Arc::default(),
            idps: Arc::new(crate::idp::Registry::new(Vec::new())),
            db_probe: Arc::default(),
        };
        s.sync().await?;
        Ok(s)
    }
}

impl Deref for AuthServer {
    type Target = Authority;
    fn deref(&self) -> &Authority {
        &self.auth
    }
}
