//! Spawning the app on `127.0.0.1:0` and talking to it.

use mcpgate::app::{self, AppConfig};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    cancel: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl TestApp {
    pub async fn spawn() -> Self {
        install_crypto();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");
        let cfg = AppConfig::new(&base.parse().unwrap());
        let cancel = CancellationToken::new();
        let router = app::router(&cfg, cancel.clone());
        tokio::spawn(app::serve(listener, router, cancel.clone()));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self { base, http, cancel }
    }

    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base)
    }

    /// A POST to `/mcp` as a 2026-07-28 client sends it, with the standard headers.
    pub fn modern(
        &self,
        method: &str,
        name: Option<&str>,
        params: Value,
    ) -> reqwest::RequestBuilder {
        let mut params = params;
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {}
        });
        let mut rb = self
            .http
            .post(self.mcp_url())
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", method);
        if let Some(n) = name {
            rb = rb.header("mcp-name", n);
        }
        rb.body(json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string())
    }

    pub fn calc(&self, op: &str, a: Value, b: Value) -> reqwest::RequestBuilder {
        self.modern(
            "tools/call",
            Some("calculator"),
            json!({"name": "calculator", "arguments": {"operation": op, "a": a, "b": b}}),
        )
    }
}

/// Reads a JSON body, whatever the status.
pub async fn body_json(r: reqwest::Response) -> Value {
    let text = r.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}
