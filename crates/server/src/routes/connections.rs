//! `/connections/{upstream}`: where a person gives their own token for an upstream that
//! wants one (connected accounts). A URL elicitation from the gateway leads here with a
//! `request` bound to the person who made the call and good once; the connected-apps
//! page leads here without one. The token is never shown back, and
//! `/connections/{upstream}/disconnect` removes it.
//!
//! For an upstream reached through its own sign-in (`credentials = "oauth"`), the page
//! sends the person there instead; `/connections/callback` is where they come back
//! (one redirect URI for every upstream), and `/connections/client` is mcpgate's Client
//! ID Metadata Document.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use http::StatusCode;
use mcpgate_domain::Actor;
use serde::Deserialize;

use crate::flows::connections::{self, NotYours};
use crate::flows::upstream_oauth::{self, Callback, ConnectError};
use crate::pages::{self, FormToken, PageResult, Posted, SignedIn};
use crate::state::AuthServer;

pub fn router() -> Router<AuthServer> {
    Router::new()
        .route("/connections/callback", get(callback))
        .route("/connections/client/{upstream}", get(client_document))
        .route("/connections/{upstream}", get(show).post(give))
        .route("/connections/{upstream}/disconnect", post(disconnect))
}

#[derive(Template)]
#[template(path = "connect.html")]
struct ConnectPage<'a> {
    csrf: &'a str,
    username: &'a str,
    is_admin: bool,
    upstream: &'a str,
    label: &'a str,
    request: Option<&'a str>,
    sign_in: bool,
}

#[derive(Deserialize)]
struct Req {
    request: Option<String>,
}

fn refused(e: NotYours) -> axum::response::Response {
    let status = match e {
        NotYours::Spent => StatusCode::GONE,
        NotYours::Other => StatusCode::FORBIDDEN,
    };
    pages::error_page(status, "This link cannot be used", &e.to_string())
}

fn not_found() -> axum::response::Response {
    pages::error_page(
        StatusCode::NOT_FOUND,
        "Not found",
        "No server here takes your own account.",
    )
}

async fn show(
    State(s): State<AuthServer>,
    Path(upstream): Path<String>,
    Query(q): Query<Req>,
    SignedIn(user): SignedIn,
    FormToken(csrf): FormToken,
) -> PageResult {
    let Some(label) = connections::label(&s.auth, &upstream) else {
        return Ok(not_found());
    };
    if let Err(e) = connections::pending(&s.auth, q.request.as_deref(), &user.id, &upstream).await?
    {
        return Ok(refused(e));
    }
    let mut page = pages::render(
        &ConnectPage {
            csrf: &csrf.token,
            username: &user.username,
            is_admin: user.is_admin,
            upstream: &upstream,
            label,
            request: q.request.as_deref(),
            sign_in: connections::through_sign_in(&s.auth, &upstream),
        },
        StatusCode::OK,
        csrf.set_cookie,
    );
    // The form redirects to the upstream's sign-in; browsers check that redirect
    // against the page's `form-action`.
    if let Some(to) = upstream_oauth::sign_in_at(&s.auth, &upstream).await
        && let Ok(u) = url::Url::parse(&to)
        && let Ok(v) = http::HeaderValue::from_str(&pages::csp(&u.origin().ascii_serialization()))
    {
        page.headers_mut()
            .insert(http::header::CONTENT_SECURITY_POLICY, v);
    }
    Ok(page)
}

async fn give(
    State(s): State<AuthServer>,
    Path(upstream): Path<String>,
    Posted {
        who: SignedIn(user),
        form: f,
    }: Posted<SignedIn>,
) -> PageResult {
    if connections::label(&s.auth, &upstream).is_none() {
        return Ok(not_found());
    }
    let request = f.get("request").filter(|r| !r.is_empty());
    if connections::through_sign_in(&s.auth, &upstream) {
        return match upstream_oauth::start(&s.auth, request, &user.id, &upstream).await {
            Ok(to) => Ok(pages::see_other(&to)),
            Err(e) => failed(e),
        };
    }
    let token = f.get("token").unwrap_or("");
    match connections::connect(&s.auth, request, &user.id, &upstream, token).await {
        Ok(Ok(())) => Ok(pages::error_page(
            StatusCode::OK,
            "Connected",
            &format!(
                "Your account at {upstream} is connected. Go back to your application and try again."
            ),
        )),
        Ok(Err(e)) => Ok(refused(e)),
        Err(e) if e.code == mcpgate_core::ErrorCode::InvalidRequest => Ok(pages::error_page(
            StatusCode::BAD_REQUEST,
            "Not a token",
            &e.description,
        )),
        Err(e) => Err(e.into()),
    }
}

async fn disconnect(
    State(s): State<AuthServer>,
    Path(upstream): Path<String>,
    Posted {
        who: SignedIn(user),
        form: _,
    }: Posted<SignedIn>,
) -> PageResult {
    connections::disconnect(
        &s.auth,
        &user.id,
        &upstream,
        &Actor::Person(user.id.clone()),
    )
    .await?;
    Ok(pages::see_other("/apps"))
}

/// A connection that could not be made, as a page (never a redirect).
fn failed(e: ConnectError) -> PageResult {
    match e {
        ConnectError::NotYours(e) => Ok(refused(e)),
        ConnectError::Store(e) => Err(mcpgate_core::OAuthError::from(e).into()),
        ConnectError::Upstream { upstream, why } => {
            // What went wrong where is the operator's (the log), not a probe for
            // whoever opens the page.
            tracing::warn!(upstream, why, "a connection failed");
            Ok(pages::error_page(
                StatusCode::BAD_GATEWAY,
                "Not connected",
                &format!(
                    "{upstream} could not be reached to connect your account. Try again later; the operator's log says why."
                ),
            ))
        }
        e @ ConnectError::Refused { .. } => {
            tracing::info!(error = %e, "a connection was refused");
            Ok(pages::error_page(
                StatusCode::BAD_GATEWAY,
                "Not connected",
                &e.to_string(),
            ))
        }
    }
}

#[derive(Deserialize)]
struct Back {
    upstream: Option<String>,
    state: Option<String>,
    code: Option<String>,
    iss: Option<String>,
    error: Option<String>,
}

/// Where an upstream's sign-in sends the person back (RFC 6749 §4.1.2): their tokens
/// are fetched and kept, if the attempt is this signed-in person's own.
async fn callback(
    State(s): State<AuthServer>,
    Query(q): Query<Back>,
    SignedIn(user): SignedIn,
) -> PageResult {
    let cb = Callback {
        upstream: q.upstream,
        state: q.state,
        code: q.code,
        iss: q.iss,
        error: q.error,
    };
    match upstream_oauth::finish(&s.auth, &user.id, cb).await {
        Ok(upstream) => Ok(pages::error_page(
            StatusCode::OK,
            "Connected",
            &format!(
                "Your account at {upstream} is connected. Go back to your application and try again."
            ),
        )),
        Err(e) => failed(e),
    }
}

/// mcpgate's Client ID Metadata Document toward `upstream`, for upstreams that take
/// one as `client_id`.
async fn client_document(
    State(s): State<AuthServer>,
    Path(upstream): Path<String>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match upstream_oauth::metadata_document(&s.auth, &upstream) {
        Some(doc) => (
            [(http::header::CACHE_CONTROL, "max-age=3600")],
            axum::Json(doc),
        )
            .into_response(),
        None => not_found(),
    }
}
