//! The HTTP forwarding path end to end: what the upstream receives, what the client
//! gets back, and the gateway's own answers when the upstream fails (502), is slow
//! (504) or holds a stream open across a shutdown.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use http::{HeaderMap, StatusCode, header};
use http_body_util::BodyExt;
use mcpgate_core::ScopeSet;
use mcpgate_gateway::config::DEFAULT_SCOPE;
use mcpgate_gateway::{Identity, IdentityMode, Upstream, UpstreamConfig};
use mcpgate_mcp::{EndpointConfig, Guard, Principal, Reason, Rejection, TokenValidator};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

const CALL: &str =
    r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"add","arguments":{"a":1}}}"#;
const ANSWER: &str = r#"{"jsonrpc":"2.0","id":7,"result":{"content":[]}}"#;

/// Accepts the token `good` as alice and `bob` as bob, both with the flag upstream's
/// scope.
pub(crate) struct OneToken;

#[async_trait::async_trait]
impl TokenValidator for OneToken {
    async fn validate(&self, token: &str) -> Result<Arc<Principal>, Rejection> {
        let subject = match token {
            "good" => "alice",
            "bob" => "bob",
            _ => return Err(Rejection::Invalid(Reason::BadSignature)),
        };
        Ok(Arc::new(Principal {
            subject: subject.into(),
            username: Some(subject.into()),
            email: None,
            client_id: "c1".into(),
            scopes: ScopeSet::parse(DEFAULT_SCOPE).unwrap(),
            session_id: None,
            expires_at: i64::MAX / 2,
            jkt: None,
        }))
    }
}

/// What the upstream saw: each request's headers and body.
type Seen = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// An upstream on a loopback port: POSTs are answered with [`ANSWER`] (after 3 s
/// when the body says `slow`); a GET opens an SSE stream that sends one event and
/// then stays open.
async fn upstream() -> (String, Seen) {
    let seen: Seen = Arc::default();
    async fn handle(State(seen): State<Seen>, req: Request) -> Response {
        let (parts, body) = req.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        seen.lock()
            .unwrap()
            .push((parts.headers.clone(), body.clone()));
        if parts.method == http::Method::GET {
            let first = futures_util::stream::once(async {
                Ok::<_, std::io::Error>(Bytes::from_static(b"data: {\"n\":1}\n\n"))
            });
            let then_nothing = futures_util::stream::pending();
            let stream = futures_util::StreamExt::chain(first, then_nothing);
            return (
                [(header::CONTENT_TYPE, "text/event-stream")],
                Body::from_stream(stream),
            )
                .into_response();
        }
        if body.windows(4).any(|w| w == b"slow") {
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::SET_COOKIE, "upstream=1"),
            ],
            ANSWER,
        )
            .into_response()
    }
    let app = Router::new()
        .route("/mcp", any(handle))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/mcp"), seen)
}

/// The gateway in front of `url` (at `http://gw.test/mcp`), and its shutdown token.
fn gateway(url: &str, timeout_secs: u64) -> (Router, CancellationToken) {
    let mut cfg = UpstreamConfig::from_flag("default", Some(url.to_owned()), None);
    cfg.timeout_secs = timeout_secs;
    gateway_for(cfg)
}

/// The gateway for the upstream `cfg` at `http://gw.test/mcp`, with [`OneToken`] as
/// its guard's validator, and its shutdown token.
pub(crate) fn gateway_for(cfg: UpstreamConfig) -> (Router, CancellationToken) {
    let cancel = CancellationToken::new();
    let mut endpoint = EndpointConfig::new("http://gw.test/mcp".parse().unwrap());
    endpoint.cancel = cancel.clone();
    let guard = Guard::new(
        Arc::new(OneToken),
        cfg.policy(),
        "http://gw.test/.well-known/oauth-protected-resource/mcp".into(),
        endpoint.max_body_bytes,
    );
    let identity = Identity::new(IdentityMode::None, cfg.audience(), None);
    let client = mcpgate_gateway::http_client();
    let up = Upstream::new(cfg, &endpoint, identity, None, client, cancel.clone());
    (
        mcpgate_gateway::router(up, "/mcp", &guard, &endpoint),
        cancel,
    )
}

fn call(body: &str) -> Request {
    http::Request::post("/mcp")
        .header(header::HOST, "gw.test")
        .header(header::AUTHORIZATION, "Bearer good")
        .header(header::COOKIE, "session=secret")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

#[tokio::test]
async fn a_call_reaches_the_upstream_without_the_clients_credentials() {
    let (url, seen) = upstream().await;
    let (gw, _cancel) = gateway(&url, 10);
    let resp = gw.oneshot(call(CALL)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers().get(header::SET_COOKIE).is_none());
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, ANSWER, "the upstream's answer, byte for byte");
    let seen = seen.lock().unwrap();
    let (headers, body) = &seen[0];
    assert_eq!(body, CALL, "the client's body, byte for byte");
    assert!(
        headers.get(header::AUTHORIZATION).is_none(),
        "no token passthrough"
    );
    assert!(headers.get(header::COOKIE).is_none());
    let authority = url.trim_start_matches("http://").trim_end_matches("/mcp");
    assert_eq!(headers[header::HOST], authority, "Host names the upstream");
    assert_eq!(headers["mcp-protocol-version"], "2025-11-25");
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_502_json_rpc_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/mcp", closed.local_addr().unwrap());
    drop(closed);
    let (gw, _cancel) = gateway(&url, 10);
    let resp = gw.oneshot(call(CALL)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["id"], 7);
    assert_eq!(v["error"]["code"], -32603);
}

#[tokio::test]
async fn a_slow_upstream_is_a_504_at_the_timeout() {
    let (url, _seen) = upstream().await;
    let (gw, _cancel) = gateway(&url, 1);
    let slow = CALL.replace(r#""a":1"#, r#""a":"slow""#);
    let start = Instant::now();
    let resp = gw.oneshot(call(&slow)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::GATEWAY_TIMEOUT);
    assert!(
        start.elapsed() < Duration::from_millis(2500),
        "not the upstream's 3 s"
    );
}

#[tokio::test]
async fn sse_events_flow_as_written_and_shutdown_ends_the_stream() {
    let (url, _seen) = upstream().await;
    let (gw, cancel) = gateway(&url, 10);
    let get = http::Request::get("/mcp")
        .header(header::HOST, "gw.test")
        .header(header::AUTHORIZATION, "Bearer good")
        .header(header::ACCEPT, "text/event-stream")
        .body(Body::empty())
        .unwrap();
    let resp = gw.oneshot(get).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let first = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("the first event arrives while the stream is open")
        .unwrap()
        .unwrap();
    assert_eq!(first.into_data().unwrap(), "data: {\"n\":1}\n\n");
    cancel.cancel();
    let end = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("shutdown ends the stream");
    assert!(end.is_none());
}
