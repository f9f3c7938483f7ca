//! Signing in and out: the forms, and the domain's flow
//! ([`mcpgate_domain::flows::sign_in`]: the per-account throttle, the lock policy, the
//! disabled check, the audit). The edge adds what is about addresses and this process:
//! a per-source limit on attempts (generous: people behind one address share it), and
//! a bound on password hashes computed at once.

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode, header};
use mcpgate_domain::audit::Event;
use mcpgate_domain::flows::sign_in::{self, SignInRefusal};
use serde::Deserialize;

use crate::limits::{self, Source};
use crate::pages::{self, Anyone, FormToken, MaybeSignedIn, Posted};
use crate::state::AuthServer;

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

async fn home(MaybeSignedIn(user): MaybeSignedIn) -> Response {
    match user {
        Some(_) => pages::see_other("/apps"),
        None => pages::see_other("/login"),
    }
}

async fn form(
    State(s): State<AuthServer>,
    MaybeSignedIn(user): MaybeSignedIn,
    FormToken(csrf): FormToken,
    Query(q): Query<NextQuery>,
) -> Response {
    let next = pages::safe_next(&s.cfg.rules.issuer, q.next.as_deref());
    if user.is_some() {
        return pages::see_other(&next);
    }
    pages::render(
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
    )
}

async fn submit(
    State(s): State<AuthServer>,
    source: Source,
    FormToken(csrf): FormToken,
    Posted { form: f, .. }: Posted<Anyone>,
) -> Response {
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
    // Counted before the password is checked (so concurrent guesses cannot race it)
    // and refunded on success: the per-source limit is on failures.
    let source_hit = match limits::hit(&s, "login", source, s.cfg.login_per_source_per_minute).await
    {
        Ok(h) => h,
        Err(l) => {
            sign_in::count_sign_in("throttled");
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
    match sign_in::with_password(&s.auth, username, password).await {
        Ok(u) => {
            limits::refund(&s, source_hit).await;
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
        Err(SignInRefusal::Invalid) => {
            page(StatusCode::UNAUTHORIZED, "Invalid username or password.")
        }
        Err(SignInRefusal::Locked { retry_after }) => limits::with_retry_after(
            page(
                StatusCode::TOO_MANY_REQUESTS,
                &format!(
                    "Too many failed attempts for this account. Try again in {retry_after} seconds."
                ),
            ),
            retry_after,
        ),
        Err(SignInRefusal::Unavailable(e)) => {
            tracing::error!(error = ?e, "password sign-in failed");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in is unavailable right now. Try again later.",
            )
        }
    }
}

/// Signs a user in, whichever way they proved who they are: a new session (the
/// domain's [`sign_in::open_session`], which records how), its cookie, and a
/// redirect to `next`. `None` when the session cannot be stored.
pub(crate) async fn open_session(
    s: &AuthServer,
    user_id: &str,
    next: &str,
    login: Event,
) -> Option<Response> {
    let sid = sign_in::open_session(&s.auth, user_id, s.cfg.session_ttl_secs, login)
        .await
        .ok()?;
    let mut resp = pages::see_other(next);
    resp.headers_mut().append(
        header::SET_COOKIE,
        pages::Jar::Session.set(&s.cfg, sid.expose(), s.cfg.session_ttl_secs, "Lax"),
    );
    Some(resp)
}

async fn logout(State(s): State<AuthServer>, headers: HeaderMap, _: Posted<Anyone>) -> Response {
    if let Some(id) = pages::Jar::Session.read(&s.cfg, &headers) {
        let _ = sign_in::end_session(&s.auth, &id).await;
    }
    let mut resp = pages::see_other("/login").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        pages::Jar::Session.set(&s.cfg, "x", 0, "Lax"),
    );
    resp
}
