//! `POST /register` (RFC 7591).

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use http::{StatusCode, header};
use mcpgate_core::{ErrorCode, OAuthError};

use crate::error::ApiError;
use crate::flows::register::{self, MAX_REGISTRATION_BYTES, RegistrationRequest};
use crate::forms::read_bounded;
use crate::limits::{self, Source};
use crate::state::AuthServer;

pub fn router() -> Router<AuthServer> {
    Router::new().route("/register", post(handle))
}

async fn handle(
    State(s): State<AuthServer>,
    source: Source,
    req: http::Request<Body>,
) -> Result<Response, ApiError> {
    if let Err(l) = limits::hit(&s, "register", source, s.cfg.register_per_source_per_minute).await
    {
        return Ok(l.into_response());
    }
    let json_ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if !json_ct {
        return Err(OAuthError::invalid_request("Content-Type must be application/json").into());
    }
    let (parts, body) = req.into_parts();
    let bytes = match read_bounded(&parts.headers, body, MAX_REGISTRATION_BYTES).await {
        Ok(b) => b,
        Err(too_large) => return Ok(too_large.into_response()),
    };
    let body: RegistrationRequest = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::from(OAuthError::new(
            ErrorCode::InvalidClientMetadata,
            format!("invalid registration JSON: {e}"),
        ))
    })?;
    let answer = register::register(&s.auth, body).await?;
    metrics::counter!("mcpgate_registrations_total").increment(1);
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        Json(answer),
    )
        .into_response())
}
