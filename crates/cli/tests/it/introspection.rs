//! The introspection validator (RFC 7662) against a live mcpgate authorization server:
//! what it accepts, and how its cache behaves.

use std::sync::Arc;

use mcpgate_core::clock::SystemClock;
use mcpgate_core::secret::Secret;
use mcpgate_mcp::validator::introspection::{Introspection, IntrospectionConfig};
use mcpgate_mcp::{Reason, Rejection, TokenValidator};

use serde_json::json;

use crate::support::{TestApp, body_json};

fn validator(app: &TestApp, secret: &Secret, cache: i64, audience: &str) -> Introspection {
    validator_at(app.url("/introspect"), app, secret, cache, audience)
}

fn validator_at(
    endpoint: String,
    app: &TestApp,
    secret: &Secret,
    cache: i64,
    audience: &str,
) -> Introspection {
    Introspection::new(
        reqwest::Client::new(),
        IntrospectionConfig {
            endpoint,
            client_id: "rs".into(),
            client_secret: secret.clone(),
            issuer: app.base.clone(),
            audience: audience.into(),
            positive_ttl_secs: cache,
            negative_ttl_secs: 1,
            max_entries: 1000,
        },
        Arc::new(SystemClock),
    )
}

#[tokio::test]
async fn cached_answers_are_reused_and_uncached_ones_see_revocation() {
    let app = TestApp::spawn().await;
    let secret = app.rs_credentials().await;
    let (client_id, tok) = app.tokens(Some(&["op:add"])).await;
    let access = tok["access_token"].as_str().unwrap();
    let cached = validator(&app, &secret, 60, &app.mcp_url());
    let uncached = validator(&app, &secret, 0, &app.mcp_url());
    let p = cached.validate(access).await.unwrap();
    assert_eq!(p.username.as_deref(), Some("alice"));
    assert_eq!(p.client_id, client_id);
    assert_eq!(p.scopes.to_string(), "op:add");
    assert!(uncached.validate(access).await.is_ok());

    app.http
        .post(app.url("/revoke"))
        .form(&[
            ("token", tok["refresh_token"].as_str().unwrap()),
            ("client_id", &client_id),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        uncached.validate(access).await,
        Err(Rejection::Invalid(Reason::Inactive)),
        "no cache: revocation seen at once"
    );
    assert!(
        cached.validate(access).await.is_ok(),
        "within the cache period the cached answer stands (no call made)"
    );

    // With the authorization server gone, the cached answer still serves; an unknown
    // token is "unavailable" (503), never cached, never accepted.
    let other = app.tokens(None).await.1["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    drop(app);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(cached.validate(access).await.is_ok());
    assert!(matches!(
        cached.validate(&other).await,
        Err(Rejection::Unavailable(_))
    ));
    assert!(matches!(
        cached.validate(&other).await,
        Err(Rejection::Unavailable(_))
    ));
}

#[tokio::test]
async fn wrong_audience_and_bad_credentials_are_refused() {
    let app = TestApp::spawn().await;
    let secret = app.rs_credentials().await;
    let (_, tok) = app.tokens(None).await;
    let access = tok["access_token"].as_str().unwrap();
    let elsewhere = validator(&app, &secret, 0, "https://other.example/mcp");
    assert_eq!(
        elsewhere.validate(access).await,
        Err(Rejection::Invalid(Reason::WrongAudience))
    );
    let refresh = validator(&app, &secret, 0, &app.mcp_url());
    assert!(matches!(
        refresh
            .validate(tok["refresh_token"].as_str().unwrap())
            .await,
        Err(Rejection::Invalid(_))
    ));
    let bad = validator(&app, &Secret::new("wrong"), 0, &app.mcp_url());
    assert!(
        matches!(bad.validate(access).await, Err(Rejection::Unavailable(_))),
        "the RS's own credentials are refused: 503, not a 401 for the client"
    );
}

/// A forwarder in front of the authorization server's introspection endpoint that
/// counts the calls reaching it.
async fn counting_forwarder(app: &TestApp) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use axum::{body::Bytes, extract::State, http::HeaderMap, routing::post};
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let target = app.url("/introspect");
    let state = (count.clone(), target, reqwest::Client::new());
    let router = axum::Router::new()
        .route(
            "/introspect",
            post(
                |State((count, target, http)): State<(
                    Arc<std::sync::atomic::AtomicUsize>,
                    String,
                    reqwest::Client,
                )>,
                 headers: HeaderMap,
                 body: Bytes| async move {
                    count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let r = http
                        .post(target)
                        .header("authorization", headers["authorization"].clone())
                        .header("content-type", headers["content-type"].clone())
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    (
                        [("content-type", "application/json")],
                        r.bytes().await.unwrap(),
                    )
                },
            ),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/introspect", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, count)
}

#[tokio::test]
async fn concurrent_misses_share_one_call_unless_the_cache_is_off() {
    let app = TestApp::spawn().await;
    let secret = app.rs_credentials().await;
    let (_, tok) = app.tokens(None).await;
    let access = tok["access_token"].as_str().unwrap();
    let (endpoint, count) = counting_forwarder(&app).await;
    for (cache, expected) in [(60, 1), (0, 16)] {
        count.store(0, std::sync::atomic::Ordering::SeqCst);
        let v = Arc::new(validator_at(
            endpoint.clone(),
            &app,
            &secret,
            cache,
            &app.mcp_url(),
        ));
        let calls: Vec<_> = (0..16)
            .map(|_| {
                let (v, t) = (v.clone(), access.to_owned());
                tokio::spawn(async move { v.validate(&t).await })
            })
            .collect();
        for c in calls {
            assert!(c.await.unwrap().is_ok());
        }
        assert_eq!(
            count.load(std::sync::atomic::Ordering::SeqCst),
            expected,
            "cache {cache} s"
        );
    }
}

/// POSTs `token` to `/introspect` with the resource server's credentials.
async fn introspect_raw(app: &TestApp, secret: &Secret, token: &str) -> serde_json::Value {
    crate::support::body_json(
        app.http
            .post(app.url("/introspect"))
            .basic_auth("rs", Some(secret.expose()))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// RFC 7662 §2.2: a resource server never needs to learn that a refresh token is
/// active, and one that does not check `token_type` would take it as a bearer token.
#[tokio::test]
async fn refresh_tokens_are_inactive_to_resource_servers() {
    let app = TestApp::spawn().await;
    let secret = app.rs_credentials().await;
    let (_, tok) = app.tokens(None).await;
    let answer = introspect_raw(&app, &secret, tok["refresh_token"].as_str().unwrap()).await;
    assert_eq!(answer, serde_json::json!({"active": false}));
    let access = introspect_raw(&app, &secret, tok["access_token"].as_str().unwrap()).await;
    assert_eq!(access["active"], true);
    assert_eq!(access["token_type"], "Bearer");
    assert_eq!(access["aud"], app.mcp_url(), "one audience, as a string");
}

/// Resource servers written for hosted authorization servers map `email` (or
/// `username`) to the person; both are in the answer, and `email` only when known.
#[tokio::test]
async fn introspection_names_the_person() {
    let app = TestApp::spawn().await;
    let secret = app.rs_credentials().await;
    let (_, tok) = app.tokens(None).await;
    let answer = introspect_raw(&app, &secret, tok["access_token"].as_str().unwrap()).await;
    assert_eq!(answer["username"], "alice");
    assert_eq!(answer["email"], "alice@example.com");
    assert_eq!(answer["email_verified"], true);
    let alice = app
        .rules
        .store
        .user_by_name("alice")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer["sub"], alice.id);

    // Someone without an email: neither member, rather than nulls.
    let unknown = app.mint("op:add", |c| c.session_id = None);
    let answer = introspect_raw(&app, &secret, &unknown).await;
    assert_eq!(answer["active"], true);
    assert!(answer.get("email").is_none(), "{answer}");
    assert!(answer.get("email_verified").is_none(), "{answer}");

    app.rules
        .store
        .set_user_disabled("alice", true)
        .await
        .unwrap();
    let answer = introspect_raw(&app, &secret, tok["access_token"].as_str().unwrap()).await;
    assert_eq!(
        answer,
        serde_json::json!({"active": false}),
        "a disabled person's token"
    );
}

#[tokio::test]
async fn introspection_needs_credentials_and_reports_revocation() {
    let app = TestApp::spawn().await;
    let (client_id, tok) = app.tokens(None).await;
    let access = tok["access_token"].as_str().unwrap();
    // a public client cannot introspect; nor can an unauthenticated caller
    let r = app
        .http
        .post(app.url("/introspect"))
        .form(&[("token", access), ("client_id", &client_id)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .http
        .post(app.url("/introspect"))
        .form(&[("token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // a resource server's credentials
    let secret = app.rs_credentials().await;
    let introspect = |t: String| {
        app.http
            .post(app.url("/introspect"))
            .basic_auth("rs", Some(secret.expose()))
            .form(&[("token", t)])
            .send()
    };
    let v = body_json(introspect(access.to_owned()).await.unwrap()).await;
    assert_eq!(v["active"], true);
    assert_eq!(v["aud"], app.mcp_url());
    assert_eq!(v["username"], "alice");
    assert_eq!(v["client_id"], client_id);
    let v = body_json(introspect("garbage".into()).await.unwrap()).await;
    assert_eq!(v, json!({"active": false}));
    app.http
        .post(app.url("/revoke"))
        .form(&[
            ("token", tok["refresh_token"].as_str().unwrap()),
            ("client_id", &client_id),
        ])
        .send()
        .await
        .unwrap();
    let v = body_json(introspect(access.to_owned()).await.unwrap()).await;
    assert_eq!(v, json!({"active": false}));
}
