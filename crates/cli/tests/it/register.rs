//! Dynamic client registration (RFC 7591): the redirect allow-list, and a registration
//! table that cannot be exhausted (at the cap the oldest registration never used makes
//! room; a used one is never evicted).

use mcpgate_core::pkce;
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn registration_rules() {
    let app = TestApp::spawn().await;
    let reg = |body: Value| app.http.post(app.url("/register")).json(&body).send();
    // Cursor registers its three URIs, custom scheme included, in one request
    let r = reg(json!({"redirect_uris": ["cursor://anysphere.cursor-mcp/oauth/callback", "https://www.cursor.com/agents/mcp/oauth/callback", "http://localhost:8787/callback"], "token_endpoint_auth_method": "none", "client_name": "Cursor"})).await.unwrap();
    assert_eq!(r.status(), 201);
    // outside the allow-list: refused, naming the URI
    let r = reg(
        json!({"redirect_uris": ["https://evil.example/cb"], "token_endpoint_auth_method": "none"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let e = body_json(r).await;
    assert_eq!(e["error"], "invalid_redirect_uri");
    assert!(
        e["error_description"]
            .as_str()
            .unwrap()
            .contains("https://evil.example/cb")
    );
    // one bad URI fails the whole registration
    let r = reg(json!({"redirect_uris": [REDIRECT, "http://example.com/cb"], "token_endpoint_auth_method": "none"})).await.unwrap();
    assert_eq!(body_json(r).await["error"], "invalid_redirect_uri");
    // oversized: 413 with a JSON error (issue 13)
    let r = reg(json!({"redirect_uris": [REDIRECT], "client_name": "x".repeat(20_000)}))
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(body_json(r).await["error"], "invalid_request");
    // identical public registrations get the same client
    let body = json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "client_name": "Same"});
    let a = body_json(reg(body.clone()).await.unwrap()).await;
    let b = body_json(reg(body).await.unwrap()).await;
    assert_eq!(a["client_id"], b["client_id"]);
    // confidential: a secret, shown once, usable with client_secret_basic
    let c = body_json(
        reg(json!({"redirect_uris": [REDIRECT], "client_name": "Conf"}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(c["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(c["client_secret"].as_str().unwrap().len(), 43);
}

/// A dynamic registration made `created_at` seconds after the epoch (so that "oldest"
/// is unambiguous), as `/register` would store it.
async fn dynamic_client(app: &TestApp, created_at: i64) -> String {
    let id = mcpgate_core::secret::random_id();
    app.rules
        .store
        .insert_client(&mcpgate_domain::model::Client {
            client_id: id.clone(),
            secret_hash: None,
            name: format!("Dynamic {created_at}"),
            redirect_uris: vec![REDIRECT.into()],
            kind: mcpgate_domain::model::ClientKind::Dynamic,
            auth_method: mcpgate_domain::model::AuthMethod::None,
            can_introspect: false,
            owner_user_id: None,
            registration_hash: None,
            metadata: json!({}),
            fetched_until: None,
            created_at,
            last_used_at: None,
            machine: None,
            keys: None,
        })
        .await
        .unwrap();
    id
}

async fn register(app: &TestApp, name: &str, method: &str) -> reqwest::Response {
    app.http
        .post(app.url("/register"))
        .json(&json!({"redirect_uris": [REDIRECT], "client_name": name, "token_endpoint_auth_method": method}))
        .send()
        .await
        .unwrap()
}

async fn exists(app: &TestApp, id: &str) -> bool {
    app.rules.store.client(id).await.unwrap().is_some()
}

#[tokio::test]
async fn at_the_cap_the_oldest_unused_registration_is_evicted() {
    let app = TestApp::spawn_with(|c| c.rules.max_dynamic_clients = 3).await;
    let used = dynamic_client(&app, 1).await;
    let oldest_unused = dynamic_client(&app, 2).await;
    let next_unused = dynamic_client(&app, 3).await;
    // "used": an authorization code was issued to it (never exchanged here)
    let verifier = pkce_verifier();
    app.code_for(&used, &pkce::challenge_of(&verifier), None, None)
        .await;

    let r = register(&app, "Newcomer", "none").await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    assert!(
        !exists(&app, &oldest_unused).await,
        "the oldest unused went"
    );
    assert!(
        exists(&app, &used).await,
        "the used one, though older, stays"
    );
    assert!(exists(&app, &next_unused).await);

    // a confidential registration is held to the same cap, and makes room the same way
    let r = register(&app, "Confidential", "client_secret_basic").await;
    assert_eq!(r.status(), 201);
    let confidential = body_json(r).await["client_id"].as_str().unwrap().to_owned();
    assert!(!exists(&app, &next_unused).await);
    assert!(exists(&app, &used).await);
    assert_eq!(app.rules.store.count_dynamic_clients().await.unwrap(), 3);

    // registrations of the last minutes may be sign-ins in progress: at the cap with
    // only those (and a used one) left, a newcomer is refused and nothing is evicted
    let r = register(&app, "Flood", "none").await;
    assert_eq!(r.status(), 503);
    assert_eq!(body_json(r).await["error"], "temporarily_unavailable");
    assert!(exists(&app, &confidential).await);

    // an eviction is audited
    let events = app.rules.store.audit_events(50).await.unwrap();
    assert!(
        events.iter().any(|e| e.event == "client_evicted"),
        "no client_evicted audit event"
    );
    assert!(exists(&app, &confidential).await);
}

/// Only when every registration has been used is a new one refused (503,
/// `temporarily_unavailable`), and nothing is evicted.
#[tokio::test]
async fn used_registrations_are_never_evicted() {
    let app = TestApp::spawn_with(|c| c.rules.max_dynamic_clients = 1).await;
    let used = dynamic_client(&app, 1).await;
    let verifier = pkce_verifier();
    app.code_for(&used, &pkce::challenge_of(&verifier), None, None)
        .await;
    let r = register(&app, "Newcomer", "client_secret_post").await;
    assert_eq!(r.status(), 503);
    assert_eq!(body_json(r).await["error"], "temporarily_unavailable");
    assert!(exists(&app, &used).await);
}

/// MCP 2026-07-28 clients send `application_type` (OpenID Connect Dynamic Client
/// Registration §2): accepted and echoed, with the redirects of its kind; a web client
/// cannot register a redirect only an app on the person's device could receive.
#[tokio::test]
async fn registration_follows_the_application_type() {
    let app = TestApp::spawn().await;
    let reg = |body: Value| app.http.post(app.url("/register")).json(&body).send();
    let cursor_web = "https://www.cursor.com/agents/mcp/oauth/callback";
    for (kind, uris, want) in [
        ("native", vec![REDIRECT], Ok(())),
        (
            "native",
            vec!["cursor://anysphere.cursor-mcp/oauth/callback", cursor_web],
            Ok(()),
        ),
        ("web", vec![cursor_web], Ok(())),
        ("web", vec![REDIRECT], Err("invalid_redirect_uri")),
        (
            "web",
            vec![cursor_web, "cursor://anysphere.cursor-mcp/oauth/callback"],
            Err("invalid_redirect_uri"),
        ),
        ("desktop", vec![REDIRECT], Err("invalid_client_metadata")),
    ] {
        let r = reg(
            json!({"redirect_uris": uris, "token_endpoint_auth_method": "none",
                           "client_name": format!("{kind} app"), "application_type": kind}),
        )
        .await
        .unwrap();
        let status = r.status();
        let body = body_json(r).await;
        match want {
            Ok(()) => {
                assert_eq!(status, 201, "{kind} {uris:?}: {body}");
                assert_eq!(body["application_type"], kind);
            }
            Err(code) => {
                assert_eq!(status, 400, "{kind} {uris:?}: {body}");
                assert_eq!(body["error"], code, "{kind} {uris:?}");
            }
        }
    }
}
