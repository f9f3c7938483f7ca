//! One protected resource, wired the same way wherever it is served: the calculator of
//! `serve`, the calculator of `mcp` in front of another authorization server, and each
//! upstream of the gateway. A resource gets its guard (the validator, the tool policy,
//! the challenge naming its metadata, the body bound, the tool-call audit), its RFC
//! 9728 metadata routes, and the sweep of its validator's caches.

use std::sync::Arc;

use axum::Router;
use mcpgate_core::ScopeSet;
use mcpgate_mcp::audit::AuditSink;
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
    .with_audit(audit);
    let doc = ResourceMetadata::new(r.url, r.issuer, &r.scopes, &r.name);
    let metadata = match r.root_metadata_under {
        Some(base) => metadata::router_at(doc, r.url, base),
        None => metadata::suffixed_router(doc, r.url),
    };
    Protected { guard, metadata }
}
