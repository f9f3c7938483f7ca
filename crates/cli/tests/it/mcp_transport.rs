//! The calculator over Streamable HTTP, both revisions, and the transport's answers
//! to bad input (MCP "Streamable HTTP", JSON-RPC 2.0 §5.1).

use rmcp::{
    ClientHandler, ClientLifecycleMode, ClientServiceExt, ServiceExt,
    model::{CallToolRequestParams, ProtocolVersion},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};

use crate::support::{TestApp, body_json};

#[derive(Clone, Default)]
struct Client;
impl ClientHandler for Client {}

fn add_5_8() -> CallToolRequestParams {
    CallToolRequestParams::new("calculator").with_arguments(
        json!({"operation": "add", "a": 5, "b": 8})
            .as_object()
            .unwrap()
            .clone(),
    )
}

fn transport(app: &TestApp) -> StreamableHttpClientTransport<reqwest::Client> {
    StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(app.mcp_url()).auth_header(app.all_ops()),
    )
}

#[tokio::test]
async fn rmcp_client_adds_over_legacy_initialize() {
    let app = TestApp::spawn().await;
    let client = Client.serve(transport(&app)).await.unwrap();
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0].name, "calculator");
    assert_eq!(
        tools[0].description.as_deref(),
        Some("Perform basic math operations")
    );
    let r = client.call_tool(add_5_8()).await.unwrap();
    assert_eq!(r.structured_content, Some(json!({"result": 13.0})));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn rmcp_client_adds_over_stateless_2026() {
    let app = TestApp::spawn().await;
    let client = Client
        .serve_with_lifecycle(
            transport(&app),
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .unwrap();
    let r = client.call_tool(add_5_8()).await.unwrap();
    assert_eq!(r.structured_content, Some(json!({"result": 13.0})));
    assert_eq!(
        client.peer_info().unwrap().protocol_version,
        ProtocolVersion::V_2026_07_28
    );
}

#[tokio::test]
async fn tools_call_answers_13_over_raw_http() {
    let app = TestApp::spawn().await;
    let r = app
        .calc("add", json!(5), json!(8))
        .bearer_auth(app.all_ops())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v = body_json(r).await;
    assert_eq!(v["result"]["content"][0]["text"], "13");
    assert_eq!(v["result"]["structuredContent"]["result"], 13.0);
    assert_eq!(v["result"]["resultType"], "complete");
}

#[tokio::test]
async fn division_by_zero_and_overflow_are_tool_errors() {
    let app = TestApp::spawn().await;
    for (op, a, b, needle) in [
        ("divide", json!(1), json!(0), "Division by zero"),
        (
            "multiply",
            json!(1e308),
            json!(1e308),
            "not a finite number",
        ),
    ] {
        let v = body_json(
            app.calc(op, a, b)
                .bearer_auth(app.all_ops())
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(v["result"]["isError"], true, "{v}");
        assert!(
            v["result"]["content"][0]["text"]
                .as_str()
                .unwrap()
                .contains(needle),
            "{v}"
        );
        assert!(
            v["result"].get("structuredContent").is_none(),
            "no inf/NaN/null result: {v}"
        );
    }
}

#[tokio::test]
async fn wrong_argument_type_and_unknown_operation_are_tool_errors() {
    let app = TestApp::spawn().await;
    let v = body_json(
        app.calc("add", json!("5"), json!(8))
            .bearer_auth(app.all_ops())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(v["result"]["isError"], true, "{v}");
    let v = body_json(
        app.calc("pow", json!(2), json!(8))
            .bearer_auth(app.all_ops())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(v["result"]["isError"], true, "{v}");
}

#[tokio::test]
async fn unknown_tool_is_a_protocol_error() {
    let app = TestApp::spawn().await;
    let r = app
        .modern(
            "tools/call",
            Some("nope"),
            json!({"name": "nope", "arguments": {}}),
        )
        .bearer_auth(app.all_ops())
        .send()
        .await
        .unwrap();
    let v = body_json(r).await;
    assert_eq!(v["error"]["code"], -32602, "{v}");
}

async fn raw(app: &TestApp, content_type: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let r = app
        .http
        .post(app.mcp_url())
        .header("content-type", content_type)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .bearer_auth(app.all_ops())
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), body_json(r).await)
}

#[tokio::test]
async fn bad_json_is_a_parse_error() {
    let app = TestApp::spawn().await;
    let (status, v) = raw(&app, "application/json", "{bad").await;
    assert_eq!(status, 400);
    assert_eq!(v["error"]["code"], -32700);
    assert_eq!(v["id"], Value::Null);
}

#[tokio::test]
async fn batches_are_refused() {
    let app = TestApp::spawn().await;
    let (status, v) = raw(
        &app,
        "application/json",
        r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]"#,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(v["error"]["code"], -32600);
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let app = TestApp::spawn().await;
    let (status, v) = raw(&app, "text/plain", "{}").await;
    assert_eq!(status, 415);
    assert_eq!(v["error"]["code"], -32600);
}

#[tokio::test]
async fn oversized_body_is_413() {
    let app = TestApp::spawn().await;
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{"pad":"{}"}}}}"#,
        "x".repeat(200_000)
    );
    let (status, v) = raw(&app, "application/json", big).await;
    assert_eq!(status, 413);
    assert_eq!(v["error"]["code"], -32600);
}

#[tokio::test]
async fn foreign_origin_is_403_and_own_origin_passes() {
    let app = TestApp::spawn().await;
    let r = app
        .calc("add", json!(1), json!(2))
        .header("origin", "http://evil.example.com")
        .bearer_auth(app.all_ops())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = app
        .calc("add", json!(1), json!(2))
        .header("origin", app.base.clone())
        .bearer_auth(app.all_ops())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn foreign_host_is_refused() {
    let app = TestApp::spawn().await;
    let r = app
        .calc("add", json!(1), json!(2))
        .header("host", "evil.example.com")
        .bearer_auth(app.all_ops())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
}

#[tokio::test]
async fn missing_or_mismatched_mcp_method_header_is_header_mismatch() {
    let app = TestApp::spawn().await;
    let body = json!({"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{
        "io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}});
    for header in [None, Some("tools/call")] {
        let mut rb = app
            .http
            .post(app.mcp_url())
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .bearer_auth(app.all_ops());
        if let Some(h) = header {
            rb = rb.header("mcp-method", h);
        }
        let r = rb.body(body.to_string()).send().await.unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(body_json(r).await["error"]["code"], -32020);
    }
}

#[tokio::test]
async fn get_and_delete_are_405_and_no_session_is_minted() {
    let app = TestApp::spawn().await;
    for m in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let r = app
            .http
            .request(m, app.mcp_url())
            .bearer_auth(app.all_ops())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405);
    }
    let r = app
        .calc("add", json!(1), json!(2))
        .bearer_auth(app.all_ops())
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("mcp-session-id").is_none());
}

#[tokio::test]
async fn browser_clients_on_allowed_origins_get_cors_and_others_do_not() {
    let app = TestApp::spawn().await;
    let pre = |origin: &'static str, path: &str| {
        app.http
            .request(reqwest::Method::OPTIONS, app.url(path))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type, mcp-protocol-version",
            )
            .send()
    };
    let r = pre("http://localhost:6274", "/mcp").await.unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://localhost:6274"
    );
    assert!(
        r.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
    let r = pre("https://evil.example", "/mcp").await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    // the challenge is readable by an allowed page
    let r = app
        .calc("add", json!(1), json!(2))
        .header("origin", "http://localhost:6274")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("www-authenticate")
    );
    // the OAuth endpoints a browser client calls take no cookies: any origin
    let r = pre("http://localhost:6274", "/token").await.unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let r = pre("http://localhost:6274", "/register").await.unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
}
