//! The authorization endpoint: default scopes, denial, PKCE at the door, redirect URIs
//! matched exactly (never a redirect to an unverified URI), resource indicators.
//! The rules themselves are proven in the domain's tests; these are the HTTP edge.

use mcpgate_core::pkce;

use crate::support::*;

#[tokio::test]
async fn absent_scope_means_default_scopes() {
    let app = TestApp::spawn().await;
    let (_, tok) = app.tokens(None).await;
    assert_eq!(tok["scope"], "op:add op:div op:mult op:sub");
}

#[tokio::test]
async fn deny_returns_access_denied_with_state_and_iss() {
    let app = TestApp::spawn().await;
    let client_id = app.register(REDIRECT).await;
    let mut b = Browser::new(&app);
    b.login("alice", PASSWORD).await;
    let consent = b
        .authorize(
            &client_id,
            REDIRECT,
            &pkce::challenge_of(&pkce_verifier()),
            None,
            Some("s1"),
        )
        .await;
    let html = b.get(&consent).await.text().await.unwrap();
    let csrf = Browser::csrf_of(&html);
    let request = crate::support::hidden(&html, "request");
    let r = b
        .post(
            "/consent",
            &[("csrf", &csrf), ("request", &request), ("decision", "deny")],
        )
        .await;
    let loc = location(&r);
    assert!(loc.starts_with(REDIRECT));
    assert!(
        loc.contains("error=access_denied") && loc.contains("state=s1") && loc.contains("iss="),
        "{loc}"
    );
}

#[tokio::test]
async fn pkce_missing_plain_and_wrong_are_refused() {
    let app = TestApp::spawn().await;
    let client_id = app.register(REDIRECT).await;
    let mut b = Browser::new(&app);
    for (extra, what) in [
        ("", "missing"),
        ("&code_challenge=abc&code_challenge_method=plain", "plain"),
    ] {
        let url = format!(
            "{}?response_type=code&client_id={client_id}&redirect_uri={}&state=s{extra}",
            app.url("/authorize"),
            url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
        );
        let r = b.get(&url).await;
        assert_eq!(r.status(), 303, "{what}");
        let loc = location(&r);
        assert!(
            loc.starts_with(REDIRECT)
                && loc.contains("error=invalid_request")
                && loc.contains("iss="),
            "{what}: {loc}"
        );
    }
    // wrong verifier at the token endpoint
    let v = pkce_verifier();
    let code = app
        .code_for(&client_id, &pkce::challenge_of(&v), None, None)
        .await;
    let (s, e) = token_error(app.exchange(&client_id, &code, &pkce_verifier()).await).await;
    assert_eq!((s, e.as_str()), (400, "invalid_grant"));
    // and the code is spent by that attempt
    let (_, e) = token_error(app.exchange(&client_id, &code, &v).await).await;
    assert_eq!(e, "invalid_grant");
}

#[tokio::test]
async fn redirect_mismatch_of_every_kind_shows_a_page_and_never_redirects() {
    let app = TestApp::spawn().await;
    let reg = "https://claude.ai/api/mcp/auth_callback";
    let client_id = app.register(reg).await;
    let mut b = Browser::new(&app);
    let ch = pkce::challenge_of(&pkce_verifier());
    for bad in [
        "https://claude.ai/api/mcp/auth_callback/x",    // suffix
        "https://claude.ai/api/mcp/auth_callbac",       // prefix
        "https://evil.claude.ai/api/mcp/auth_callback", // subdomain
        "https://claude.ai/api/mcp/other",              // path
        "https://claude.ai/api/mcp/auth_callback#f",    // fragment
        "http://claude.ai/api/mcp/auth_callback",       // scheme
        "https://evil.example/cb",
    ] {
        let r = b
            .get(&authorize_url(&app, &client_id, bad, &ch, None, Some("s")))
            .await;
        assert_eq!(r.status(), 400, "{bad}");
        assert!(
            r.headers().get("location").is_none(),
            "{bad} must not redirect"
        );
        assert!(
            r.text().await.unwrap().contains("did not register"),
            "{bad}"
        );
    }
    // unknown client: page, no redirect
    let r = b
        .get(&authorize_url(&app, "nope", reg, &ch, None, None))
        .await;
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
}

#[tokio::test]
async fn unknown_resource_is_invalid_target() {
    let app = TestApp::spawn().await;
    let client_id = app.register(REDIRECT).await;
    let mut b = Browser::new(&app);
    let url = authorize_url(
        &app,
        &client_id,
        REDIRECT,
        &pkce::challenge_of(&pkce_verifier()),
        None,
        None,
    )
    .replace(
        &url::form_urlencoded::byte_serialize(app.mcp_url().as_bytes()).collect::<String>(),
        "https%3A%2F%2Fother.example%2Fmcp",
    );
    let r = b.get(&url).await;
    assert!(location(&r).contains("error=invalid_target"));
}
