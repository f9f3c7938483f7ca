//! Rendering pages, error pages and redirects; [`PageError`], the HTML side's one
//! error type.

use askama::Template;
use axum::response::{Html, IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use mcpgate_domain::StoreError;

/// Renders a template as a page, setting the CSRF cookie when needed.
pub fn render<T: Template>(
    t: &T,
    status: StatusCode,
    csrf_cookie: Option<HeaderValue>,
) -> Response {
    match t.render() {
        Ok(body) => {
            let mut resp = (status, Html(body)).into_response();
            if let Some(c) = csrf_cookie {
                resp.headers_mut().append(header::SET_COOKIE, c);
            }
            resp
        }
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub title: &'a str,
    pub message: &'a str,
}

/// An error page: the way to report an authorization error that must not redirect.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    render(&ErrorPage { title, message }, status, None)
}

pub fn csrf_failure() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "This form has expired",
        "The form was not submitted from this site, or it is too old. Reload the page and try again.",
    )
}

/// A 303 to `location` (a POST answered with a redirect becomes a GET).
pub fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (StatusCode::SEE_OTHER, [(header::LOCATION, v)]).into_response(),
        Err(_) => error_page(
            StatusCode::BAD_REQUEST,
            "Bad redirect",
            "The redirect address is not valid.",
        ),
    }
}

/// Why a page could not be made. Its response is an error page: a failure never
/// shows as an empty list or as "signed out". The cause goes to the log, not the page.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Flow(mcpgate_core::OAuthError),
}

impl From<crate::error::ApiError> for PageError {
    fn from(e: crate::error::ApiError) -> Self {
        Self::Flow(e.error)
    }
}

impl From<mcpgate_core::OAuthError> for PageError {
    fn from(e: mcpgate_core::OAuthError) -> Self {
        Self::Flow(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            // The person's input was wrong: say why (400).
            Self::Flow(e) if e.code != mcpgate_core::ErrorCode::ServerError => {
                error_page(StatusCode::BAD_REQUEST, "Not done", &e.description)
            }
            // The server was: a generic page, the cause logged once (500).
            e => {
                tracing::error!(error = ?e, "page failed");
                error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "Nothing is shown rather than a partial or empty page, and nothing was changed, or not all of it. Try again in a moment.",
                )
            }
        }
    }
}

/// What a page handler returns: its page, or an error page.
pub type PageResult = Result<Response, PageError>;
