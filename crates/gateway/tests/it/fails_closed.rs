//! What the gateway checks is exactly what the upstream runs (issue: the gateway fails
//! closed). The upstream here reads JSON the way Go's `encoding/json` does, member
//! names matched without regard to case, the last duplicate winning, and says which
//! tool or resource it ran: each message below passed a policy that denies `danger`
//! before, and made that upstream run it.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use http::{HeaderMap, Method, StatusCode, header};
use http_body_util::BodyExt;
use mcpgate_gateway::UpstreamConfig;
use serde_json::{Value, json};
use tower::ServiceExt;

/// What the upstream received: method, headers, URI and body of each request, and
/// the target it ran.
#[derive(Default)]
struct Seen {
    requests: Vec<(Method, HeaderMap, String, Bytes)>,
    ran: Vec<String>,
}

type Shared = Arc<Mutex<Seen>>;

/// A JSON value with every member of an object kept, in order, duplicates included.
enum Dup {
    Object(Vec<(String, Dup)>),
    Other(Value),
}

impl<'de> serde::Deserialize<'de> for Dup {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Dup;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Dup, A::Error> {
                let mut v = Vec::new();
                while let Some(e) = m.next_entry::<String, Dup>()? {
                    v.push(e);
                }
                Ok(Dup::Object(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut s: A) -> Result<Dup, A::Error> {
                while s.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Dup::Other(Value::Null))
            }
            fn visit_str<E>(self, s: &str) -> Result<Dup, E> {
                Ok(Dup::Other(s.into()))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Dup, E> {
                Ok(Dup::Other(n.into()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Dup, E> {
                Ok(Dup::Other(n.into()))
            }
            fn visit_f64<E>(self, n: f64) -> Result<Dup, E> {
                Ok(Dup::Other(n.into()))
            }
            fn visit_bool<E>(self, b: bool) -> Result<Dup, E> {
                Ok(Dup::Other(b.into()))
            }
            fn visit_unit<E>(self) -> Result<Dup, E> {
                Ok(Dup::Other(Value::Null))
            }
        }
        d.deserialize_any(V)
    }
}

/// Go-style member lookup: the name matched without regard to case, the last match
/// winning.
fn member<'a>(obj: &'a [(String, Dup)], name: &str) -> Option<&'a Dup> {
    obj.iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .next_back()
}

fn string(d: Option<&Dup>) -> Option<String> {
    match d? {
        Dup::Other(Value::String(s)) => Some(s.clone()),
        _ => None,
    }
}

/// The method and target a case-insensitive, last-wins decoder reads.
fn go_read(body: &[u8]) -> Option<(String, Option<String>)> {
    let Dup::Object(top) = serde_json::from_slice::<Dup>(body).ok()? else {
        return None;
    };
    let method = string(member(&top, "method"))?;
    let target = match member(&top, "params") {
        Some(Dup::Object(p)) => string(member(p, "name")).or_else(|| string(member(p, "uri"))),
        _ => None,
    };
    Some((method, target))
}

async fn go_upstream() -> (String, Shared) {
    let seen: Shared = Arc::default();
    async fn handle(State(seen): State<Shared>, req: Request) -> Response {
        let (parts, body) = req.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        let mut s = seen.lock().unwrap();
        s.requests.push((
            parts.method.clone(),
            parts.headers.clone(),
            parts.uri.to_string(),
            body.clone(),
        ));
        if let Some((method, Some(target))) = go_read(&body)
            && matches!(
                method.as_str(),
                "tools/call" | "resources/read" | "prompts/get"
            )
        {
            s.ran.push(target);
        }
        let answer = json!({"jsonrpc": "2.0", "id": 1, "result": {"content": []}});
        (
            [(header::CONTENT_TYPE, "application/json")],
            answer.to_string(),
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

/// `safe` may be called, `danger` may not; resources under `file:///srv/public/`
/// need the scope, nothing else is allowed.
fn config(url: &str) -> UpstreamConfig {
    toml::from_str(&format!(
        r#"
        name = "default"
        url = "{url}"
        forward_headers = ["x-tenant"]
        scopes = [{{ name = "mcp:tools", description = "Tools" }}]
        tools = [{{ name = "safe", scope = "mcp:tools" }}]
        resources = [{{ uri = "file:///srv/public/*", scope = "mcp:tools" }}]
        "#
    ))
    .unwrap()
}

fn post(body: &str) -> http::request::Builder {
    http::Request::post("/mcp")
        .header(header::HOST, "gw.test")
        .header(header::AUTHORIZATION, "Bearer good")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json, text/event-stream")
        .header(header::CONTENT_LENGTH, body.len())
}

async fn send(gw: &Router, req: http::Request<Body>) -> (StatusCode, Value) {
    let resp = gw.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_go_style_upstream_reads_what_the_tests_say() {
    // The decoder above is the attacker's friend: check it reads as Go would.
    let read = |b: &str| go_read(b.as_bytes()).unwrap();
    assert_eq!(
        read(r#"{"method":"tools/call","params":{"name":"safe","Name":"danger"}}"#),
        ("tools/call".into(), Some("danger".into()))
    );
    assert_eq!(
        read(r#"{"method":"tools/list","Method":"tools/call","params":{"name":"danger"}}"#),
        ("tools/call".into(), Some("danger".into()))
    );
}

#[tokio::test]
async fn a_message_read_one_way_here_and_another_upstream_is_never_forwarded() {
    let (url, seen) = go_upstream().await;
    let (gw, _cancel) = crate::forward::gateway_for(config(&url));
    // The control: an allowed call goes through and runs what was checked.
    let ok = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"safe"}}"#;
    let (status, _) = send(&gw, post(ok).body(Body::from(ok)).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    for body in [
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"Name":"danger"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"safe","Name":"danger"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call","params":{"name":"danger"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"Uri":"file:///srv/secret/key"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///srv/public/../secret/key"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///srv/public/%2e%2e/secret/key"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///srv/public/a/../../secret/key"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#,
    ] {
        let (status, answer) = send(&gw, post(body).body(Body::from(body)).unwrap()).await;
        assert!(
            status.is_client_error(),
            "{body} was answered {status}: {answer}"
        );
        assert!(
            answer["error"]["code"].is_i64(),
            "a JSON-RPC error: {answer}"
        );
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.ran, ["safe"], "the upstream ran only what was allowed");
    assert_eq!(seen.requests.len(), 1);
}

#[tokio::test]
async fn only_the_methods_streamable_http_defines_reach_the_upstream() {
    let (url, seen) = go_upstream().await;
    let (gw, _cancel) = crate::forward::gateway_for(config(&url));
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"danger"}}"#;
    for method in [
        Method::PUT,
        Method::PATCH,
        Method::from_bytes(b"PROPFIND").unwrap(),
    ] {
        let req = post(call)
            .method(method.clone())
            .body(Body::from(call))
            .unwrap();
        let resp = gw.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(resp.headers()[header::ALLOW], "GET, POST, DELETE");
    }
    for method in [Method::GET, Method::DELETE] {
        let req = post(call)
            .method(method.clone())
            .body(Body::from(call))
            .unwrap();
        let (status, _) = send(&gw, req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} with a body");
    }
    assert!(seen.lock().unwrap().requests.is_empty());
}

#[tokio::test]
async fn headers_and_url_come_from_the_operator() {
    let (url, seen) = go_upstream().await;
    let (gw, _cancel) = crate::forward::gateway_for(config(&format!("{url}?tenant=configured")));
    let ok = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"safe"}}"#;
    let req = http::Request::post("/mcp?tenant=other&x=1")
        .header(header::HOST, "gw.test")
        .header(header::AUTHORIZATION, "Bearer good")
        .header(header::CONTENT_TYPE, "application/json")
        .header("x_forwarded_user", "admin")
        .header("x-remote-user", "admin")
        .header("x-forwarded-email", "admin@example.com")
        .header("x-tenant", "t1")
        .header("x-other", "1")
        .body(Body::from(ok))
        .unwrap();
    let (status, _) = send(&gw, req).await;
    assert_eq!(status, StatusCode::OK);
    {
        let seen = seen.lock().unwrap();
        let (_, headers, uri, _) = &seen.requests[0];
        assert_eq!(
            uri, "/mcp?tenant=configured",
            "the upstream URL's own query"
        );
        for h in [
            "x_forwarded_user",
            "x-remote-user",
            "x-forwarded-email",
            "x-other",
        ] {
            assert!(headers.get(h).is_none(), "{h} reached the upstream");
        }
        assert_eq!(headers["x-tenant"], "t1", "the operator's allowed header");
    }
    // A session named twice: the binding would be checked for one, the other served.
    let req = post(ok)
        .header("mcp-session-id", "s1")
        .header("mcp-session-id", "s2")
        .body(Body::from(ok))
        .unwrap();
    let (status, answer) = send(&gw, req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(seen.lock().unwrap().requests.len(), 1);
}

#[tokio::test]
async fn a_modern_request_names_in_its_headers_what_its_body_does() {
    let (url, seen) = go_upstream().await;
    let (gw, _cancel) = crate::forward::gateway_for(config(&url));
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "safe", "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {}}}})
    .to_string();
    let modern = |method: &str, name: Option<&str>| {
        let mut b = post(&body)
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", method);
        if let Some(n) = name {
            b = b.header("mcp-name", n);
        }
        b.body(Body::from(body.clone())).unwrap()
    };
    for (method, name) in [
        ("tools/call", Some("danger")),
        ("tools/list", Some("safe")),
        ("tools/call", None),
    ] {
        let (status, answer) = send(&gw, modern(method, name)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {name:?}");
        assert_eq!(answer["error"]["code"], -32020);
    }
    assert!(seen.lock().unwrap().requests.is_empty());
    let (status, _) = send(&gw, modern("tools/call", Some("safe"))).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn what_an_upstream_does_not_list_is_closed() {
    let (url, seen) = go_upstream().await;
    let (gw, _cancel) = crate::forward::gateway_for(config(&url));
    for body in [
        // No prompt is listed, and no default given: the tools' default (deny).
        r#"{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"any"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///srv/other"}}"#,
        // `*` stays within one directory.
        r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///srv/public/a/b"}}"#,
    ] {
        let (status, _) = send(&gw, post(body).body(Body::from(body)).unwrap()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    let ok = r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"FILE:///srv/public/%61"}}"#;
    let (status, _) = send(&gw, post(ok).body(Body::from(ok)).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen.lock().unwrap().ran, ["FILE:///srv/public/%61"]);
}
