//! Per-source rate limits on `/register`, `/token` and metadata-document
//! authorizations (each 429 with `Retry-After`), and forwarding headers believed only
//! from trusted proxies.

use serde_json::json;

use crate::support::{REDIRECT, TestApp, authorize_url, body_json};

async fn register(app: &TestApp, forwarded: &[(&str, &str)]) -> reqwest::Response {
    let mut req = app.http.post(app.url("/register")).json(
        &json!({"redirect_uris": [REDIRECT], "client_name": "Limited", "token_endpoint_auth_method": "none"}),
    );
    for (k, v) in forwarded {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

fn retry_after(r: &reqwest::Response) -> i64 {
    r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// A 429 JSON answer: `Retry-After` within the window, an OAuth error body.
async fn assert_limited_json(r: reqwest::Response, what: &str) {
    assert_eq!(r.status(), 429, "{what}");
    assert!((1..=60).contains(&retry_after(&r)), "{what}");
    assert_eq!(r.headers()["cache-control"], "no-store", "{what}");
    let body = body_json(r).await;
    assert_eq!(body["error"], "invalid_request", "{what}: {body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("try again"),
        "{what}: {body}"
    );
}

#[tokio::test]
async fn registrations_are_limited_per_source_address() {
    let app = TestApp::spawn_with(|c| c.register_per_source_per_minute = 3).await;
    for _ in 0..3 {
        assert_eq!(register(&app, &[]).await.status(), 201);
    }
    assert_limited_json(register(&app, &[]).await, "/register").await;
}

/// Every source makes a counter row a minute: the housekeeping deletes the rows of
/// windows that have passed, or the table would grow without end under load. Here
/// the housekeeping is told it is three minutes later, so the current window's
/// counter goes too, and the source may register again at once.
#[tokio::test]
async fn counters_of_passed_windows_are_swept() {
    let app = TestApp::spawn_with(|c| c.register_per_source_per_minute = 2).await;
    for _ in 0..2 {
        assert_eq!(register(&app, &[]).await.status(), 201);
    }
    assert_eq!(register(&app, &[]).await.status(), 429);
    app.auth.housekeeping(app.rules.now()).await.unwrap();
    assert_eq!(
        register(&app, &[]).await.status(),
        429,
        "the current window is kept"
    );
    app.auth.housekeeping(app.rules.now() + 180).await.unwrap();
    assert_eq!(register(&app, &[]).await.status(), 201);
}

#[tokio::test]
async fn token_requests_are_limited_per_source_address() {
    let app = TestApp::spawn_with(|c| c.token_per_source_per_minute = 3).await;
    let post = || {
        app.http
            .post(app.url("/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", "nope"),
                ("client_id", "nobody"),
            ])
            .send()
    };
    for _ in 0..3 {
        assert_ne!(post().await.unwrap().status(), 429);
    }
    assert_limited_json(post().await.unwrap(), "/token").await;
}

/// Authorization requests naming a metadata-document client (each may make the server
/// fetch a URL) are limited; past the limit the answer is an HTML page with
/// `Retry-After`, never a redirect. Requests naming a registered client are not.
#[tokio::test]
async fn document_authorizations_are_limited_per_source_with_a_page() {
    let app = TestApp::spawn_with(|c| c.document_authorizations_per_source_per_minute = 2).await;
    let doc = authorize_url(
        &app,
        "https://127.0.0.1/client.json",
        REDIRECT,
        "x",
        None,
        Some("s"),
    );
    for _ in 0..2 {
        let r = app.http.get(&doc).send().await.unwrap();
        assert_eq!(
            r.status(),
            400,
            "the loopback document is refused, but fetched under the limit"
        );
    }
    let r = app.http.get(&doc).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("location").is_none(), "never a redirect");
    assert!((1..=60).contains(&retry_after(&r)));
    let html = r.text().await.unwrap();
    assert!(
        html.contains("<html") && html.contains("Try again"),
        "{html}"
    );
    // other authorization requests are not counted
    let plain = authorize_url(&app, "unregistered", REDIRECT, "x", None, None);
    for _ in 0..4 {
        assert_eq!(app.http.get(&plain).send().await.unwrap().status(), 400);
    }
}

/// From an untrusted peer (the default: no proxy is trusted), a spoofed
/// `X-Forwarded-For` or `Forwarded` does not change the bucket.
#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_do_not_change_the_bucket() {
    let app = TestApp::spawn_with(|c| c.register_per_source_per_minute = 1).await;
    assert_eq!(
        register(&app, &[("x-forwarded-for", "198.51.100.1")])
            .await
            .status(),
        201
    );
    assert_eq!(
        register(&app, &[("x-forwarded-for", "198.51.100.2")])
            .await
            .status(),
        429
    );
    assert_eq!(
        register(&app, &[("forwarded", "for=198.51.100.3")])
            .await
            .status(),
        429
    );
}

/// From a trusted proxy, the client named by the headers is the bucket.
#[tokio::test]
async fn forwarding_headers_from_a_trusted_proxy_name_the_bucket() {
    let app = TestApp::spawn_with(|c| {
        c.register_per_source_per_minute = 1;
        c.trusted_proxies = mcpgate_server::forwarded::parse_cidrs("127.0.0.0/8").unwrap();
    })
    .await;
    let a = [("x-forwarded-for", "198.51.100.1")];
    assert_eq!(register(&app, &a).await.status(), 201);
    assert_eq!(register(&app, &a).await.status(), 429);
    // a client cannot escape by prepending a hop: the rightmost untrusted one counts
    let prefixed = [("x-forwarded-for", "203.0.113.9, 198.51.100.1")];
    assert_eq!(register(&app, &prefixed).await.status(), 429);
    assert_eq!(
        register(&app, &[("x-forwarded-for", "198.51.100.2")])
            .await
            .status(),
        201
    );
    assert_eq!(
        register(&app, &[("forwarded", "for=\"[2001:db8::7]:443\"")])
            .await
            .status(),
        201
    );
}

/// A provider that needs no network to start a sign-in (GitHub's endpoints are fixed).
fn github_provider() -> mcpgate_server::idp::IdpSettings {
    mcpgate_server::idp::IdpSettings {
        name: "gh".into(),
        display_name: "GitHub".into(),
        preset: mcpgate_server::idp::Preset::Github,
        issuer: "https://github.com".into(),
        client_id: "cid".into(),
        client_secret: mcpgate_core::secret::Secret::new("provider-secret"),
        allowed_domains: vec![],
        auto_create: false,
        groups_claim: None,
        groups_scope: None,
    }
}

/// Starting a sign-in at a provider is unauthenticated and stores a pending sign-in
/// each time: past the limit, a source gets 429 (a page with `Retry-After`, never a
/// redirect to the provider), while another source still starts.
#[tokio::test]
async fn provider_sign_in_starts_are_limited_per_source_address() {
    let app = TestApp::spawn_configured(
        crate::support::temp_dir(),
        |c| {
            c.idp_starts_per_source_per_minute = 3;
            c.trusted_proxies = mcpgate_server::forwarded::parse_cidrs("127.0.0.0/8").unwrap();
        },
        |c| c.identity_providers = vec![github_provider()],
    )
    .await;
    let start = |from: &'static str| {
        app.http
            .get(app.url("/login/idp/gh"))
            .header("x-forwarded-for", from)
            .send()
    };
    for _ in 0..3 {
        let r = start("198.51.100.1").await.unwrap();
        assert_eq!(r.status(), 303);
        assert!(
            r.headers()["location"]
                .to_str()
                .unwrap()
                .starts_with("https://github.com/")
        );
    }
    let r = start("198.51.100.1").await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("location").is_none(), "never a redirect");
    assert!((1..=60).contains(&retry_after(&r)));
    assert!(r.text().await.unwrap().contains("Try again"));
    assert_eq!(start("198.51.100.2").await.unwrap().status(), 303);
    // The default is the documented 60 a minute.
    let defaults = mcpgate_server::ServerConfig::new(
        "https://as.example",
        "https://as.example/mcp",
        Default::default(),
    );
    assert_eq!(defaults.idp_starts_per_source_per_minute, 60);
}

/// `/readyz` needs no credentials: a flood of probes shares one database ping per
/// interval instead of costing one each.
#[tokio::test]
async fn readiness_probes_share_one_database_ping() {
    let app = TestApp::spawn().await;
    let before = app.auth.db_probe.pings();
    let started = std::time::Instant::now();
    let probes = (0..500).map(|_| {
        let (http, url) = (app.http.clone(), app.url("/readyz"));
        async move { http.get(url).send().await.unwrap().status() }
    });
    let statuses = futures_join_all(probes).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let pings = app.auth.db_probe.pings() - before;
    // One per interval the flood lasted, and one more for an interval begun.
    let intervals = started.elapsed().as_secs() + 2;
    assert!(
        pings <= intervals,
        "{pings} database pings for 500 probes in {:?}",
        started.elapsed()
    );
}

/// Runs the futures at once, in batches of 50 connections.
async fn futures_join_all<F: std::future::Future<Output = reqwest::StatusCode> + Send + 'static>(
    futs: impl Iterator<Item = F>,
) -> Vec<reqwest::StatusCode> {
    let mut out = Vec::new();
    let mut set = tokio::task::JoinSet::new();
    for f in futs {
        set.spawn(f);
        if set.len() >= 50 {
            out.push(set.join_next().await.unwrap().unwrap());
        }
    }
    while let Some(r) = set.join_next().await {
        out.push(r.unwrap());
    }
    out
}
