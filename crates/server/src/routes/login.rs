//! Signing in and out. Failed sign-ins slow down per account name, with the same
//! message for an unknown name and a wrong password; each attempt is reserved (counted)
//! atomically before the password is checked, so concurrent guesses cannot all pass a
//! check made before any of them failed. Beside it, a per-source limit on attempts
//! (generous: people behind one address share it), and a bound on password hashes
//! computed at once.

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode, header};
use mcpgate_core::secret::{Secret, hash_token};
use mcpgate_domain::audit::Event;
use serde::Deserialize;

use crate::forms::Form;
use crate::limits::{self, Source};
use crate::pages::{self, PageResult, passwords};
use crate::state::AuthServer;
use mcpgate_domain::model::Reservation;

/// Failures allowed before each further attempt must wait.
const FREE_FAILURES: i64 = 5;
/// Longest wait, in seconds.
const MAX_LOCK_SECS: i64 = 900;

pub fn router() -> Router<AuthServer> {
    Router::new()
        .route("/login", get(form).post(submit))
        .route("/logout", post(logout))
        .route("/", get(home))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    csrf: &'a str,
    next: &'a str,
    username: &'a str,
    error: Option<&'a str>,
    /// Whether the username and password form is offered.
    password_login: bool,
    /// "Continue with …" buttons: (link, display name).
    providers: Vec<(String, String)>,
}

/// The sign-in buttons of the identity providers, each a link that starts the sign-in
/// and comes back to `next`.
async fn provider_buttons(s: &AuthServer, next: &str) -> Vec<(String, String)> {
    let next_q: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
    s.idps
        .all(s.auth.store.as_ref())
        .await
        .into_iter()
        .map(|p| {
            (
                format!("/login/idp/{}?next={next_q}", p.name),
                p.display_name,
            )
        })
        .collect()
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

async fn home(State(s): State<AuthServer>, headers: HeaderMap) -> PageResult {
    Ok(match pages::current_user(&s, &headers).await? {
        Some(_) => pages::see_other("/apps"),
        None => pages::see_other("/login"),
    })
}

async fn form(
    State(s): State<AuthServer>,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> PageResult {
    let next = pages::safe_next(&s.cfg.rules.issuer, q.next.as_deref());
    if pages::current_user(&s, &headers).await?.is_some() {
        return Ok(pages::see_other(&next));
    }
    let csrf = pages::csrf(&s, &headers);
    Ok(pages::render(
        &LoginPage {
            csrf: &csrf.token,
            next: &next,
            username: "",
            error: None,
            password_login: s.cfg.password_login,
            providers: provider_buttons(&s, &next).await,
        },
        StatusCode::OK,
        csrf.set_cookie,
    ))
}

/// The lock after the n-th counted failure: doubling from 2 s, at most 15 minutes.
fn lock_after(n: i64) -> i64 {
    if n > FREE_FAILURES {
        (1i64 << (n - FREE_FAILURES).min(10)).min(MAX_LOCK_SECS)
    } else {
        0
    }
}

/// Counts a password sign-in in `mcpgate_sign_ins_total` (ok, failed, throttled).
fn sign_ins(outcome: &'static str) {
    metrics::counter!("mcpgate_sign_ins_total", "outcome" => outcome).increment(1);
}

async fn submit(
    State(s): State<AuthServer>,
    source: Source,
    headers: HeaderMap,
    Form(f): Form,
) -> Response {
    if !pages::csrf_ok(&s, &headers, &f) {
        return pages::csrf_failure();
    }
    let next = pages::safe_next(&s.cfg.rules.issuer, f.get("next"));
    if !s.cfg.password_login {
        return pages::error_page(
            StatusCode::FORBIDDEN,
            "Password sign-in is off",
            "Sign in with one of the identity providers on the sign-in page.",
        );
    }
    let username = f.get("username").unwrap_or("").trim();
    let password = f.get("password").unwrap_or("");
    let csrf = pages::csrf(&s, &headers);
    let providers = provider_buttons(&s, &next).await;
    let page = |status, error: &str| {
        pages::render(
            &LoginPage {
                csrf: &csrf.token,
                next: &next,
                username,
                error: Some(error),
                password_login: true,
                providers: providers.clone(),
            },
            status,
            None,
        )
    };
    if username.is_empty() || username.len() > 128 || password.len() > passwords::MAX_PASSWORD_LEN {
        sign_ins("failed");
        return page(StatusCode::UNAUTHORIZED, "Invalid username or password.");
    }
    // Counted before the password is checked (so concurrent guesses cannot race it)
    // and refunded on success: the per-source limit is on failures.
    let source_hit = match limits::hit(&s, "login", source, s.cfg.login_per_source_per_minute).await
    {
        Ok(h) => h,
        Err(l) => {
            sign_ins("throttled");
            return limits::with_retry_after(
                page(
                    StatusCode::TOO_MANY_REQUESTS,
                    &format!(
                        "Too many sign-in attempts from your address. Try again in {} seconds.",
                        l.retry_after
                    ),
                ),
                l.retry_after,
            );
        }
    };
    // Bound the hashes computed at once before reserving anything.
    let Ok(_permit) = s.cfg.hash_slots.clone().try_acquire_owned() else {
        return limits::with_retry_after(
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in is busy right now. Try again in a moment.",
            ),
            1,
        );
    };
    let key = username.to_lowercase();
    let now = s.auth.now();
    match s
        .auth
        .store
        .reserve_login_attempt(&key, now, FREE_FAILURES, lock_after)
        .await
    {
        Ok(Reservation::Granted) => {}
        Ok(Reservation::LockedUntil(until)) => {
            sign_ins("throttled");
            return limits::with_retry_after(
                page(
                    StatusCode::TOO_MANY_REQUESTS,
                    &format!(
                        "Too many failed attempts for this account. Try again in {} seconds.",
                        until - now
                    ),
                ),
                until - now,
            );
        }
        Err(_) => {
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in is unavailable right now. Try again later.",
            );
        }
    }
    let user = match s.auth.store.user_by_name(username).await {
        Ok(user) => user,
        // Not "wrong password": the person's password may be right.
        Err(_) => {
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in is unavailable right now. Try again later.",
            );
        }
    };
    let ok = passwords::verify(
        password.to_owned(),
        user.as_ref().map(|u| u.password_hash.clone()),
    )
    .await;
    match user.filter(|u| ok && !u.disabled) {
        Some(u) => {
            let _ = s.auth.store.clear_login_throttle(&key).await;
            limits::refund(&s, source_hit).await;
            sign_ins("ok");
            let login = Event::LoginSucceeded {
                provider: None,
                subject: None,
                email: None,
            };
            match open_session(&s, &u.id, &next, login).await {
                Some(resp) => resp,
                None => page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Sign-in is unavailable right now. Try again later.",
                ),
            }
        }
        None => {
            sign_ins("failed");
            // The reservation already counted this failure.
            s.auth
                .audit(
                    Event::LoginFailed {
                        username: username.chars().take(64).collect(),
                    },
                    None,
                    None,
                )
                .await;
            page(StatusCode::UNAUTHORIZED, "Invalid username or password.")
        }
    }
}

/// Signs a user in, whichever way they proved who they are: a new session, its cookie,
/// the audit event, and a redirect to `next`. `None` when the session cannot be stored.
pub(crate) async fn open_session(
    s: &AuthServer,
    user_id: &str,
    next: &str,
    login: Event,
) -> Option<Response> {
    let now = s.auth.now();
    let sid = Secret::generate();
    s.auth
        .store
        .insert_session(&sid.hash(), user_id, now, now + s.cfg.session_ttl_secs)
        .await
        .ok()?;
    s.auth.audit(login, Some(user_id), None).await;
    let mut resp = pages::see_other(next);
    resp.headers_mut().append(
        header::SET_COOKIE,
        pages::Jar::Session.set(&s.cfg, sid.expose(), s.cfg.session_ttl_secs, "Lax"),
    );
    Some(resp)
}

async fn logout(State(s): State<AuthServer>, headers: HeaderMap, Form(f): Form) -> Response {
    if !pages::csrf_ok(&s, &headers, &f) {
        return pages::csrf_failure();
    }
    if let Some(id) = pages::Jar::Session.read(&s.cfg, &headers) {
        let _ = s.auth.store.delete_session(&hash_token(&id)).await;
    }
    let mut resp = pages::see_other("/login").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        pages::Jar::Session.set(&s.cfg, "x", 0, "Lax"),
    );
    resp
}
