//! `/connections/{upstream}`: where a person gives their own token for an upstream that
//! wants one (connected accounts). A URL elicitation from the gateway leads here with a
//! `request` bound to the person who made the call and good once; the connected-apps
//! page leads here without one. The token is never shown back, and
//! `/connections/{upstream}/disconnect` removes it.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use http::StatusCode;
use mcpgate_domain::Actor;
use serde::Deserialize;

use crate::flows::connections::{self, NotYours};
use crate::pages::{self, FormToken, PageResult, Posted, SignedIn};
use crate::state::AuthServer;

pub fn router() -> Router<AuthServer> {
    Router::new()
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
    Ok(pages::render(
        &ConnectPage {
            csrf: &csrf.token,
            username: &user.username,
            is_admin: user.is_admin,
            upstream: &upstream,
            label,
            request: q.request.as_deref(),
        },
        StatusCode::OK,
        csrf.set_cookie,
    ))
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
