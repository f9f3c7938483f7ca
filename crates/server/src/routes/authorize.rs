//! `GET /authorize`: validates the request, then hands over to consent.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use http::StatusCode;

use crate::flows::authorize::{self, AuthorizeError, AuthorizeRequest};
use crate::flows::metadata_document::is_document_url;
use crate::forms::Params;
use crate::limits::{self, Source};
use crate::pages;
use crate::state::AuthServer;

pub fn router() -> Router<AuthServer> {
    Router::new().route("/authorize", get(handle))
}

async fn handle(State(s): State<AuthServer>, source: Source, RawQuery(q): RawQuery) -> Response {
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
    // A metadata-document client may make this server fetch a stranger's URL: such
    // requests are limited per source (answered with a page, never a redirect to a
    // redirect URI nobody has verified yet).
    if params.get("client_id").is_some_and(is_document_url)
        && let Err(l) = limits::hit(
            &s,
            "authorize_document",
            source,
            s.cfg.document_authorizations_per_source_per_minute,
        )
        .await
    {
        return l.page();
    }
    match authorize::validate(&s.auth, &request(&params)).await {
        Ok(id) => pages::see_other(&format!("/consent?request={id}")),
        Err(e) => respond_error(&s, e),
    }
}

/// The request's parameters, each at most once (the form parser refuses repeats).
fn request(p: &Params) -> AuthorizeRequest<'_> {
    AuthorizeRequest {
        client_id: p.get("client_id"),
        redirect_uri: p.get("redirect_uri"),
        response_type: p.get("response_type"),
        state: p.get("state"),
        code_challenge: p.get("code_challenge"),
        code_challenge_method: p.get("code_challenge_method"),
        resource: p.get("resource"),
        scope: p.get("scope"),
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
            &s.cfg.rules.issuer,
            &redirect_uri,
            state.as_deref(),
            &error,
        )),
    }
}
