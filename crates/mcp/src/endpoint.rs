//! Mounting an rmcp handler on `/mcp` (MCP "Streamable HTTP" transport).
//!
//! The endpoint runs stateless (`legacy_session_mode = false`): no `Mcp-Session-Id` is
//! minted, so any number of instances can serve one URL. Clients of the `2025-11-25`
//! revision still get their `initialize` handshake answered; clients of `2026-07-28`
//! use `server/discover` and per-request `_meta`. rmcp validates the transport rules
//! (`Mcp-Method`/`Mcp-Name`, `MCP-Protocol-Version`, batching, content types).

use std::convert::Infallible;
use std::future::{Future, ready};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::Response;
use http::{Method, Request};
use rmcp::{
    ServerHandler,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    },
};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::guard::Envelope;
use crate::plain_calls::{self, DirectGate, DirectTools};
use crate::principal::Principal;

/// Largest JSON-RPC request body accepted on `/mcp`. A calculator call is a few hundred
/// bytes; 64 KiB leaves room for tools with larger inputs while bounding hostile ones.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

/// What the endpoint needs to know about its deployment.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// The canonical URL of the MCP endpoint, e.g. `https://calc.example/mcp`.
    pub resource: Url,
    /// Browser origins allowed besides the resource's own (RFC 6454 serialization).
    pub extra_origins: Vec<String>,
    /// Bound on the request body, enforced while streaming.
    pub max_body_bytes: usize,
    /// Cancelled on shutdown, so open response streams end.
    pub cancel: CancellationToken,
}

impl EndpointConfig {
    pub fn new(resource: Url) -> Self {
        Self {
            resource,
            extra_origins: Vec::new(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            cancel: CancellationToken::new(),
        }
    }

    /// `Host` values accepted (DNS-rebinding protection, MCP transport "Security Warning").
    /// Derived from the public URL, never from the request. A loopback deployment also
    /// accepts the other loopback names, so `localhost` and `127.0.0.1` both work.
    pub fn allowed_hosts(&self) -> Vec<String> {
        let host = self.resource.host_str().unwrap_or_default().to_owned();
        let port = self.resource.port();
        let mut names = vec![host.clone()];
        if is_loopback_host(&host) {
            names = vec![
                "localhost".into(),
                "127.0.0.1".into(),
                "[::1]".into(),
                "::1".into(),
            ];
        }
        names
            .into_iter()
            .map(|n| match port {
                Some(p) => format!("{n}:{p}"),
                None => n,
            })
            .collect()
    }

    /// `Origin` values accepted. Browsers send `Origin` on cross-origin requests; an
    /// unlisted one is refused with 403 (MCP transport: servers MUST validate `Origin`).
    /// Loopback deployments accept loopback origins on any port, because local browser
    /// clients (an inspector page, say) run on ports of their own.
    pub fn allowed_origins(&self) -> Vec<String> {
        let mut origins = vec![self.resource.origin().ascii_serialization()];
        if self.resource.host_str().is_some_and(is_loopback_host) {
            origins.extend(
                ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"].map(String::from),
            );
        }
        origins.extend(self.extra_origins.iter().cloned());
        origins
    }

    fn rmcp_config(&self) -> StreamableHttpServerConfig {
        StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true)
            .with_sse_keep_alive(None)
            .with_allowed_hosts(self.allowed_hosts())
            .with_allowed_origins(self.allowed_origins())
            .enforce_origin_validation()
            .with_max_request_body_bytes(self.max_body_bytes)
            .with_cancellation_token(self.cancel.child_token())
    }
}

/// CORS for `/mcp`: browser clients on an allowed origin may call it with a bearer
/// token and read the challenge. Origins outside the list get no CORS headers (and
/// rmcp refuses them with 403). Requests without `Origin` take
/// [`crate::cors::FastCors`]'s short path.
pub fn cors(config: &EndpointConfig) -> crate::cors::FastCors {
    use http::{HeaderName, Method, header};
    let allowed = config.allowed_origins();
    let layer = tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::AllowOrigin::predicate(
            move |origin, _| {
                origin
                    .to_str()
                    .is_ok_and(|o| allowed.iter().any(|a| origin_matches(a, o)))
            },
        ))
        .allow_methods([Method::POST, Method::GET, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            HeaderName::from_static("mcp-protocol-version"),
            HeaderName::from_static("mcp-method"),
            HeaderName::from_static("mcp-name"),
            HeaderName::from_static("mcp-session-id"),
            HeaderName::from_static("last-event-id"),
        ])
        .expose_headers([
            header::WWW_AUTHENTICATE,
            HeaderName::from_static("mcp-session-id"),
        ])
        .max_age(std::time::Duration::from_secs(600));
    crate::cors::FastCors::new(layer)
}

/// `pattern` is an origin, or an origin whose port is `*`.
pub fn origin_matches(pattern: &str, origin: &str) -> bool {
    match pattern.strip_suffix(":*") {
        Some(prefix) => origin.strip_prefix(prefix).is_some_and(|rest| {
            rest.is_empty()
                || (rest.starts_with(':') && rest[1..].bytes().all(|b| b.is_ascii_digit()))
        }),
        None => pattern == origin,
    }
}

/// True for `localhost`, `127.0.0.0/8` and `::1`.
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The tower service that answers `/mcp` for a tool set: rmcp's Streamable HTTP
/// service, plus, for tool sets that opt in, the direct answer to plain tool calls
/// (see [`crate::plain_calls`]).
pub struct McpEndpoint<H> {
    rmcp: Arc<StreamableHttpService<H, LocalSessionManager>>,
    direct: Option<(Arc<dyn DirectTools>, DirectGate)>,
}

impl<H> Clone for McpEndpoint<H> {
    fn clone(&self) -> Self {
        Self {
            rmcp: self.rmcp.clone(),
            direct: self.direct.clone(),
        }
    }
}

impl<H: ServerHandler + Send + 'static> McpEndpoint<H> {
    /// Builds the Streamable HTTP service. `factory` makes the handler for each request;
    /// handlers are cheap to clone (the tool set is shared behind an `Arc`).
    pub fn service<F>(factory: F, config: &EndpointConfig) -> Self
    where
        F: Fn() -> H + Send + Sync + 'static,
    {
        Self {
            rmcp: Arc::new(StreamableHttpService::new(
                move || Ok(factory()),
                Default::default(),
                config.rmcp_config(),
            )),
            direct: None,
        }
    }

    /// Answers plain calls of `tools` directly. Needs the envelope the [`Guard`]
    /// leaves on the request (use [`Guard::open`] when there is no authentication);
    /// without it every request goes to rmcp.
    ///
    /// [`Guard`]: crate::Guard
    /// [`Guard::open`]: crate::Guard::open
    pub fn with_direct(mut self, tools: Arc<dyn DirectTools>, config: &EndpointConfig) -> Self {
        let gate = DirectGate {
            hosts: config.allowed_hosts().into(),
            origins: config
                .allowed_origins()
                .into_iter()
                .filter(|o| !o.ends_with(":*"))
                .collect::<Vec<_>>()
                .into(),
        };
        self.direct = Some((tools, gate));
        self
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl<H: ServerHandler + Send + 'static> tower::Service<Request<Body>> for McpEndpoint<H> {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<Body>) -> BoxFuture {
        if let Some((tools, gate)) = &self.direct
            && req.method() == Method::POST
            && let Some(envelope) = req.extensions_mut().remove::<Envelope>()
            && let Some(response) = plain_calls::answer(
                tools.as_ref(),
                gate,
                req.headers(),
                envelope,
                Principal::from_extensions(req.extensions()),
            )
        {
            return Box::pin(ready(Ok(response)));
        }
        // `handle` borrows the shared service: no per-request copy of its configuration
        // (its `Service::call` clones the whole service, allowed-host lists included).
        let rmcp = self.rmcp.clone();
        Box::pin(async move { Ok(rmcp.handle(req).await.map(Body::new)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_origins_of_a_public_deployment() {
        let c = EndpointConfig::new("https://calc.example/mcp".parse().unwrap());
        assert_eq!(c.allowed_hosts(), vec!["calc.example"]);
        assert_eq!(c.allowed_origins(), vec!["https://calc.example"]);
    }

    #[test]
    fn origin_patterns() {
        assert!(origin_matches(
            "http://localhost:*",
            "http://localhost:6274"
        ));
        assert!(origin_matches("http://localhost:*", "http://localhost"));
        assert!(!origin_matches(
            "http://localhost:*",
            "http://localhost.evil.example"
        ));
        assert!(!origin_matches(
            "http://localhost:*",
            "http://localhost:80x"
        ));
        assert!(origin_matches(
            "https://calc.example",
            "https://calc.example"
        ));
        assert!(!origin_matches(
            "https://calc.example",
            "https://calc.example.evil"
        ));
    }

    #[test]
    fn loopback_deployment_accepts_loopback_names_on_its_port() {
        let c = EndpointConfig::new("http://127.0.0.1:8080/mcp".parse().unwrap());
        assert!(c.allowed_hosts().contains(&"localhost:8080".to_owned()));
        assert!(!c.allowed_hosts().iter().any(|h| h.starts_with("evil")));
        assert!(
            c.allowed_origins()
                .contains(&"http://localhost:*".to_owned())
        );
    }
}
