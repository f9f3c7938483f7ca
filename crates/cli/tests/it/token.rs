//! The token endpoint over HTTP: one smoke test per grant's edge (the code and refresh
//! rules are proven in the domain's `grants` tests), client authentication as
//! registered, RFC 8707 resource rules at both endpoints, and code replay that only the
//! code's own client can turn into a revocation.

use mcpgate_core::pkce;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn code_replay_fails_and_revokes_what_the_code_issued() {
    let app = TestApp::spawn().await;
    let client_id = app.register(REDIRECT).await;
    let v = pkce_verifier();
    let code = app
        .code_for(&client_id, &pkce::challenge_of(&v), None, None)
        .await;
    let first = body_json(app.exchange(&client_id, &code, &v).await).await;
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(app.calc_status(access, "add", 1.0, 1.0).await, 200);
    let (s, e) = token_error(app.exchange(&client_id, &code, &v).await).await;
    assert_eq!((s, e.as_str()), (400, "invalid_grant"));
    assert_eq!(
        app.calc_status(access, "add", 1.0, 1.0).await,
        401,
        "tokens of a replayed code are revoked"
    );
    let (_, e) = token_error(
        app.refresh(&client_id, first["refresh_token"].as_str().unwrap(), None)
            .await,
    )
    .await;
    assert_eq!(e, "invalid_grant");
}

#[tokio::test]
async fn unknown_client_at_token_endpoint_is_invalid_client() {
    let app = TestApp::spawn().await;
    let r = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("client_id", "nope"),
        ])
        .send()
        .await
        .unwrap();
    let (s, e) = token_error(r).await;
    assert_eq!((s, e.as_str()), (401, "invalid_client"));
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth("nope", Some("x"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("www-authenticate").is_some());
    let (s, _) = token_error(r).await;
    assert_eq!(s, 401);
    let r = app
        .http
        .post(app.url("/token"))
        .form(&[("grant_type", "password"), ("username", "a")])
        .send()
        .await
        .unwrap();
    assert_eq!(token_error(r).await.1, "unsupported_grant_type");
    let r = app
        .http
        .post(app.url("/token"))
        .body("grant_type=refresh_token&grant_type=refresh_token")
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(
        token_error(r).await.1,
        "invalid_request",
        "repeated parameters are refused"
    );
}

/// A client authenticates only by the method it registered (RFC 7591 §2): the same
/// secret in the other place is `invalid_client`, as is a secret from a public client.
#[tokio::test]
async fn clients_authenticate_only_by_their_registered_method() {
    let app = TestApp::spawn().await;
    let register = |method: &'static str| {
        let app = &app;
        async move {
            let mut body =
                json!({"redirect_uris": [REDIRECT], "client_name": format!("m {method}")});
            if method != "default" {
                body["token_endpoint_auth_method"] = json!(method);
            }
            let r = app
                .http
                .post(app.url("/register"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201, "{method}");
            let c = body_json(r).await;
            (
                c["client_id"].as_str().unwrap().to_owned(),
                c["client_secret"].as_str().map(str::to_owned),
            )
        }
    };
    // RFC 7009 §2.1: revoking an unknown token is a 200, so the status is client
    // authentication's alone.
    let revoke = |id: String, secret: Option<String>, basic: bool| {
        let app = &app;
        async move {
            let mut form = vec![("token", "not-a-token".to_owned())];
            let mut req = app.http.post(app.url("/revoke"));
            match (secret, basic) {
                (Some(s), true) => req = req.basic_auth(&id, Some(s)),
                (Some(s), false) => {
                    form.push(("client_id", id));
                    form.push(("client_secret", s));
                }
                (None, _) => form.push(("client_id", id)),
            }
            req.form(&form).send().await.unwrap().status().as_u16()
        }
    };
    let (basic_id, basic_secret) = register("default").await;
    assert_eq!(
        revoke(basic_id.clone(), basic_secret.clone(), true).await,
        200
    );
    assert_eq!(
        revoke(basic_id.clone(), basic_secret.clone(), false).await,
        401
    );
    assert_eq!(revoke(basic_id, None, false).await, 401);
    let (post_id, post_secret) = register("client_secret_post").await;
    assert_eq!(
        revoke(post_id.clone(), post_secret.clone(), false).await,
        200
    );
    assert_eq!(revoke(post_id.clone(), post_secret, true).await, 401);
    assert_eq!(revoke(post_id, None, false).await, 401);
    let (public_id, none) = register("none").await;
    assert!(none.is_none());
    assert_eq!(revoke(public_id.clone(), None, false).await, 200);
    assert_eq!(
        revoke(public_id.clone(), Some("made-up".into()), false).await,
        401
    );
    assert_eq!(revoke(public_id, Some("made-up".into()), true).await, 401);
}

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
