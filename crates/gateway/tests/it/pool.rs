//! The stdio pool serving 2026-07-28 requests: a client that goes away before its
//! answer cancels the request, and the process is told so (MCP "Cancellation": over
//! Streamable HTTP a disconnect is the cancellation; over stdio it is a
//! `notifications/cancelled`).

use std::time::Duration;

use axum::body::Body;
use http::{StatusCode, header};
use http_body_util::BodyExt;
use mcpgate_gateway::UpstreamConfig;
use tower::ServiceExt;

/// A stdio server that writes every line it receives to a log file; it answers
/// `initialize`, answers the tool `quick`, and for any other tool sends one progress
/// notification and never answers.
const SERVER: &str = r#"
import json, sys
log = open(sys.argv[1], "a")
for line in sys.stdin:
    log.write(line); log.flush()
    m = json.loads(line)
    out = None
    if m.get("method") == "initialize":
        out = {"jsonrpc": "2.0", "id": m["id"], "result": {"protocolVersion": "2025-11-25",
               "capabilities": {"tools": {}}, "serverInfo": {"name": "t", "version": "1"}}}
    elif m.get("method") == "tools/call" and m["params"]["name"] == "quick":
        out = {"jsonrpc": "2.0", "id": m["id"], "result": {"content": []}}
    elif m.get("method") == "tools/call":
        out = {"jsonrpc": "2.0", "method": "notifications/message",
               "params": {"level": "info", "data": "working"}}
    if out is not None:
        print(json.dumps(out), flush=True)
"#;

fn gateway(dir: &std::path::Path) -> axum::Router {
    let script = dir.join("server.py");
    std::fs::write(&script, SERVER).unwrap();
    let command = format!(
        "python3 {} {}",
        script.display(),
        dir.join("received.log").display()
    );
    let cfg = UpstreamConfig::from_flag("default", None, Some(command));
    crate::forward::gateway_for(cfg).0
}

/// A 2026-07-28 `tools/call` of `tool`.
fn call(tool: &str) -> http::Request<Body> {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": tool, "arguments": {}, "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {}}}});
    http::Request::post("/mcp")
        .header(header::HOST, "gw.test")
        .header(header::AUTHORIZATION, "Bearer good")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// The cancellations the server received, as the ids they name.
fn cancelled(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("received.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["method"] == "notifications/cancelled")
        .map(|m| m["params"]["requestId"].to_string())
        .collect()
}

/// The id the gateway gave the call of `tool`.
fn sent_id(dir: &std::path::Path, tool: &str) -> Option<String> {
    std::fs::read_to_string(dir.join("received.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|m| m["method"] == "tools/call" && m["params"]["name"] == tool)
        .map(|m| m["id"].to_string())
}

#[tokio::test]
async fn a_client_that_goes_away_cancels_its_request_at_the_stdio_server() {
    let dir = std::env::temp_dir().join(format!(
        "mcpgate-pool-{}",
        mcpgate_core::secret::random_id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let gw = gateway(&dir);
    // Answered in full: nothing to cancel.
    let resp = gw.clone().oneshot(call("quick")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.into_body().collect().await.unwrap();
    // Its answer streaming, the client goes away: the response is dropped.
    let resp = gw.oneshot(call("slow")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    drop(resp);
    let slow = sent_id(&dir, "slow").expect("the call reached the server");
    let mut got = Vec::new();
    for _ in 0..50 {
        got = cancelled(&dir);
        if !got.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(got, vec![slow], "one cancellation, of the abandoned call");
    let quick = sent_id(&dir, "quick").unwrap();
    assert_ne!(quick, got[0]);
    let _ = std::fs::remove_dir_all(&dir);
}
