//! Tokens: RFC 8707 resource rules at both endpoints, and code replay that only the
//! code's own client can turn into a revocation.

use mcpgate_core::pkce;

use super::{query_of, token_error};
use crate::support::{
    Browser, PASSWORD, REDIRECT, TestApp, authorize_url, body_json, location, pkce_verifier,
};

/// RFC 8707 §2.2: a refresh request's resource must be one the grant covers.
#[tokio::test]
async fn refresh_for_a_resource_the_grant_does_not_cover_is_invalid_target() {
    let app =
        TestApp::spawn_with(|c| c.rules.extra_resources = vec!["https://other.example/mcp".into()])
            .await;
    let (client_id, tok) = app.tokens(None).await;
    let refresh = tok["refresh_token"].as_str().unwrap();
    for other in [
        "https://other.example/mcp",
        "https://elsewhere.example/mcp",
        &format!("{}#frag", app.mcp_url()),
        "/mcp",
    ] {
        let r = app
            .http
            .post(app.url("/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh),
                ("client_id", &client_id),
                ("resource", other),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(
            token_error(r).await,
            (400, "invalid_target".into()),
            "{other}"
        );
    }
    // the grant's own resource still refreshes (the refused attempts spent nothing)
    let r = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", &client_id),
            ("resource", &app.mcp_url()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// RFC 8707 §2: a resource with a fragment, or not absolute, is invalid_target at
/// /authorize (redirected with state) and at /token.
#[tokio::test]
async fn resource_with_a_fragment_or_not_absolute_is_invalid_target_at_both_endpoints() {
    let app = TestApp::spawn().await;
    let client_id = app.register(REDIRECT).await;
    let mut b = Browser::new(&app);
    b.login("alice", PASSWORD).await;
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    for bad in [
        format!("{}#frag", app.mcp_url()),
        "/mcp".into(),
        "mcp".into(),
    ] {
        let url = authorize_url(
            &app,
            &client_id,
            REDIRECT,
            &pkce::challenge_of(&pkce_verifier()),
            None,
            Some("st"),
        )
        .replace(&enc(&app.mcp_url()), &enc(&bad));
        let r = b.get(&url).await;
        assert_eq!(r.status(), 303);
        let q = query_of(&location(&r));
        assert_eq!(
            q.get("error").map(String::as_str),
            Some("invalid_target"),
            "{bad}"
        );
        assert_eq!(q.get("state").map(String::as_str), Some("st"));
    }
    for bad in [format!("{}#frag", app.mcp_url()), "/mcp".into()] {
        let v = pkce_verifier();
        let code = app
            .code_for(&client_id, &pkce::challenge_of(&v), None, None)
            .await;
        let r = app
            .http
            .post(app.url("/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &v),
                ("client_id", &client_id),
                ("resource", &bad),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(
            token_error(r).await,
            (400, "invalid_target".into()),
            "{bad}"
        );
    }
}

/// RFC 9700 §4.2.4 revocation on replay is for the code's own client: another client
/// presenting a used code gets invalid_grant and the victim's tokens live on.
#[tokio::test]
async fn a_used_code_presented_by_another_client_revokes_nothing() {
    let app = TestApp::spawn().await;
    let victim = app.register(REDIRECT).await;
    let attacker = app.register("http://127.0.0.1:1234/callback").await;
    let v = pkce_verifier();
    let code = app
        .code_for(&victim, &pkce::challenge_of(&v), None, None)
        .await;
    let tok = body_json(app.exchange(&victim, &code, &v).await).await;
    let access = tok["access_token"].as_str().unwrap();
    let (s, e) = token_error(app.exchange(&attacker, &code, &v).await).await;
    assert_eq!((s, e.as_str()), (400, "invalid_grant"));
    assert_eq!(
        app.calc_status(access, "add", 1.0, 1.0).await,
        200,
        "another client's replay must not revoke the victim's tokens"
    );
    let r = app
        .refresh(&victim, tok["refresh_token"].as_str().unwrap(), None)
        .await;
    assert_eq!(r.status(), 200);
    // the code's own client replaying it still ends what it issued
    token_error(app.exchange(&victim, &code, &v).await).await;
    assert_eq!(app.calc_status(access, "add", 1.0, 1.0).await, 401);
}
