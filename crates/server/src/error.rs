//! The one place OAuth errors become HTTP responses (RFC 6749 §5.2, RFC 7591 §3.2.2,
//! RFC 7009 §2.2.1). Internal errors are logged here, once, and never shown.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use mcpgate_core::{ErrorCode, OAuthError};
use serde_json::json;

/// An OAuth error on a JSON endpoint. `basic` marks a failed HTTP Basic client
/// authentication, which RFC 6749 §5.2 answers with 401 and a challenge.
#[derive(Debug)]
pub struct ApiError {
    pub error: OAuthError,
    pub basic: bool,
}

impl From<OAuthError> for ApiError {
    fn from(error: OAuthError) -> Self {
        Self {
            error,
            basic: false,
        }
    }
}

impl From<mcpgate_domain::StoreError> for ApiError {
    fn from(e: mcpgate_domain::StoreError) -> Self {
        OAuthError::from(e).into()
    }
}

pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidClient | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
        ErrorCode::InsufficientScope => StatusCode::FORBIDDEN,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = &self.error;
        if e.code == ErrorCode::ServerError {
            tracing::error!(error = ?e.source, "internal error");
        }
        let body = json!({ "error": e.code.as_str(), "error_description": e.description });
        let mut resp = (status_of(e.code), Json(body)).into_response();
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if e.code == ErrorCode::InvalidClient && self.basic {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Basic realm="mcpgate""#),
            );
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
