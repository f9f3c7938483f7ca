//! People kept apart: a stdio process one person used is never lent to another, and
//! one person cannot hold every process or session (nor push out someone else's).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use http::{Method, StatusCode, header};
use http_body_util::BodyExt;
use mcpgate_gateway::UpstreamConfig;
use serde_json::{Value, json};
use tower::ServiceExt;

/// A stdio server with state, as most are: `store` keeps a note, `read` returns every
/// note kept, `slow` creates the file its `mark` names and never answers.
const NOTES: &str = r#"
import json, sys
notes = []
for line in sys.stdin:
    m = json.loads(line)
    if "id" not in m:
        continue
    r = {"content": []}
    if m.get("method") == "initialize":
        r = {"protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
             "serverInfo": {"name": "notes", "version": "1"}}
    elif m.get("method") == "tools/call":
        name = m["params"]["name"]
        if name == "store":
            notes.append(m["params"]["arguments"]["note"])
        elif name == "read":
            r = {"content": [{"type": "text", "text": json.dumps(notes)}]}
        elif name == "slow":
            open(m["params"]["arguments"]["mark"], "w").close()
            continue
    print(json.dumps({"jsonrpc": "2.0", "id": m["id"], "result": r}), flush=True)
"#;

fn stdio_gateway(tweak: impl FnOnce(&mut UpstreamConfig)) -> (Router, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "mcpgate-people-{}",
        mcpgate_core::secret::random_id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("notes.py");
    std::fs::write(&script, NOTES).unwrap();
    let mut cfg = UpstreamConfig::from_flag(
        "default",
        None,
        Some(format!("python3 {}", script.display())),
    );
    cfg.pool_wait_ms = 500;
    tweak(&mut cfg);
    (crate::forward::gateway_for(cfg).0, dir)
}

/// A 2026-07-28 `tools/call` by the holder of `token`.
fn modern(token: &str, tool: &str, arguments: Value) -> http::Request<Body> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": tool, "arguments": arguments, "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {}}}});
    http::Request::post("/mcp")
        .header(header::HOST, "gw.test")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// The text of the final answer in an SSE body.
async fn answer_text(resp: Response) -> String {
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&body);
    let data = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .next_back()
        .unwrap_or_default()
        .to_owned();
    let v: Value = serde_json::from_str(&data).unwrap_or_default();
    v["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Before, the pool lent any idle process to anyone: alice's note was bob's to read.
#[tokio::test]
async fn one_persons_pooled_process_is_never_lent_to_another() {
    let (gw, dir) = stdio_gateway(|_| {});
    let stored = gw
        .clone()
        .oneshot(modern("good", "store", json!({"note": "alice's secret"})))
        .await
        .unwrap();
    assert_eq!(stored.status(), StatusCode::OK);
    answer_text(stored).await;
    let read = |token: &'static str| {
        let gw = gw.clone();
        async move {
            let resp = gw.oneshot(modern(token, "read", json!({}))).await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            answer_text(resp).await
        }
    };
    assert_eq!(read("bob").await, "[]", "bob's process is his own");
    assert_eq!(read("good").await, r#"["alice's secret"]"#);
    let _ = std::fs::remove_dir_all(dir);
}

/// Before, one person holding every pooled process made everyone else wait for 503.
#[tokio::test]
async fn one_person_cannot_hold_the_whole_pool() {
    let (gw, dir) = stdio_gateway(|c| {
        c.pool_size = 2;
        c.pool_per_person = Some(1);
    });
    // Bob's first call holds his one process (it never answers)...
    let mark = dir.join("slow-started");
    let held = tokio::spawn(gw.clone().oneshot(modern(
        "bob",
        "slow",
        json!({"mark": mark.display().to_string()}),
    )));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !mark.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slow call started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // ...his second waits for it and is refused...
    let second = gw
        .clone()
        .oneshot(modern("bob", "read", json!({})))
        .await
        .unwrap();
    assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
    // ...while alice is served from the room he could not take.
    let alice = gw
        .clone()
        .oneshot(modern("good", "read", json!({})))
        .await
        .unwrap();
    assert_eq!(alice.status(), StatusCode::OK);
    assert_eq!(answer_text(alice).await, "[]");
    held.abort();
    let _ = std::fs::remove_dir_all(dir);
}

/// A 2025-11-25 `initialize` by the holder of `token`; the session id it opened.
async fn open_session(gw: &Router, token: &str) -> Option<String> {
    let body = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}});
    let req = http::Request::post("/mcp")
        .header(header::HOST, "gw.test")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json, text/event-stream")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = gw.clone().oneshot(req).await.unwrap();
    let sid = resp
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_owned());
    resp.into_body().collect().await.unwrap();
    sid
}

async fn call_in_session(gw: &Router, token: &str, sid: &str) -> StatusCode {
    let body = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "read", "arguments": {}}});
    let req = http::Request::post("/mcp")
        .header(header::HOST, "gw.test")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .header("mcp-session-id", sid)
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = gw.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    resp.into_body().collect().await.unwrap();
    status
}

/// Before, one person could open every stdio session and make everyone's
/// `initialize` a 503.
#[tokio::test]
async fn stdio_sessions_are_capped_per_person_and_the_idle_go_first() {
    let (gw, dir) = stdio_gateway(|c| {
        c.max_sessions = 4;
        c.max_sessions_per_person = Some(2);
    });
    let alice = open_session(&gw, "good").await.expect("alice's session");
    let mut bobs = Vec::new();
    for _ in 0..6 {
        bobs.push(
            open_session(&gw, "bob")
                .await
                .expect("bob may always open one"),
        );
    }
    // Bob's newest two live; his older ones made room for them; alice's stands.
    assert_eq!(call_in_session(&gw, "good", &alice).await, StatusCode::OK);
    assert_eq!(call_in_session(&gw, "bob", &bobs[5]).await, StatusCode::OK);
    assert_eq!(call_in_session(&gw, "bob", &bobs[4]).await, StatusCode::OK);
    assert_eq!(
        call_in_session(&gw, "bob", &bobs[0]).await,
        StatusCode::NOT_FOUND
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// An HTTP upstream that opens a session per `initialize` and records `DELETE`s.
async fn session_upstream() -> (String, Arc<Mutex<Vec<String>>>) {
    let deleted: Arc<Mutex<Vec<String>>> = Arc::default();
    async fn handle(State(deleted): State<Arc<Mutex<Vec<String>>>>, req: Request) -> Response {
        if req.method() == Method::DELETE {
            let sid = req.headers()["mcp-session-id"].to_str().unwrap().to_owned();
            deleted.lock().unwrap().push(sid);
            return StatusCode::NO_CONTENT.into_response();
        }
        let sid = mcpgate_core::secret::random_id();
        (
            [
                (header::CONTENT_TYPE, "application/json".to_owned()),
                (header::HeaderName::from_static("mcp-session-id"), sid),
            ],
            r#"{"jsonrpc":"2.0","id":0,"result":{}}"#,
        )
            .into_response()
    }
    let app = Router::new()
        .route("/mcp", any(handle))
        .with_state(deleted.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/mcp"), deleted)
}

/// Before, one person's new sessions pushed other people's bindings out of the book,
/// and a dropped binding left its session open upstream.
#[tokio::test]
async fn an_http_session_binding_dropped_for_room_is_ended_upstream() {
    let (url, deleted) = session_upstream().await;
    let mut cfg = UpstreamConfig::from_flag("default", Some(url), None);
    cfg.max_sessions_per_person = Some(2);
    let (gw, _cancel) = crate::forward::gateway_for(cfg);
    let alice = open_session(&gw, "good").await.unwrap();
    let mut bobs = Vec::new();
    for _ in 0..5 {
        bobs.push(open_session(&gw, "bob").await.unwrap());
    }
    assert_eq!(call_in_session(&gw, "good", &alice).await, StatusCode::OK);
    assert_eq!(call_in_session(&gw, "bob", &bobs[4]).await, StatusCode::OK);
    assert_eq!(
        call_in_session(&gw, "bob", &bobs[0]).await,
        StatusCode::NOT_FOUND
    );
    // The three of bob's that made room are ended at the upstream.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut got = deleted.lock().unwrap().clone();
        got.sort();
        let mut want = bobs[..3].to_vec();
        want.sort();
        if got == want {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "DELETEs: {got:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
