//! The authorization server (OAuth 2.1, RFC 8414, 7591, 7636, 8707, 9207, 7662, 7009),
//! over real HTTP, with a person's browser played by the test.

use mcpgate_core::pkce;
use serde_json::{Value, json};

use crate::support::{
    Browser, PASSWORD, REDIRECT, TestApp, authorize_url, body_json, location, pkce_verifier,
};

async fn token_error(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    assert_eq!(
        r.headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("no-store")
    );
    (
        status,
        body_json(r).await["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

#[tokio::test]
async fn metadata_advertises_what_is_implemented() {
    let app = TestApp::spawn().await;
    let m = body_json(app.http.get(app.as_metadata_url()).send().await.unwrap()).await;
    assert_eq!(
        m["issuer"], app.base,
        "issuer must be the exact string clients use"
    );
    assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(m["response_types_supported"], json!(["code"]));
    assert_eq!(
        m["token_endpoint_auth_methods_supported"],
        json!(["none", "client_secret_basic", "client_secret_post"])
    );
    assert_eq!(m["authorization_response_iss_parameter_supported"], true);
    for ep in [
        "authorization_endpoint",
        "token_endpoint",
        "registration_endpoint",
        "introspection_endpoint",
        "revocation_endpoint",
        "jwks_uri",
    ] {
        assert!(m[ep].as_str().unwrap().starts_with(&app.base), "{ep}");
    }
    let jwks = body_json(
        app.http
            .get(m["jwks_uri"].as_str().unwrap())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    assert!(
        jwks["keys"][0].get("d").is_none(),
        "no private key material"
    );
}

#[tokio::test]
async fn full_flow_then_calculator_then_step_up_refresh_and_revocation() {
    let app = TestApp::spawn().await;
    let (client_id, tok) = app.tokens(Some(&["op:add", "op:sub"])).await;
    assert_eq!(tok["token_type"], "Bearer");
    assert_eq!(tok["scope"], "op:add op:sub", "the person granted a subset");
    let access = tok["access_token"].as_str().unwrap();
    let r = app.calc_as(access, "add", 5.0, 8.0).send().await.unwrap();
    assert_eq!(
        body_json(r).await["result"]["structuredContent"]["result"],
        13.0
    );
    let r = app
        .calc_as(access, "divide", 1.0, 2.0)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // refresh rotates
    let refresh = tok["refresh_token"].as_str().unwrap();
    let r = app.refresh(&client_id, refresh, None).await;
    assert_eq!(r.status(), 200);
    let tok2 = body_json(r).await;
    assert_ne!(tok2["refresh_token"], tok["refresh_token"]);
    let access2 = tok2["access_token"].as_str().unwrap();
    assert_eq!(app.calc_status(access2, "subtract", 5.0, 8.0).await, 200);
    // revoke the refresh token: its family's access tokens stop working at once
    let r = app
        .http
        .post(app.url("/revoke"))
        .form(&[
            ("token", tok2["refresh_token"].as_str().unwrap()),
            ("client_id", &client_id),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(app.calc_status(access2, "add", 1.0, 1.0).await, 401);
    assert_eq!(app.calc_status(access, "add", 1.0, 1.0).await, 401);
    let (s, e) = token_error(
        app.refresh(&client_id, tok2["refresh_token"].as_str().unwrap(), None)
            .await,
    )
    .await;
    assert_eq!((s, e.as_str()), (400, "invalid_grant"));
}

#[tokio::test]
async fn absent_scope_means_default_scopes() {
    let app = TestApp::spawn().await;
    let (_, tok) = app.tokens(None).await;
    assert_eq!(tok["scope"], "op:add op:div op:mult op:sub");
}

#[tokio::test]
async fn consent_page_marks_scopes_already_granted_and_asks_for_new_ones() {
    let app = TestApp::spawn().await;
    let client_id = app.register(REDIRECT).await;
    let mut b = Browser::new(&app);
    b.login("alice", PASSWORD).await;
    let v = pkce_verifier();
    let ch = pkce::challenge_of(&v);
    let consent = b
        .authorize(&client_id, REDIRECT, &ch, Some("op:add"), None)
        .await;
    b.consent(&consent, None).await;
    // more: the page shows the new scope and marks the old one
    let consent = b
        .authorize(&client_id, REDIRECT, &ch, Some("op:add op:div"), None)
        .await;
    let html = b.get(&consent).await.text().await.unwrap();
    assert!(html.contains("value=\"op:div\""));
    assert!(html.contains("already allowed"));
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
async fn code_is_bound_to_client_redirect_and_resource() {
    let app = TestApp::spawn().await;
    let client_id = app.register(REDIRECT).await;
    let other = app.register("http://127.0.0.1:9999/callback").await;
    for case in ["client", "redirect", "resource"] {
        let v = pkce_verifier();
        let code = app
            .code_for(&client_id, &pkce::challenge_of(&v), None, None)
            .await;
        let (cid, redirect, resource) = match case {
            "client" => (other.as_str(), REDIRECT, app.mcp_url()),
            "redirect" => (
                client_id.as_str(),
                "http://127.0.0.1:33418/callback/",
                app.mcp_url(),
            ),
            _ => (
                client_id.as_str(),
                REDIRECT,
                "https://other.example/mcp".to_owned(),
            ),
        };
        let r = app
            .http
            .post(app.url("/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect),
                ("code_verifier", &v),
                ("client_id", cid),
                ("resource", &resource),
            ])
            .send()
            .await
            .unwrap();
        let (s, e) = token_error(r).await;
        let want = if case == "resource" {
            "invalid_target"
        } else {
            "invalid_grant"
        };
        assert_eq!((s, e.as_str()), (400, want), "{case}");
    }
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

#[tokio::test]
async fn refresh_reuse_after_grace_revokes_the_family_and_duplicates_within_grace_get_the_same_answer()
 {
    let app = TestApp::spawn_with(|c| c.rules.refresh_grace_secs = 2).await;
    let (client_id, tok) = app.tokens(None).await;
    let r0 = tok["refresh_token"].as_str().unwrap().to_owned();
    // two racing refreshes of the same token
    let (a, b) = tokio::join!(
        app.refresh(&client_id, &r0, None),
        app.refresh(&client_id, &r0, None)
    );
    let (a, b) = (body_json(a).await, body_json(b).await);
    assert_eq!(
        a["refresh_token"], b["refresh_token"],
        "grace answer is the same pair: {a} {b}"
    );
    assert_eq!(a["access_token"], b["access_token"]);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    // replay after the grace period: reuse detected, family revoked
    let (s, e) = token_error(app.refresh(&client_id, &r0, None).await).await;
    assert_eq!((s, e.as_str()), (400, "invalid_grant"));
    let (_, e) = token_error(
        app.refresh(&client_id, a["refresh_token"].as_str().unwrap(), None)
            .await,
    )
    .await;
    assert_eq!(e, "invalid_grant", "the successor died with its family");
    assert_eq!(
        app.calc_status(a["access_token"].as_str().unwrap(), "add", 1.0, 1.0)
            .await,
        401
    );
}

#[tokio::test]
async fn refresh_scope_can_narrow_but_not_widen() {
    let app = TestApp::spawn().await;
    let (client_id, tok) = app.tokens(Some(&["op:add", "op:sub"])).await;
    let r = tok["refresh_token"].as_str().unwrap();
    let (s, e) = token_error(app.refresh(&client_id, r, Some("op:add op:div")).await).await;
    assert_eq!((s, e.as_str()), (400, "invalid_scope"));
    let narrowed = body_json(app.refresh(&client_id, r, Some("op:add")).await).await;
    assert_eq!(narrowed["scope"], "op:add");
}

#[tokio::test]
async fn refresh_by_another_client_fails() {
    let app = TestApp::spawn().await;
    let (_, tok) = app.tokens(None).await;
    let other = app.register("http://127.0.0.1:1234/callback").await;
    let (s, e) = token_error(
        app.refresh(&other, tok["refresh_token"].as_str().unwrap(), None)
            .await,
    )
    .await;
    assert_eq!((s, e.as_str()), (400, "invalid_grant"));
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

#[tokio::test]
async fn hostile_client_name_is_escaped_and_flagged_unverified() {
    let app = TestApp::spawn().await;
    let r = app.http.post(app.url("/register"))
        .json(&json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "client_name": "<script>alert(1)</script>ChatGPT"}))
        .send().await.unwrap();
    let client_id = body_json(r).await["client_id"].as_str().unwrap().to_owned();
    let mut b = Browser::new(&app);
    b.login("alice", PASSWORD).await;
    let consent = b
        .authorize(
            &client_id,
            REDIRECT,
            &pkce::challenge_of(&pkce_verifier()),
            None,
            None,
        )
        .await;
    let r = b.get(&consent).await;
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    let html = r.text().await.unwrap();
    assert!(!html.contains("<script>alert(1)</script>"));
    assert!(
        html.contains("&#60;script&#62;alert(1)&#60;/script&#62;ChatGPT")
            || html.contains("&lt;script&gt;"),
        "escaped"
    );
    assert!(html.contains("unverified"));
    assert!(html.contains("127.0.0.1"), "the redirect host is shown");
}

#[tokio::test]
async fn forms_without_a_valid_csrf_token_are_refused() {
    let app = TestApp::spawn().await;
    let mut b = Browser::new(&app);
    b.get("/login").await;
    let r = b
        .post(
            "/login",
            &[
                ("username", "alice"),
                ("password", PASSWORD),
                ("csrf", "forged"),
            ],
        )
        .await;
    assert_eq!(r.status(), 403);
    let r = b
        .post("/login", &[("username", "alice"), ("password", PASSWORD)])
        .await;
    assert_eq!(r.status(), 403);
    assert!(!b.cookies.contains_key("mcpgate_session"));
}

/// A sibling subdomain is the same site: it can plant the CSRF cookie and post a
/// matching field. The browser's own word on where the form came from (Fetch Metadata,
/// `Origin`) must say this origin.
#[tokio::test]
async fn forms_from_another_origin_are_refused_even_with_a_matching_token() {
    let app = TestApp::spawn().await;
    let mut b = Browser::new(&app);
    let page = b.get("/login").await.text().await.unwrap();
    let csrf = Browser::csrf_of(&page);
    let post = |extra: Vec<(&'static str, String)>| {
        let mut req = app
            .http
            .post(app.url("/login"))
            .header("cookie", b.cookie_header())
            .form(&[
                ("username", "alice"),
                ("password", PASSWORD),
                ("csrf", csrf.as_str()),
            ]);
        for (k, v) in extra {
            req = req.header(k, v);
        }
        req.send()
    };
    let sibling = "https://evil.sibling.example".to_owned();
    for extra in [
        vec![("sec-fetch-site", "same-site".to_owned())],
        vec![("sec-fetch-site", "cross-site".to_owned())],
        vec![("origin", sibling.clone())],
        vec![
            ("sec-fetch-site", "same-site".to_owned()),
            ("origin", "null".to_owned()),
        ],
    ] {
        let r = post(extra.clone()).await.unwrap();
        assert_eq!(r.status(), 403, "{extra:?}");
        assert!(
            r.headers()
                .get("set-cookie")
                .is_none_or(|c| !c.to_str().unwrap().contains("mcpgate_session")),
            "{extra:?}"
        );
    }
    // The same form from this origin signs in (a browser on our no-referrer page
    // sends `Origin: null`).
    let r = post(vec![
        ("sec-fetch-site", "same-origin".to_owned()),
        ("origin", "null".to_owned()),
    ])
    .await
    .unwrap();
    assert_eq!(r.status(), 303);
}

#[tokio::test]
async fn login_errors_are_the_same_for_unknown_users_and_slow_down_per_account() {
    let app = TestApp::spawn().await;
    let mut b = Browser::new(&app);
    let unknown = b.login("nobody", "x").await.text().await.unwrap();
    let wrong = b.login("alice", "wrong").await.text().await.unwrap();
    assert!(
        unknown.contains("Invalid username or password.")
            && wrong.contains("Invalid username or password.")
    );
    for _ in 0..5 {
        b.login("alice", "wrong").await;
    }
    let r = b.login("alice", PASSWORD).await;
    assert_eq!(r.status(), 429, "throttled even with the right password");
    assert!(r.text().await.unwrap().contains("Too many failed attempts"));
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

#[tokio::test]
async fn connected_apps_lists_the_grant_and_revoking_it_ends_access() {
    let app = TestApp::spawn().await;
    let (_, tok) = app.tokens(None).await;
    let access = tok["access_token"].as_str().unwrap();
    let mut b = Browser::new(&app);
    b.login("alice", PASSWORD).await;
    let html = b.get("/apps").await.text().await.unwrap();
    assert!(html.contains("Test client"));
    let grant = crate::support::hidden(&html, "grant");
    let csrf = Browser::csrf_of(&html);
    let r = b
        .post("/apps/revoke", &[("csrf", &csrf), ("grant", &grant)])
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(app.calc_status(access, "add", 1.0, 1.0).await, 401);
    let html = b.get("/apps").await.text().await.unwrap();
    assert!(html.contains("No application has access"));
    // and the refresh token is dead too
    let r = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tok["refresh_token"].as_str().unwrap()),
            ("client_id", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn deleting_a_client_on_my_clients_page_ends_its_tokens() {
    let app = TestApp::spawn().await;
    let mut b = Browser::new(&app);
    b.login("alice", PASSWORD).await;
    let html = b.get("/clients").await.text().await.unwrap();
    let csrf = Browser::csrf_of(&html);
    let r = b
        .post(
            "/clients",
            &[
                ("csrf", &csrf),
                ("name", "Mine"),
                ("redirect_uris", REDIRECT),
                ("kind", "public"),
            ],
        )
        .await;
    let html = r.text().await.unwrap();
    let client_id = html
        .split("id=\"new-client-id\" class=\"secret\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .trim()
        .to_owned();
    let tok = app.tokens_for(&client_id, None).await;
    let access = tok["access_token"].as_str().unwrap();
    assert_eq!(app.calc_status(access, "add", 1.0, 1.0).await, 200);
    // another person cannot delete it
    app.add_user("mallory", PASSWORD).await;
    let mut m = Browser::new(&app);
    m.login("mallory", PASSWORD).await;
    let mcsrf = Browser::csrf_of(&m.get("/clients").await.text().await.unwrap());
    m.post(
        "/clients/delete",
        &[("csrf", &mcsrf), ("client_id", &client_id)],
    )
    .await;
    assert_eq!(app.calc_status(access, "add", 1.0, 1.0).await, 200);
    // the owner can, and its tokens end at once
    let r = b
        .post(
            "/clients/delete",
            &[("csrf", &csrf), ("client_id", &client_id)],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(app.calc_status(access, "add", 1.0, 1.0).await, 401);
    assert!(app.rules.store.client(&client_id).await.unwrap().is_none());
}

/// RFC 8414 §3.1 and OpenID Connect Discovery §4: every well-known URL a client may
/// derive from the issuer answers the same document, whose `issuer` is the exact
/// string (MCP "Authorization Server Metadata Discovery").
#[tokio::test]
async fn metadata_at_every_well_known_form() {
    let app = TestApp::spawn().await;
    let forms = [
        app.as_metadata_url(),
        app.well_known("openid-configuration", ""),
        app.url("/.well-known/openid-configuration"),
    ];
    let mut docs = Vec::new();
    for url in &forms {
        let r = app.http.get(url).send().await.unwrap();
        assert_eq!(r.status(), 200, "{url}");
        let doc = body_json(r).await;
        assert_eq!(doc["issuer"], app.base, "{url}");
        assert_eq!(doc["token_endpoint"], app.url("/token"), "{url}");
        docs.push(doc);
    }
    assert!(docs.windows(2).all(|w| w[0] == w[1]), "one document");
}

/// A mistyped URL under the authorization server says what exists, as JSON for
/// programs and as a page for browsers, instead of an empty 404.
#[tokio::test]
async fn unknown_paths_say_what_exists() {
    let app = TestApp::spawn().await;
    let r = app
        .http
        .get(app.url("/oauth/2.1/introspect"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body = body_json(r).await;
    assert_eq!(body["error"], "not_found");
    let urls: Vec<&str> = body["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["url"].as_str().unwrap())
        .collect();
    for want in [
        app.url("/introspect"),
        app.url("/token"),
        app.mcp_url(),
        app.as_metadata_url(),
    ] {
        assert!(urls.contains(&want.as_str()), "{want} in {urls:?}");
    }
    let page = app
        .http
        .get(app.url("/nothing<script>"))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 404);
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let html = page.text().await.unwrap();
    assert!(html.contains(&app.url("/introspect")), "{html}");
    assert!(!html.contains("<script>"), "the path is escaped");
    assert!(
        html.contains(&format!(r#"href="{}/assets/style.css""#, app.path())),
        "the page's own links follow the base path"
    );
}
