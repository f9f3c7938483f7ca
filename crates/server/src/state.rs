//! The state every handler shares: the rules ([`Authority`]: the store, the keys, the
//! clock, the audit), the edge's settings, and what keeps this process in step with
//! the others. Handlers that need only a part take it by [`FromRef`].

use std::sync::{Arc, Mutex};

use axum::extract::FromRef;
use mcpgate_core::clock::Clock;
use mcpgate_domain::Authority;
use mcpgate_domain::ports::DocumentFetcher;
use mcpgate_domain::store::Store;

use crate::config::ServerConfig;

#[derive(Clone)]
pub struct AuthServer {
    pub auth: Authority,
    pub cfg: Arc<ServerConfig>,
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
        store: Arc<dyn Store>,
        cfg: ServerConfig,
        clock: Arc<dyn Clock>,
        documents: Arc<dyn DocumentFetcher>,
    ) -> Result<Self, mcpgate_domain::StoreError> {
        let mut auth = Authority::start(
            store,
            cfg.rules.clone(),
            clock,
            documents,
            Arc::new(crate::pages::passwords::Argon2id),
        )
        .await?;
        auth.upstream_oauth = Arc::new(crate::upstream_oauth::Http::default());
        let s = Self {
            auth,
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

impl FromRef<AuthServer> for Authority {
    fn from_ref(s: &AuthServer) -> Authority {
        s.auth.clone()
    }
}

impl FromRef<AuthServer> for Arc<ServerConfig> {
    fn from_ref(s: &AuthServer) -> Arc<ServerConfig> {
        s.cfg.clone()
    }
}
