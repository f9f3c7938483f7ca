//! mcpgate-gateway: the whole of mcpgate in front of any MCP server, unchanged.
//!
//! Each upstream is its own protected resource (`/mcp/<name>`, or `/mcp` alone): the
//! guard of `mcpgate-mcp` authenticates the request and applies the upstream's tool
//! policy *before* anything reaches the upstream; this crate then carries the request
//! over, transparently for everything but credentials.
//!
//! Layout:
//! - [`config`]: an upstream's declaration and the scope policy it makes.
//! - [`forward`]: Streamable HTTP upstreams: streamed bodies over [`client`], a pool
//!   of HTTP/1.1 connections per upstream.
//! - [`stdio`]: stdio upstreams: a process per MCP session, bridged to Streamable HTTP.
//! - [`sessions`]: upstream sessions bound to the person who opened them.
//! - [`headers`]: what crosses the gateway (never the client's token).
//! - [`identity`]: what the upstream learns of the caller; [`jwt_cache`] reuses its JWTs.
//! - [`policy`]: scopes for tools, prompts and resources; [`filter`] narrows lists to them.
//! - [`errors`]: the gateway's own JSON-RPC error answers (502, 504, …).

pub mod client;
pub mod config;
pub mod credentials;
pub mod errors;
pub mod filter;
pub mod forward;
pub mod headers;
pub mod identity;
pub mod jwt_cache;
pub mod policy;
pub mod sessions;
pub mod stdio;
pub mod uri;

use std::sync::Arc;
use std::time::Duration;

use axum::{
    Router,
    extract::{Request, State},
    response::Response,
    routing::any,
};
use http::{HeaderMap, Method};
use mcpgate_mcp::audit::{AuditSink, ToolCallEvent};
use mcpgate_mcp::guard::{Challenger, Envelope, Refusal};
use mcpgate_mcp::{EndpointConfig, Guard, Principal};
use tokio_util::sync::CancellationToken;

pub use config::{CredentialsMode, IdentityMode, UpstreamConfig};
pub use credentials::{Elicitation, PersonalCredentials};
use errors::GatewayError;
pub use identity::{EmailDirectory, Identity, JwtSigner};
use policy::GatewayPolicy;

/// `Mcp-Session-Id` (MCP transport, "Session Management"). A `HeaderName` rather
/// than a string: a lookup by string parses the name again every time.
pub static SESSION_HEADER: http::HeaderName = http::HeaderName::from_static("mcp-session-id");

/// One upstream, ready to serve.
pub struct Upstream {
    pub cfg: UpstreamConfig,
    pub policy: Arc<GatewayPolicy>,
    pub identity: Identity,
    /// Each person's own token, when the upstream wants it (`per_person_token`).
    pub credentials: Option<Arc<dyn PersonalCredentials>>,
    /// Step-up challenges for prompts and resources (tools get theirs from the guard).
    challenger: Challenger,
    transport: Transport,
    hosts: Vec<String>,
    origins: Vec<String>,
    max_body_bytes: usize,
}

enum Transport {
    /// Boxed: hyper's client is large beside a stdio pool's handle.
    Http(Box<forward::HttpUpstream>),
    Stdio(stdio::StdioPool),
}

impl Upstream {
    /// Builds the runtime of `cfg` (validated) for the endpoint `endpoint` describes.
    /// `client` opens the connections of every HTTP upstream; each keeps its own pool.
    pub fn new(
        cfg: UpstreamConfig,
        endpoint: &EndpointConfig,
        identity: Identity,
        credentials: Option<Arc<dyn PersonalCredentials>>,
        client: client::UpstreamClient,
        cancel: CancellationToken,
    ) -> Arc<Self> {
        let policy = Arc::new(cfg.gateway_policy());
        let challenger = Challenger {
            metadata_url: mcpgate_mcp::metadata::metadata_url(&endpoint.resource),
            scope_hint: policy.all_scopes().to_string(),
        };
        let transport = match cfg.http_url() {
            Some(url) => Transport::Http(Box::new(forward::HttpUpstream::new(
                client, &url, &cfg, cancel,
            ))),
            None => Transport::Stdio(stdio::StdioPool::new(&cfg, cancel)),
        };
        Arc::new(Self {
            policy,
            challenger,
            identity,
            credentials,
            transport,
            hosts: endpoint.allowed_hosts(),
            origins: endpoint.allowed_origins(),
            max_body_bytes: endpoint.max_body_bytes,
            cfg,
        })
    }

    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    pub fn timeout(&self) -> Duration {
        self.cfg.timeout()
    }

    /// DNS-rebinding protection (MCP transport, "Security Warning"): `Host` must be
    /// this deployment's and `Origin`, when present, an allowed one.
    fn check_host_and_origin(&self, headers: &HeaderMap) -> Result<(), GatewayError> {
        let host = headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .ok_or(GatewayError::ForeignOrigin)?;
        if !self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            return Err(GatewayError::ForeignOrigin);
        }
        if let Some(origin) = headers.get(http::header::ORIGIN) {
            let o = origin.to_str().map_err(|_| GatewayError::ForeignOrigin)?;
            if !self
                .origins
                .iter()
                .any(|a| mcpgate_mcp::endpoint::origin_matches(a, o))
            {
                return Err(GatewayError::ForeignOrigin);
            }
        }
        Ok(())
    }
}

/// The routes of one upstream at `path`, behind `guard` and CORS.
pub fn router(up: Arc<Upstream>, path: &str, guard: &Guard, endpoint: &EndpointConfig) -> Router {
    let r = Router::new().route(path, any(handle)).with_state(up);
    guard
        .protect(r)
        .layer(mcpgate_mcp::endpoint::cors(endpoint))
}

async fn handle(State(up): State<Arc<Upstream>>, req: Request) -> Response {
    let envelope = req.extensions().get::<Envelope>();
    let id = envelope.and_then(|e| e.id.clone());
    // The guard refuses the others already; nothing but these reaches an upstream.
    if !matches!(*req.method(), Method::POST | Method::GET | Method::DELETE) {
        return GatewayError::Method.respond(id.as_ref());
    }
    if let Err(e) = up.check_host_and_origin(req.headers()) {
        return e.respond(id.as_ref());
    }
    let Some(principal) = req.extensions().get::<Arc<Principal>>().cloned() else {
        // The guard always authenticates; without it nothing is forwarded.
        return GatewayError::ForeignSession.respond(id.as_ref());
    };
    if req.method() == Method::POST {
        // The guard read every POST body; one it did not is not forwarded.
        let Some(e) = envelope else {
            return GatewayError::BadGateway.respond(None);
        };
        if let Some(method) = e.method.as_deref() {
            let mcp = stdio::stateless::McpHeaders::read(req.headers());
            if mcp.agree(method, e.target(), mcp.is_modern()).is_err() {
                return GatewayError::HeaderMismatch.respond(id.as_ref());
            }
            match up.policy.check(method, e.target(), &principal.scopes) {
                Ok(()) => {}
                Err(policy::Refusal::Denied) => {
                    return GatewayError::Forbidden.respond(id.as_ref());
                }
                Err(policy::Refusal::NotNormal) => {
                    return GatewayError::NotNormal.respond(id.as_ref());
                }
                Err(policy::Refusal::NeedsScope(need)) => {
                    return up.challenger.respond(Refusal::InsufficientScope(need));
                }
            }
        }
    }
    match &up.transport {
        Transport::Http(h) => forward::forward(&up, h, principal, req).await,
        Transport::Stdio(pool) => pool.handle(&up, principal, req).await,
    }
}

/// Counts tool calls per upstream: the tool is recorded as `<upstream>/<tool>`.
pub struct UpstreamAudit {
    pub name: String,
    pub sink: Arc<dyn AuditSink>,
}

impl AuditSink for UpstreamAudit {
    fn tool_call(&self, e: &ToolCallEvent<'_>) {
        // Built by hand: `format!` costs several times this on every call.
        let mut tool = String::with_capacity(self.name.len() + 1 + e.tool.len());
        tool.push_str(&self.name);
        tool.push('/');
        tool.push_str(e.tool);
        self.sink.tool_call(&ToolCallEvent { tool: &tool, ..*e });
    }
}

/// How every HTTP upstream opens its connections (see [`client`]).
pub fn http_client() -> client::UpstreamClient {
    client::build()
}
