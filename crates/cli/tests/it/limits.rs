//! Abuse limits: oversized bodies get an answer, never a dropped connection.

use crate::support::{Browser, TestApp};

/// Every endpoint that reads a body answers an oversized one with 413 and an error
/// body (JSON on the APIs, JSON or HTML on the forms), and the connection delivers it.
#[tokio::test]
async fn oversized_requests_get_413_with_an_error_body() {
    let app = TestApp::spawn().await;
    let mut b = Browser::new(&app);
    let csrf = Browser::csrf_of(&b.get("/login").await.text().await.unwrap());
    let cookie = format!("mcpgate_csrf={csrf}");
    let big = "a".repeat(1024 * 1024);
    let form = format!("csrf={csrf}&username=alice&password={big}");
    let json_body = format!("{{\"redirect_uris\":[\"{big}\"]}}");
    let mcp_body = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\",\"params\":{{\"x\":\"{big}\"}}}}"
    );
    let cases: Vec<(&str, &str, String)> = vec![
        ("/register", "application/json", json_body),
        ("/token", "application/x-www-form-urlencoded", form.clone()),
        ("/login", "application/x-www-form-urlencoded", form.clone()),
        (
            "/consent",
            "application/x-www-form-urlencoded",
            form.clone(),
        ),
        ("/revoke", "application/x-www-form-urlencoded", form.clone()),
        ("/introspect", "application/x-www-form-urlencoded", form),
        ("/mcp", "application/json", mcp_body),
    ];
    for (path, ct, body) in cases {
        let r = app
            .http
            .post(app.url(path))
            .header("content-type", ct)
            .header("accept", "application/json, text/event-stream")
            .header("cookie", &cookie)
            .bearer_auth(app.all_ops())
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path} dropped the connection: {e:?}"));
        assert_eq!(r.status(), 413, "{path}");
        let text = r.text().await.unwrap();
        assert!(
            text.contains("\"error\"") || text.contains("<html"),
            "{path}: an error body, got {text:?}"
        );
    }
}

/// `mcpgate mcp --jwks` keeps a floor on key-set fetches triggered by unknown key ids:
/// 0 (no floor, every made-up `kid` a fetch at the issuer) is refused with a clear
/// error before anything starts.
#[test]
fn a_zero_floor_on_jwks_refetches_is_refused() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcpgate"))
        .args([
            "mcp",
            "--listen",
            "127.0.0.1:0",
            "--issuer",
            "http://127.0.0.1:9",
        ])
        .args(["--jwks", "--jwks-min-refetch-secs", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--jwks-min-refetch-secs") && err.contains("at least 1"),
        "{err}"
    );
}
