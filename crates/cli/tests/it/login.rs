//! Sign-in: the same answer for unknown accounts and wrong passwords, throttling that
//! cannot be raced, a bound on password hashes computed at once, and a per-source limit
//! beside the per-account one.

use mcpgate_core::pkce;

use crate::support::*;

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

async fn attempt(app: &TestApp, user: &str, password: &str) -> reqwest::Response {
    let mut b = Browser::new(app);
    b.login(user, password).await
}

/// Twenty guesses sent at once for one account: each is reserved before its password
/// is checked, so no more than the free failures plus one are ever checked.
#[tokio::test]
async fn concurrent_guesses_cannot_race_past_the_account_throttle() {
    let app = TestApp::spawn_with(|c| {
        c.hash_slots = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
        c.login_per_source_per_minute = 1000;
    })
    .await;
    let attempts = (0..20).map(|_| attempt(&app, "alice", "wrong"));
    let answers = futures_join_all(attempts).await;
    let checked = answers.iter().filter(|s| **s == 401).count();
    assert!(
        answers.iter().all(|s| *s == 401 || *s == 429),
        "{answers:?}"
    );
    assert!(checked <= 6, "{checked} guesses were checked: {answers:?}");
    // and the right password is refused while locked
    assert_eq!(attempt(&app, "alice", PASSWORD).await.status(), 429);
}

/// More concurrent sign-ins than hash slots: the excess gets a clear 503 "try again"
/// with Retry-After, never an unbounded queue or a dropped connection.
#[tokio::test]
async fn password_hashes_at_once_are_bounded() {
    let app = TestApp::spawn_with(|c| {
        c.hash_slots = std::sync::Arc::new(tokio::sync::Semaphore::new(1));
        c.login_per_source_per_minute = 1000;
    })
    .await;
    let names: Vec<String> = (0..12).map(|i| format!("nobody{i}")).collect();
    let rs = futures_join_all_resp(names.iter().map(|n| attempt(&app, n, "x"))).await;
    let busy: Vec<_> = rs.iter().filter(|(s, _, _)| *s == 503).collect();
    assert!(!busy.is_empty(), "some attempt must find every slot taken");
    for (_, retry, body) in busy {
        assert!(retry.is_some(), "Retry-After on 503");
        assert!(body.contains("Try again"), "{body}");
    }
    assert!(rs.iter().all(|(s, _, _)| *s == 401 || *s == 503));
}

/// One address cannot try account after account: past the per-source limit of failed
/// attempts, 429 with Retry-After, whatever the account.
#[tokio::test]
async fn sign_in_attempts_are_limited_per_source_address() {
    let app = TestApp::spawn_with(|c| c.login_per_source_per_minute = 3).await;
    // successful sign-ins are not held against the address
    for _ in 0..5 {
        assert_eq!(attempt(&app, "alice", PASSWORD).await.status(), 303);
    }
    for i in 0..3 {
        assert_eq!(attempt(&app, &format!("user{i}"), "x").await.status(), 401);
    }
    let r = attempt(&app, "alice", PASSWORD).await;
    assert_eq!(r.status(), 429);
    let retry: i64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
}

async fn futures_join_all(
    futs: impl Iterator<Item = impl std::future::Future<Output = reqwest::Response>>,
) -> Vec<u16> {
    futures_join_all_resp(futs)
        .await
        .into_iter()
        .map(|(s, _, _)| s)
        .collect()
}

async fn futures_join_all_resp(
    futs: impl Iterator<Item = impl std::future::Future<Output = reqwest::Response>>,
) -> Vec<(u16, Option<String>, String)> {
    let mut set = Vec::new();
    for f in futs {
        set.push(f);
    }
    let mut out = Vec::new();
    // Poll them together: all requests are in flight at once.
    let results = join_all(set).await;
    for r in results {
        let status = r.status().as_u16();
        let retry = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        out.push((status, retry, r.text().await.unwrap()));
    }
    out
}

/// Runs futures concurrently on this task (no extra dependency).
async fn join_all<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
    use std::pin::Pin;
    use std::task::{Context, Poll};
    let mut futs: Vec<Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(move |cx: &mut Context<'_>| {
        let mut pending = false;
        for (i, f) in futs.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => out[i] = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(out.iter_mut().map(|o| o.take().unwrap()).collect())
        }
    })
    .await
}

/// Served over https at the origin's root, every cookie is `__Host-` prefixed (RFC
/// 6265bis §4.1.3.2: `Secure`, `Path=/`, no `Domain`), so a sibling subdomain or a
/// plain-http page cannot plant one; the whole browser flow works with them, and a
/// cookie of the unprefixed name is not taken for the session or the CSRF token.
#[tokio::test]
async fn cookies_are_host_prefixed_over_https_at_the_root() {
    let app = TestApp::spawn_as_https("").await;
    let r = app.http.get(app.url("/login")).send().await.unwrap();
    let set: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(!set.is_empty());
    for c in &set {
        assert!(c.starts_with("__Host-mcpgate_"), "{c}");
        assert!(c.contains("; Secure") && c.contains("; Path=/;"), "{c}");
        assert!(!c.to_ascii_lowercase().contains("domain="), "{c}");
    }
    // The whole flow: sign-in, consent, code, tokens.
    let client_id = app.register(REDIRECT).await;
    let verifier = pkce_verifier();
    let code = app
        .code_for(&client_id, &pkce::challenge_of(&verifier), None, None)
        .await;
    let r = app.exchange(&client_id, &code, &verifier).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let mut b = Browser::new(&app);
    assert_eq!(b.login("alice", PASSWORD).await.status(), 303);
    assert!(b.cookies.contains_key("__Host-mcpgate_session"));
    assert!(!b.cookies.contains_key("mcpgate_session"));
    assert_eq!(b.get("/apps").await.status(), 200, "the session works");
    // The same values under the unprefixed names (as a sibling subdomain could set
    // them) are nobody's session and no CSRF token.
    let planted: std::collections::HashMap<String, String> = b
        .cookies
        .iter()
        .map(|(k, v)| (k.trim_start_matches("__Host-").to_owned(), v.clone()))
        .collect();
    b.cookies = planted;
    assert_eq!(b.get("/apps").await.status(), 303, "signed out");
    let csrf = b.cookies["mcpgate_csrf"].clone();
    let r = b
        .post(
            "/login",
            &[
                ("csrf", &csrf),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status(), 403, "an unprefixed CSRF cookie is no token");
}

/// Over plain http, or under a path (whose cookies are scoped to it, which the prefix
/// forbids), the names stay unprefixed.
#[tokio::test]
async fn cookies_keep_their_names_over_http_or_under_a_path() {
    for app in [
        TestApp::spawn().await,
        TestApp::spawn_as_https("/oauth/2.1").await,
    ] {
        let r = app.http.get(app.url("/login")).send().await.unwrap();
        let c = r.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(c.starts_with("mcpgate_csrf="), "{}: {c}", app.public);
        let mut b = Browser::new(&app);
        assert_eq!(b.login("alice", PASSWORD).await.status(), 303);
        assert!(b.cookies.contains_key("mcpgate_session"), "{}", app.public);
        assert_eq!(b.get("/apps").await.status(), 200);
    }
}
