//! Building and serving the one-port application.

use axum::{Router, routing::get};
use mcpgate_calculator::Calculator;
use mcpgate_mcp::{EndpointConfig, Guard, McpEndpoint};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::config;

/// Everything the app needs to know, already resolved from flags, env and file.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Public origin, e.g. `http://127.0.0.1:8080` (no trailing slash).
    pub public_base: String,
    pub extra_origins: Vec<String>,
    pub max_body_bytes: usize,
}

impl AppConfig {
    pub fn new(public_url: &Url) -> Self {
        Self {
            public_base: config::origin_string(public_url),
            extra_origins: Vec::new(),
            max_body_bytes: mcpgate_mcp::endpoint::DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// The canonical URL of the MCP endpoint: the resource tokens are bound to.
    pub fn resource(&self) -> Url {
        format!("{}/mcp", self.public_base)
            .parse()
            .expect("public base is a URL")
    }
}

/// The application router.
pub fn router(cfg: &AppConfig, cancel: CancellationToken) -> Router {
    let mut endpoint = EndpointConfig::new(cfg.resource());
    endpoint.extra_origins = cfg.extra_origins.clone();
    endpoint.max_body_bytes = cfg.max_body_bytes;
    endpoint.cancel = cancel;
    let calculator = Calculator::new();
    let mcp = Router::new().nest_service(
        "/mcp",
        McpEndpoint::service(move || calculator.clone(), &endpoint),
    );
    let mcp = Guard::open(cfg.max_body_bytes).protect(mcp);
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(mcp)
}

/// Serves `router` on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
