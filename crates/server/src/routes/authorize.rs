//! `GET /authorize`: validates the request, then hands over to consent.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use http::StatusCode;

use crate::flows::authorize::{self, AuthorizeError};
use crate::forms::Params;
use crate::pages;
use crate::state::AuthServer;

pub fn router() -> Router<AuthServer> {
    Router::new().route("/authorize", get(handle))
}

async fn handle(State(s): State<AuthServer>, RawQuery(q): RawQuery) -> Response {
    let q = q.unwrap_or_default();
    if q.len() > 8192 {
        return pages::error_page(
            StatusCode::BAD_REQUEST,
            "Request too large",
            "The authorization request is too large.",
        );
    }
    let params = match Params::parse(q.as_bytes()) {
        Ok(p) => p,
        Err(e) => {
            return pages::error_page(StatusCode::BAD_REQUEST, "Invalid request", &e.description);
        }
    };
    match authorize::validate(&s, &params).await {
        Ok(id) => pages::see_other(&format!("/consent?request={id}")),
        Err(e) => respond_error(&s, e),
    }
}

pub fn respond_error(s: &AuthServer, e: AuthorizeError) -> Response {
    match e {
        AuthorizeError::Page(msg) => pages::error_page(
            StatusCode::BAD_REQUEST,
            "This request cannot be completed",
            &msg,
        ),
        AuthorizeError::Redirect {
            redirect_uri,
            state,
            error,
        } => pages::see_other(&authorize::error_redirect(
            &s.cfg.issuer,
            &redirect_uri,
            state.as_deref(),
            &error,
        )),
    }
}
