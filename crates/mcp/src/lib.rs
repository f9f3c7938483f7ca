//! mcpgate-mcp: puts an rmcp server behind OAuth 2.1 the way the MCP authorization
//! specification asks, as a tower layer that any rmcp server can use.
//!
//! Layout:
//! - [`endpoint`]: mounts an rmcp [`ServerHandler`](rmcp::ServerHandler) on `/mcp` over
//!   Streamable HTTP, stateless, serving the `2025-11-25` and `2026-07-28` revisions.
//! - [`plain_calls`]: answers plain `tools/call` requests of tool sets that opt in without an
//!   rmcp service per request; rmcp answers everything else.
//! - [`policy`]: which scopes each tool call needs, declared by the tool set as data.
//! - [`guard`]: the tower layer: bearer token, challenges, envelope checks, per-tool scopes.
//! - [`validator`]: local JWT, remote JWKS and RFC 7662 introspection.
//! - [`metadata`]: the RFC 9728 Protected Resource Metadata document and routes.
//! - [`housekeeping`]: sweeps of the token caches, and their sizes for a long run's log.
//! - [`principal`]: the authenticated caller, and the [`Auth`] extractor tools use to see it.
//!
//! This is the only crate of the workspace that speaks rmcp's transport; tool sets
//! implement rmcp's handler trait and hand it to [`endpoint::McpEndpoint`].

pub mod audit;
pub mod cors;
pub mod endpoint;
pub mod guard;
pub mod housekeeping;
pub mod metadata;
pub mod plain_calls;
pub mod policy;
pub mod principal;
pub mod trace;
pub mod validator;

pub use audit::{AuditSink, TallyWriter, ToolCallCount, ToolCallEvent, ToolCallTally};
pub use endpoint::{EndpointConfig, McpEndpoint};
pub use guard::Guard;
pub use metadata::ResourceMetadata;
pub use plain_calls::DirectTools;
pub use policy::{ToolRule, ToolScopePolicy};
pub use principal::{Auth, Principal};
pub use rmcp;
pub use validator::{Reason, Rejection, TokenValidator};
