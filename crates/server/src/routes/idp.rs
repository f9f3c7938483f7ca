//! Sign-in through an upstream identity provider: `/login/idp/{name}` sends the browser
//! to the provider; `/login/idp/{name}/callback` takes it back.
//!
//! The sign-in under way is stored under the hash of its `state` and taken once (a
//! replayed or made-up `state` finds nothing), and bound to the browser that started it
//! by a cookie whose hash it keeps (a callback delivered to another browser, the "login
//! CSRF" of RFC 6749 §10.12, finds a different cookie). Every failure is a page that
//! says what happened, and opens no session.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use http::{HeaderMap, StatusCode, header};
use mcpgate_core::secret::{Secret, hash_token};
use mcpgate_domain::model::IdpLogin;
use serde::Deserialize;

use mcpgate_domain::audit::Event;
use mcpgate_domain::flows::admission::{self, NotAdmitted};

use crate::idp::{Identity, IdpError, IdpSettings};
use crate::limits::{self, Source};
use crate::pages;
use crate::routes::login::open_session;
use crate::state::AuthServer;

/// How long a person has to sign in at the provider.
const LOGIN_TTL_SECS: i64 = 600;

pub fn router() -> Router<AuthServer> {
    Router::new()
        .route("/login/idp/{name}", get(start))
        .route("/login/idp/{name}/callback", get(callback))
}

fn redirect_uri(s: &AuthServer, name: &str) -> String {
    s.cfg.rules.endpoint(&format!("/login/idp/{name}/callback"))
}

#[derive(Deserialize)]
struct StartQuery {
    next: Option<String>,
}

fn unavailable(name: &str) -> Response {
    pages::error_page(
        StatusCode::BAD_GATEWAY,
        "Sign-in is unavailable",
        &format!(
            "{name} cannot be reached right now, or is not set up correctly. Try again later."
        ),
    )
}

async fn start(
    State(s): State<AuthServer>,
    source: Source,
    Path(name): Path<String>,
    Query(q): Query<StartQuery>,
) -> Response {
    // Unauthenticated, and each start writes a pending sign-in (and may fetch the
    // provider's metadata): counted per source before anything else is done.
    let limit = s.cfg.idp_starts_per_source_per_minute;
    if let Err(l) = limits::hit(&s, "idp_start", source, limit).await {
        return l.page();
    }
    let Some(p) = s.idps.find(s.auth.store.as_ref(), &name).await else {
        return pages::error_page(
            StatusCode::NOT_FOUND,
            "Unknown sign-in provider",
            "This sign-in provider is not set up here.",
        );
    };
    let next = pages::safe_next(&s.cfg.rules.issuer, q.next.as_deref());
    let started = match s.idps.begin(&p, &redirect_uri(&s, &p.name)).await {
        Ok(x) => x,
        Err(e) => {
            tracing::warn!(provider = %p.name, error = %e, "identity provider sign-in could not start");
            return unavailable(&p.display_name);
        }
    };
    let browser = Secret::generate();
    let now = s.auth.now();
    let pending = IdpLogin {
        state_hash: started.state.hash(),
        provider: p.name.clone(),
        browser_hash: browser.hash(),
        nonce: started.nonce.expose().to_owned(),
        pkce_verifier: started.pkce_verifier.expose().to_owned(),
        next,
        created_at: now,
        expires_at: now + LOGIN_TTL_SECS,
    };
    if s.auth.store.insert_idp_login(&pending).await.is_err() {
        return unavailable("The sign-in service");
    }
    let mut resp = pages::see_other(&started.authorize_url);
    resp.headers_mut().append(
        header::SET_COOKIE,
        // Lax: the provider's redirect back is a top-level navigation from its site.
        pages::Jar::IdpBrowser.set(&s.cfg, browser.expose(), LOGIN_TTL_SECS, "Lax"),
    );
    resp
}

#[derive(Deserialize)]
struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

fn refused(title: &str, message: &str) -> Response {
    pages::error_page(StatusCode::FORBIDDEN, title, message)
}

async fn callback(
    State(s): State<AuthServer>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let now = s.auth.now();
    let Some(p) = s.idps.find(s.auth.store.as_ref(), &name).await else {
        return pages::error_page(
            StatusCode::NOT_FOUND,
            "Unknown sign-in provider",
            "This sign-in provider is not set up here.",
        );
    };
    let expired = || {
        pages::error_page(
            StatusCode::BAD_REQUEST,
            "This sign-in link has expired",
            "This sign-in was already completed, has expired, or was not started here. Start again from the sign-in page.",
        )
    };
    // Taken first, whatever the outcome: a state works once.
    let Some(state) = q.state.as_deref().filter(|v| v.len() <= 512) else {
        return expired();
    };
    let pending = match s.auth.store.take_idp_login(&hash_token(state), now).await {
        Ok(Some(l)) => l,
        Ok(None) => {
            admission::audit_refused(
                &s.auth,
                &p.name,
                "unknown or replayed state".into(),
                None,
                None,
            )
            .await;
            return expired();
        }
        Err(_) => return unavailable("The sign-in service"),
    };
    let same_browser = pages::Jar::IdpBrowser
        .read(&s.cfg, &headers)
        .is_some_and(|c| {
            mcpgate_core::secret::constant_time_eq(&hash_token(&c), &pending.browser_hash)
        });
    if pending.provider != p.name || !same_browser {
        let reason = "state of another browser or provider".into();
        admission::audit_refused(&s.auth, &p.name, reason, None, None).await;
        return refused(
            "This sign-in was started elsewhere",
            "This sign-in was not started in this browser. Start again from the sign-in page.",
        );
    }
    if let Some(error) = q.error.as_deref() {
        let description: String = q
            .error_description
            .as_deref()
            .unwrap_or("")
            .chars()
            .take(200)
            .collect();
        let code = Some(error.chars().take(64).collect());
        admission::audit_refused(&s.auth, &p.name, "provider error".into(), None, code).await;
        return if error == "access_denied" {
            refused(
                "Sign-in cancelled",
                &format!(
                    "The sign-in at {} was cancelled. You can start again from the sign-in page.",
                    p.display_name
                ),
            )
        } else {
            refused(
                "Sign-in failed",
                &format!(
                    "{} did not sign you in ({}{}{}).",
                    p.display_name,
                    error.chars().take(64).collect::<String>(),
                    if description.is_empty() { "" } else { ": " },
                    description
                ),
            )
        };
    }
    let Some(code) = q
        .code
        .as_deref()
        .filter(|c| !c.is_empty() && c.len() <= 2048)
    else {
        return refused(
            "Sign-in failed",
            &format!("{} sent no authorization code.", p.display_name),
        );
    };
    let identity = match s
        .idps
        .finish(
            &p,
            &redirect_uri(&s, &p.name),
            code,
            &pending.nonce,
            &pending.pkce_verifier,
        )
        .await
    {
        Ok(i) => i,
        Err(e) => {
            tracing::warn!(provider = %p.name, error = %e, "identity provider sign-in refused");
            let reason = e.to_string().chars().take(300).collect();
            admission::audit_refused(&s.auth, &p.name, reason, None, None).await;
            return match e {
                IdpError::Discovery(_) => unavailable(&p.display_name),
                _ => refused(
                    "Sign-in could not be verified",
                    &format!(
                        "The answer from {} could not be verified, so you are not signed in. Start again from the sign-in page.",
                        p.display_name
                    ),
                ),
            };
        }
    };
    admit_identity(&s, &p, identity, &pending.next).await
}

/// Admits the person the provider vouched for (the domain's rules: link, create or
/// refuse), then opens a session.
async fn admit_identity(s: &AuthServer, p: &IdpSettings, id: Identity, next: &str) -> Response {
    let user = match admission::admit(&s.auth, &p.trust(), &id).await {
        Ok(u) => u,
        Err(NotAdmitted::Refused(r)) => {
            let (title, message) = r.message(&p.display_name);
            return refused(title, &message);
        }
        Err(NotAdmitted::Unavailable(e)) => {
            tracing::error!(error = ?e, "admitting a provider's identity failed");
            return unavailable("The sign-in service");
        }
    };
    let detail = Event::LoginSucceeded {
        provider: Some(p.name.clone()),
        subject: Some(id.subject.clone()),
        email: id.email.clone(),
    };
    match open_session(s, &user.id, next, detail).await {
        Some(resp) => resp,
        None => unavailable("The sign-in service"),
    }
}
