//! `POST /introspect` (RFC 7662): for clients holding introspection credentials.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use http::{HeaderMap, header};

use crate::client_auth;
use crate::error::{ApiError, ApiResult};
use crate::flows::{self, introspect};
use crate::forms::Form;
use crate::state::AuthServer;

pub fn router() -> Router<AuthServer> {
    Router::new().route("/introspect", post(handle))
}

async fn handle(
    State(s): State<AuthServer>,
    headers: HeaderMap,
    Form(f): Form,
) -> ApiResult<Response> {
    let client = client_auth::authenticate(&s, &headers, &f).await?;
    flows::client_auth::may_introspect(&client).map_err(|error| ApiError { error, basic: true })?;
    let token = f.require("token")?;
    let answer = introspect::introspect(&s.auth, token, &client.client_id).await?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(answer)).into_response())
}
