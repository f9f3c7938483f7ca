//! Client ID Metadata Documents: a client identified by the URL of its own metadata.

use axum::{Json, Router, routing::get};
use mcpgate_core::pkce;
use serde_json::{Value, json};

use crate::support::{
    Browser, PASSWORD, REDIRECT, TestApp, authorize_url, body_json, pkce_verifier,
};

/// Serves `doc` (with "{url}" replaced by its own URL) at /client.json; returns the
/// https client_id the document names.
async fn publish(doc: Value) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let id = format!("https://127.0.0.1:{port}/client.json");
    let text = doc.to_string().replace("{url}", &id);
    let body: Value = serde_json::from_str(&text).unwrap();
    let app = Router::new().route(
        "/client.json",
        get(move || async move { ([("cache-control", "max-age=600")], Json(body)) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    id
}

#[tokio::test]
async fn a_document_client_completes_the_flow() {
    let app = TestApp::spawn_reaching_loopback().await;
    let m = body_json(app.http.get(app.as_metadata_url()).send().await.unwrap()).await;
    assert_eq!(m["client_id_metadata_document_supported"], true);
    let id = publish(json!({"client_id": "{url}", "client_name": "Doc Client", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"})).await;
    let v = pkce_verifier();
    let mut b = Browser::new(&app);
    b.login("alice", PASSWORD).await;
    let consent = b
        .authorize(&id, REDIRECT, &pkce::challenge_of(&v), None, None)
        .await;
    let html = b.get(&consent).await.text().await.unwrap();
    // The publishing origin vouches for a document client, not the operator (issue 13).
    let origin = url::Url::parse(&id).unwrap().origin().ascii_serialization();
    assert!(
        html.contains("Doc Client") && html.contains(&format!("published at {origin}")),
        "{html}"
    );
    assert!(html.contains("unverified"));
    let tok = app.tokens_for(&id, None).await;
    assert_eq!(
        app.calc_status(tok["access_token"].as_str().unwrap(), "add", 5.0, 8.0)
            .await,
        200
    );
}

async fn refused(app: &TestApp, id: &str, needle: &str) {
    let mut b = Browser::new(app);
    let r = b
        .get(&authorize_url(
            app,
            id,
            REDIRECT,
            &pkce::challenge_of(&pkce_verifier()),
            None,
            None,
        ))
        .await;
    assert_eq!(r.status(), 400, "{id}");
    assert!(r.headers().get("location").is_none(), "never redirected");
    let html = r.text().await.unwrap();
    assert!(html.contains(needle), "{needle}: {html}");
}

#[tokio::test]
async fn documents_that_do_not_name_themselves_or_leave_the_allow_list_are_refused() {
    let app = TestApp::spawn_reaching_loopback().await;
    let other = publish(json!({"client_id": "https://elsewhere.example/client.json", "client_name": "X", "redirect_uris": [REDIRECT]})).await;
    refused(&app, &other, "not exactly the URL").await;
    let evil = publish(json!({"client_id": "{url}", "client_name": "X", "redirect_uris": ["https://evil.example/cb"]})).await;
    refused(&app, &evil, "evil.example").await;
    let nameless = publish(json!({"client_id": "{url}", "redirect_uris": [REDIRECT]})).await;
    refused(&app, &nameless, "client_name is missing").await;
}

#[tokio::test]
async fn loopback_and_private_hosts_are_never_fetched() {
    let app = TestApp::spawn().await; // the default: public addresses only
    let id =
        publish(json!({"client_id": "{url}", "client_name": "X", "redirect_uris": [REDIRECT]}))
            .await;
    refused(&app, &id, "non-public address").await;
    refused(&app, "https://localhost/client.json", "non-public address").await;
}

/// The fetcher ignores proxy settings from the environment: a proxy would resolve the
/// document's host again and undo the address check. The flow runs in a child process
/// (environment variables are process-wide) with every proxy variable pointing at a
/// listener here, which must see no connection.
#[tokio::test]
async fn document_fetches_ignore_proxy_settings_from_the_environment() {
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    proxy.set_nonblocking(true).unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    let exe = std::env::current_exe().unwrap();
    let proxy_env = proxy_url.clone();
    let out = tokio::task::spawn_blocking(move || {
        let proxy_url = proxy_env;
        std::process::Command::new(exe)
            .args([
                "--exact",
                "metadata_document::document_flow_under_proxy_env",
                "--ignored",
                "--test-threads=1",
            ])
            .env("HTTP_PROXY", &proxy_url)
            .env("http_proxy", &proxy_url)
            .env("HTTPS_PROXY", &proxy_url)
            .env("https_proxy", &proxy_url)
            .env("ALL_PROXY", &proxy_url)
            .env("all_proxy", &proxy_url)
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("1 passed"),
        "child: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        proxy.accept().is_err(),
        "the document fetch went through the environment's proxy"
    );
}

/// Run only as the child of the test above.
#[tokio::test]
#[ignore = "run by document_fetches_ignore_proxy_settings_from_the_environment"]
async fn document_flow_under_proxy_env() {
    let app = TestApp::spawn_reaching_loopback().await;
    let id = publish(json!({"client_id": "{url}", "client_name": "Doc Client", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"})).await;
    let tok = app.tokens_for(&id, None).await;
    assert!(tok["access_token"].is_string());
}
