//! The consent page: what it shows, no silent consent for public clients, return paths
//! after sign-in that stay on this origin, and forms that only this origin can post.

use mcpgate_core::pkce;
use serde_json::json;

use crate::support::*;

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

/// A second request of a public client whose grant covers the scopes still shows the
/// page (pre-ticked, marked "already allowed"), and Deny answers `access_denied` with
/// `state` and `iss`: an attacker's flow cannot be finished silently in a victim's
/// browser.
#[tokio::test]
async fn public_clients_get_the_consent_page_every_time_and_deny_is_always_reachable() {
    let app = TestApp::spawn().await;
    let client_id = app.register(REDIRECT).await;
    let mut b = Browser::new(&app);
    b.login("alice", PASSWORD).await;
    let ch = pkce::challenge_of(&pkce_verifier());
    let consent = b
        .authorize(&client_id, REDIRECT, &ch, Some("op:add"), None)
        .await;
    b.consent(&consent, None).await;
    let consent = b
        .authorize(&client_id, REDIRECT, &ch, Some("op:add"), Some("again"))
        .await;
    let r = b.get(&consent).await;
    assert_eq!(r.status(), 200, "no silent consent for a public client");
    let html = r.text().await.unwrap();
    assert!(html.contains("name=\"scope_choice\" value=\"op:add\" checked"));
    assert!(html.contains("already allowed"));
    let csrf = Browser::csrf_of(&html);
    let request = crate::support::hidden(&html, "request");
    let r = b
        .post(
            "/consent",
            &[("csrf", &csrf), ("request", &request), ("decision", "deny")],
        )
        .await;
    let q = query_of(&location(&r));
    assert_eq!(q.get("error").map(String::as_str), Some("access_denied"));
    assert_eq!(q.get("state").map(String::as_str), Some("again"));
    assert_eq!(q.get("iss"), Some(&app.base));
    assert!(!q.contains_key("code"));
}

/// Skipping is kept for confidential clients the operator registered, and only them:
/// a confidential client created by a signed-in person still gets the page.
#[tokio::test]
async fn only_operator_registered_confidential_clients_skip_repeated_consent() {
    let app = TestApp::spawn().await;
    let secret = mcpgate_core::secret::Secret::generate();
    let operator = operator_client(&app, Some(&secret), None).await;
    let self_service = operator_client(&app, Some(&secret), Some("someone")).await;
    let public_operator = operator_client(&app, None, None).await;
    let mut b = Browser::new(&app);
    b.login("alice", PASSWORD).await;
    let ch = pkce::challenge_of(&pkce_verifier());
    for (client, skips) in [
        (&operator, true),
        (&self_service, false),
        (&public_operator, false),
    ] {
        let consent = b
            .authorize(client, REDIRECT, &ch, Some("op:add"), None)
            .await;
        b.consent(&consent, None).await;
        let consent = b
            .authorize(client, REDIRECT, &ch, Some("op:add"), None)
            .await;
        let r = b.get(&consent).await;
        if skips {
            assert_eq!(r.status(), 303);
            assert!(location(&r).starts_with(REDIRECT));
        } else {
            assert_eq!(r.status(), 200, "{client} must see the page");
        }
    }
}

/// Neither the consent page nor the connected-apps page calls a client the operator
/// did not register "verified"; they say who vouches for it.
#[tokio::test]
async fn self_service_clients_are_shown_with_who_vouches_never_as_verified() {
    let app = TestApp::spawn().await;
    let alice = app
        .rules
        .store
        .user_by_name("alice")
        .await
        .unwrap()
        .unwrap();
    let secret = mcpgate_core::secret::Secret::generate();
    let operator = operator_client(&app, Some(&secret), None).await;
    let self_service = operator_client(&app, Some(&secret), Some(&alice.id)).await;
    let mut b = Browser::new(&app);
    b.login("alice", PASSWORD).await;
    let ch = pkce::challenge_of(&pkce_verifier());
    for (client, verified) in [(&operator, true), (&self_service, false)] {
        let consent = b.authorize(client, REDIRECT, &ch, None, None).await;
        let html = b.get(&consent).await.text().await.unwrap();
        assert_eq!(
            !html.contains("class=\"badge\">unverified"),
            verified,
            "{client}"
        );
        assert_eq!(!html.contains("Created by alice"), verified);
        b.consent(&consent, None).await;
    }
    let html = b.get("/apps").await.text().await.unwrap();
    let row = html.split(&self_service).next().unwrap();
    let row = row.rsplit("<tr>").next().unwrap();
    assert!(row.contains("unverified"), "{row}");
    assert!(html.contains("Created by alice, a user of this server"));
}

fn assert_on_our_origin(app: &TestApp, loc: &str, next: &str) {
    assert!(
        !loc.chars().any(|c| c.is_control() || c == '\\'),
        "{next:?} gave {loc:?}"
    );
    let base = url::Url::parse(&app.base).unwrap();
    let resolved = base.join(loc).unwrap();
    assert_eq!(
        resolved.origin(),
        base.origin(),
        "{next:?} left the site: {loc:?}"
    );
    assert!(!loc.starts_with("//"), "{next:?} gave {loc:?}");
    // Under the public URL's path too: the rest of the origin is someone else's.
    let path = resolved.path();
    let decoded = percent_decoded(path);
    for p in [path, decoded.as_str()] {
        let mut segments: Vec<&str> = Vec::new();
        for s in p.split('/').filter(|s| !s.is_empty()) {
            match s {
                "." => {}
                ".." => {
                    segments.pop();
                }
                s => segments.push(s),
            }
        }
        let normalized = format!("/{}", segments.join("/"));
        assert!(
            normalized.starts_with(&format!("{}/", app.path())) || normalized == app.path(),
            "{next:?} left the base path {:?}: {loc:?}",
            app.path()
        );
    }
}

/// `%XX` decoded, once (what a lenient server in front might do).
fn percent_decoded(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |j: usize| b.get(j).and_then(|c| (*c as char).to_digit(16));
        match (b[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

const HOSTILE_NEXT: &[&str] = &[
    "/\t/evil.example",
    "/\n/evil.example",
    "\t//evil.example",
    "//evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "https://evil.example",
    "http:evil.example",
    "/%09/evil.example",
    "/%5Cevil.example",
    "/%2F%2Fevil.example",
    "javascript:alert(1)",
    "/../../other-app/x",
    "/%2e%2e/%2e%2e/other-app/x",
    "/.%2E/.%2E/other-app/x",
    "/..%2f..%2fother-app/x",
    "/..\\..\\other-app/x",
    "//..//..//other-app/x",
    "/../../../../other-app",
];

/// `next` after sign-in is resolved against the public URL and must stay on its origin,
/// under its path (run with `MCPGATE_TEST_BASE_PATH=/oauth/2.1` by the test command);
/// control characters and backslashes (raw or encoded) are refused.
#[tokio::test]
async fn return_paths_after_sign_in_never_leave_the_origin_or_the_base_path() {
    let app = TestApp::spawn().await;
    for next in HOSTILE_NEXT {
        let mut b = Browser::new(&app);
        let page = b.get("/login").await.text().await.unwrap();
        let csrf = Browser::csrf_of(&page);
        let r = b
            .post(
                "/login",
                &[
                    ("csrf", &csrf),
                    ("username", "alice"),
                    ("password", PASSWORD),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(r.status(), 303);
        let loc = r.headers()["location"].to_str().unwrap().to_owned();
        assert_on_our_origin(&app, &loc, next);
        // already signed in: GET /login?next=… redirects at once
        let url = format!(
            "/login?next={}",
            url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
        );
        let r = b.get(&url).await;
        assert_eq!(r.status(), 303);
        let loc = r.headers()["location"].to_str().unwrap().to_owned();
        assert_on_our_origin(&app, &loc, next);
    }
}
