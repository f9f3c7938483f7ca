//! One protected resource, wired the same way wherever it is served: the calculator of
//! `serve`, the calculator of `mcp` in front of another authorization server, and each
//! upstream of the gateway. A resource gets its guard (the validator, the tool policy,
//! the challenge naming its metadata, the body bound, the tool-call audit), its RFC
//! 9728 metadata routes, and the sweep of its validator's caches.

use std::sync::Arc;

use axum::Router;
use mcpgate_core::ScopeSet;
use mcpgate_mcp::audit::AuditSink;
use mcpgate_mcp::guard::dpop::{DpopCheck, ProofReplay};
use mcpgate_mcp::{
    Guard, ResourceMetadata, TokenValidator, ToolScopePolicy, housekeeping, metadata,
};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;
use url::Url;

/// What a resource is and who vouches for its callers.
pub struct Resource<'a> {
    /// Its canonical URL (the audience of its tokens).
    pub url: &'a Url,
    /// The authorization server its metadata names.
    pub issuer: &'a str,
    /// Which scopes each tool call needs.
    pub policy: ToolScopePolicy,
    /// Every scope a call here can need: `scopes_supported` of its metadata.
    pub scopes: ScopeSet,
    /// `resource_name` of its metadata.
    pub name: String,
    /// Where its metadata is served: `Some(base path)` at the path-suffixed location,
    /// and at the origin's root too when the base path is empty; `None`, the suffixed
    /// location only (one of several resources on an origin).
    pub root_metadata_under: Option<&'a str>,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// How DPoP proofs are checked (RFC 9449 §7).
    pub dpop: DpopSetup,
}

/// What every resource of a process shares to check DPoP proofs: the nonces it gives
/// (when required), where proofs' ids are remembered, and the clock.
#[derive(Clone)]
pub struct DpopSetup {
    pub nonces: Option<Arc<mcpgate_core::dpop::Nonces>>,
    pub replay: Arc<dyn ProofReplay>,
    pub clock: Arc<dyn mcpgate_core::clock::Clock>,
}

/// A resource ready to serve: its guard, to wrap its endpoint with, and its metadata
/// routes.
pub struct Protected {
    pub guard: Guard,
    pub metadata: Router,
}

/// Wires `r`: a guard that validates tokens with `validator` (whose caches are swept,
/// and sizes logged with what `sizes` adds, until `cancel`) and reports every tool call
/// to `audit`; and its metadata.
pub fn protect(
    r: Resource<'_>,
    validator: Arc<dyn TokenValidator>,
    audit: Arc<dyn AuditSink>,
    cancel: CancellationToken,
    sizes: impl Fn(&mut Map<String, Value>) + Send + 'static,
) -> Protected {
    housekeeping::spawn_housekeeping(
        validator.clone(),
        housekeeping::HOUSEKEEPING_EVERY,
        cancel,
        sizes,
    );
    let guard = Guard::new(
        validator,
        r.policy,
        metadata::metadata_url(r.url),
        r.max_body_bytes,
    )
    .with_audit(audit)
    .with_dpop(DpopCheck {
        url: r.url.to_string(),
        nonces: r.dpop.nonces,
        replay: r.dpop.replay,
        clock: r.dpop.clock,
    });
    let doc = ResourceMetadata::new(r.url, r.issuer, &r.scopes, &r.name);
    let metadata = match r.root_metadata_under {
        Some(base) => metadata::router_at(doc, r.url, base),
        None => metadata::suffixed_router(doc, r.url),
    };
    Protected { guard, metadata }
}

/// Proofs' ids remembered in this process first (a replay here costs no round trip),
/// then in the store every instance shares: a proof used at one instance is refused
/// at the others. A store that cannot answer refuses the proof (fail closed).
pub struct SharedReplay {
    local: mcpgate_mcp::guard::dpop::LocalReplay,
    store: Arc<dyn mcpgate_domain::store::Store>,
}

impl SharedReplay {
    pub fn new(store: Arc<dyn mcpgate_domain::store::Store>) -> Self {
        Self {
            local: Default::default(),
            store,
        }
    }
}

#[async_trait::async_trait]
impl ProofReplay for SharedReplay {
    async fn first_use(&self, jkt: &str, jti: &str, until: i64) -> bool {
        if !self.local.first_use(jkt, jti, until).await {
            return false;
        }
        match self.store.remember_jti("dpop", jkt, jti, until).await {
            Ok(fresh) => fresh,
            Err(e) => {
                tracing::warn!(error = %e, "remembering a DPoP proof failed: refused");
                false
            }
        }
    }
}

impl DpopSetup {
    /// A process with no store (`mcpgate mcp`): its own memory, no nonces.
    pub fn local(clock: Arc<dyn mcpgate_core::clock::Clock>) -> Self {
        Self {
            nonces: None,
            replay: Arc::new(mcpgate_mcp::guard::dpop::LocalReplay::default()),
            clock,
        }
    }

    /// The authorization server's process: the store every instance shares, and the
    /// nonces the token endpoint gives too (clients keep one nonce per origin).
    pub fn shared(
        auth: &mcpgate_server::AuthServer,
        clock: Arc<dyn mcpgate_core::clock::Clock>,
    ) -> Self {
        Self {
            nonces: auth.cfg.dpop_nonces.clone(),
            replay: Arc::new(SharedReplay::new(auth.auth.store.clone())),
            clock,
        }
    }
}
