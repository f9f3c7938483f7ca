//! The resource-server guard (MCP "Authorization", RFC 6750, RFC 9728, RFC 8707):
//! every way a token can be wrong, and the right one.

use mcpgate_core::jwt::{AccessClaims, Audience, KeyRing, StoredKey};
use serde_json::json;

use crate::support::{TestApp, body_json};

fn prm_url(app: &TestApp) -> String {
    app.well_known("oauth-protected-resource", "/mcp")
}

async fn assert_invalid_token(app: &TestApp, token: &str) {
    let r = app
        .calc("add", json!(1), json!(2))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "token must be refused");
    let www = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(www.starts_with(r#"Bearer error="invalid_token""#), "{www}");
    assert!(
        www.contains(&format!(r#"resource_metadata="{}""#, prm_url(app))),
        "{www}"
    );
}

#[tokio::test]
async fn missing_token_gets_401_with_metadata_and_scope_but_no_error() {
    let app = TestApp::spawn().await;
    let r = app.calc("add", json!(1), json!(2)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        format!(
            r#"Bearer resource_metadata="{}", scope="op:add op:div op:mult op:sub""#,
            prm_url(&app)
        )
        .as_str()
    );
}

/// At the path-suffixed well-known URI always; at the origin's root one only when
/// mounted at the root: under a path (the suite's `MCPGATE_TEST_BASE_PATH` run, and
/// the test below), the root location belongs to whatever else runs on the origin.
#[tokio::test]
async fn protected_resource_metadata_at_the_suffixed_uri_and_the_root_only_at_the_root() {
    let app = TestApp::spawn().await;
    let root = format!("{}/.well-known/oauth-protected-resource", app.origin());
    let mut served = vec![app.well_known("oauth-protected-resource", "/mcp")];
    if app.path().is_empty() {
        served.push(root);
    } else {
        assert_eq!(app.http.get(&root).send().await.unwrap().status(), 404);
    }
    for path in served {
        let r = app.http.get(&path).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let doc = body_json(r).await;
        assert_eq!(doc["resource"], app.mcp_url());
        assert_eq!(doc["authorization_servers"], json!([app.base]));
        assert_eq!(
            doc["scopes_supported"],
            json!(["op:add", "op:div", "op:mult", "op:sub"])
        );
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
    }
}

/// Mounted at `/oauth/2.1`, whatever the suite's base path: the root location is 404,
/// the path-suffixed one answers.
#[tokio::test]
async fn a_path_mounted_instance_leaves_the_root_metadata_location_alone() {
    let app = TestApp::spawn_under("/oauth/2.1").await;
    let root = format!("{}/.well-known/oauth-protected-resource", app.origin());
    assert_eq!(app.http.get(&root).send().await.unwrap().status(), 404);
    let suffixed = format!(
        "{}/.well-known/oauth-protected-resource/oauth/2.1/mcp",
        app.origin()
    );
    let r = app.http.get(&suffixed).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        body_json(r).await["resource"],
        format!("{}/oauth/2.1/mcp", app.origin())
    );
}

#[tokio::test]
async fn valid_token_is_accepted() {
    let app = TestApp::spawn().await;
    let r = app
        .calc_as(&app.mint("op:add", |_| {}), "add", 5.0, 8.0)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        body_json(r).await["result"]["structuredContent"]["result"],
        13.0
    );
}

#[tokio::test]
async fn malformed_tokens_are_invalid() {
    let app = TestApp::spawn().await;
    for t in ["x", "a.b.c", "not a jwt at all", &"A".repeat(9000)] {
        assert_invalid_token(&app, t).await;
    }
}

#[tokio::test]
async fn expired_token_is_invalid() {
    let app = TestApp::spawn().await;
    let t = app.mint("op:add", |c| {
        c.iat -= 3600;
        c.exp = c.iat + 60;
    });
    assert_invalid_token(&app, &t).await;
}

#[tokio::test]
async fn token_signed_by_another_key_is_invalid() {
    let app = TestApp::spawn().await;
    let good = app.mint("op:add", |_| {});
    let claims: AccessClaims = {
        use base64::Engine;
        let p = good.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .unwrap(),
        )
        .unwrap()
    };
    // same kid, other key
    let mut k = StoredKey::generate(0);
    k.kid = app.rules.keys.current_kid();
    assert_invalid_token(&app, &KeyRing::new(&[k]).sign(&claims)).await;
    // unknown kid
    assert_invalid_token(&app, &KeyRing::new(&[StoredKey::generate(0)]).sign(&claims)).await;
}

#[tokio::test]
async fn foreign_issuer_is_invalid() {
    let app = TestApp::spawn().await;
    assert_invalid_token(
        &app,
        &app.mint("op:add", |c| c.iss = "https://other-issuer.example".into()),
    )
    .await;
}

#[tokio::test]
async fn wrong_audience_is_invalid() {
    let app = TestApp::spawn().await;
    for aud in [
        Audience::One("https://other.example/mcp".into()),
        Audience::One(app.base.clone()),
        Audience::Many(vec![]),
    ] {
        assert_invalid_token(&app, &app.mint("op:add", |c| c.aud = aud.clone())).await;
    }
    // a list containing this resource is fine
    let ok = app.mint("op:add", |c| {
        c.aud = Audience::Many(vec!["https://x.example".into(), app.mcp_url()])
    });
    assert_eq!(app.calc_status(&ok, "add", 1.0, 1.0).await, 200);
}

#[tokio::test]
async fn revoked_session_is_invalid_at_once() {
    let app = TestApp::spawn().await;
    let t = app.mint("op:add", |c| c.session_id = Some("fam-1".into()));
    assert_eq!(app.calc_status(&t, "add", 1.0, 1.0).await, 200);
    app.rules.revoke_handles(&["fam-1".into()]).await.unwrap();
    assert_invalid_token(&app, &t).await;
}

#[tokio::test]
async fn token_in_query_or_body_is_not_accepted() {
    let app = TestApp::spawn().await;
    let t = app.all_ops();
    let r = app
        .http
        .post(format!("{}?access_token={t}", app.mcp_url()))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .body(json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .http
        .post(app.mcp_url())
        .form(&[("access_token", t.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn other_schemes_are_not_bearer() {
    let app = TestApp::spawn().await;
    let r = app
        .calc("add", json!(1), json!(2))
        .header("authorization", format!("Basic {}", app.all_ops()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // the scheme is case-insensitive
    let r = app
        .calc("add", json!(1), json!(2))
        .header("authorization", format!("bearer {}", app.all_ops()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn insufficient_scope_is_403_before_the_tool_runs() {
    let app = TestApp::spawn().await;
    let t = app.mint("op:add op:sub", |_| {});
    let r = app.calc_as(&t, "divide", 1.0, 0.0).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.headers()["www-authenticate"],
        format!(
            r#"Bearer error="insufficient_scope", scope="op:div", resource_metadata="{}", error_description="This operation needs the scope op:div""#,
            prm_url(&app)
        )
        .as_str()
    );
    for (op, ok) in [
        ("add", true),
        ("subtract", true),
        ("multiply", false),
        ("divide", false),
    ] {
        let s = app.calc_as(&t, op, 6.0, 3.0).send().await.unwrap().status();
        assert_eq!(s == 200, ok, "{op}: {s}");
    }
}

#[tokio::test]
async fn listing_tools_needs_a_token_but_no_scope() {
    let app = TestApp::spawn().await;
    let t = app.mint("", |_| {});
    let r = app
        .modern("tools/list", None, json!({}))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        body_json(r).await["result"]["tools"][0]["name"],
        "calculator"
    );
    let r = app.calc_as(&t, "add", 1.0, 1.0).send().await.unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn tool_calls_are_audited_as_counts_allowed_and_denied() {
    let app = TestApp::spawn().await;
    let t = app.mint("op:add", |c| c.sub = "user-audit".into());
    for _ in 0..3 {
        let r = app.calc_as(&t, "add", 1.0, 2.0).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = app.calc_as(&t, "divide", 1.0, 2.0).send().await.unwrap();
    assert_eq!(r.status(), 403);
    // Counts are written once per interval (50 ms here): wait until all four calls are in.
    let mut details: Vec<(serde_json::Value, Option<String>, Option<String>)> = Vec::new();
    for _ in 0..100 {
        details = app
            .rules
            .store
            .audit_events(50)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.event == "tool_calls")
            .map(|e| {
                (
                    serde_json::from_str(&e.detail).unwrap(),
                    e.user_id,
                    e.client_id,
                )
            })
            .collect();
        if details
            .iter()
            .map(|d| d.0["count"].as_u64().unwrap())
            .sum::<u64>()
            >= 4
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let count = |op: &str, allowed: bool| -> u64 {
        details
            .iter()
            .filter(|d| d.0["operation"] == op && d.0["allowed"] == allowed)
            .map(|d| d.0["count"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(count("add", true), 3, "{details:?}");
    assert_eq!(count("divide", false), 1, "{details:?}");
    assert_eq!(count("add", false) + count("divide", true), 0);
    assert!(details.iter().any(|d| d.0["needed"] == "op:div"));
    assert!(
        details
            .iter()
            .all(|d| d.1.as_deref() == Some("user-audit") && d.2.as_deref() == Some("client-1"))
    );
}

/// The guard in front of mcpgate's own server holds the gateway's rule: Streamable
/// HTTP is POST, GET and DELETE, the last two without a body.
#[tokio::test]
async fn only_the_methods_streamable_http_defines_reach_the_server() {
    let app = TestApp::spawn().await;
    let token = app.mint("op:add", |_| {});
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calculator","arguments":{"operation":"add","a":1,"b":2}}}"#;
    for method in ["PUT", "PATCH", "PROPFIND"] {
        let r = app
            .http
            .request(method.parse().unwrap(), app.mcp_url())
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(call)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{method}");
        assert_eq!(r.headers()["allow"], "GET, POST, DELETE");
        assert_eq!(body_json(r).await["error"]["code"], -32600);
    }
    for method in ["GET", "DELETE"] {
        let r = app
            .http
            .request(method.parse().unwrap(), app.mcp_url())
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(call)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{method} with a body");
    }
}

/// Two values of a header the guard reads once would let it decide on one while
/// the server reads the other.
#[tokio::test]
async fn a_header_that_may_appear_once_is_refused_twice() {
    let app = TestApp::spawn().await;
    let token = app.mint("op:add", |_| {});
    for (name, a, b) in [
        (
            "authorization",
            format!("Bearer {token}"),
            "Bearer other".to_owned(),
        ),
        ("mcp-session-id", "a".into(), "b".into()),
        (
            "mcp-protocol-version",
            "2025-11-25".into(),
            "2026-07-28".into(),
        ),
        ("mcp-method", "tools/call".into(), "tools/list".into()),
    ] {
        let r = app
            .calc("add", json!(1), json!(2))
            .bearer_auth(&token)
            .header(name, a)
            .header(name, b)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{name} twice");
    }
}

/// A tools/call the guard cannot read one way only is refused before the tool runs.
#[tokio::test]
async fn an_ambiguous_call_is_refused_before_the_tool_runs() {
    let app = TestApp::spawn().await;
    let token = app.mint("op:add", |_| {});
    for body in [
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calculator","arguments":{"operation":"divide","operation":"add","a":1,"b":2}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calculator","arguments":{"operation":"add","Operation":"divide","a":1,"b":2}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"Name":"calculator","arguments":{"operation":"add","a":1,"b":2}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{"operation":"add","a":1,"b":2}}}"#,
    ] {
        let r = app
            .http
            .post(app.mcp_url())
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        assert!(status == 400 || status == 403, "{body}: {status}");
        assert!(body_json(r).await["error"]["code"].is_i64());
    }
}

/// A refusal answered before the body arrived keeps the connection usable: the client
/// may send its next request (discovery, after a 401) on the same connection. Before,
/// the unread body made the server close it silently, and a client reusing it failed.
#[tokio::test]
async fn a_refused_request_whose_body_comes_late_keeps_its_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn().await;
    let base = url::Url::parse(&app.base).unwrap();
    let addr = format!("127.0.0.1:{}", base.port().unwrap());
    let mcp_path = url::Url::parse(&app.url("/mcp")).unwrap().path().to_owned();
    let discovery = url::Url::parse(&app.as_metadata_url())
        .unwrap()
        .path()
        .to_owned();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#;
    for token in ["", "authorization: Bearer not-a-token\r\n"] {
        let head = format!(
            "POST {mcp_path} HTTP/1.1\r\nhost: {addr}\r\n{token}content-type: application/json\r\n\
             accept: application/json, text/event-stream\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        conn.write_all(body.as_bytes()).await.unwrap();
        let answer = read_response(&mut conn).await;
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
        assert!(
            !answer.to_ascii_lowercase().contains("connection: close"),
            "{answer}"
        );
    }
    // The same connection serves the discovery that follows a 401.
    let get = format!("GET {discovery} HTTP/1.1\r\nhost: {addr}\r\n\r\n");
    conn.write_all(get.as_bytes()).await.unwrap();
    let answer = read_response(&mut conn).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    /// One response with a content-length body, read from a kept-alive connection.
    async fn read_response(conn: &mut tokio::net::TcpStream) -> String {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let len = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    return text;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no whole answer: {text}"
            );
            let n = tokio::time::timeout(std::time::Duration::from_secs(10), conn.read(&mut chunk))
                .await
                .expect("an answer")
                .unwrap();
            assert!(n > 0, "the connection was closed: {text}");
            buf.extend_from_slice(&chunk[..n]);
        }
    }
}
