//! `POST /revoke` (RFC 7009).

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::{HeaderMap, StatusCode, header};

use crate::client_auth;
use crate::error::ApiResult;
use crate::flows::revoke;
use crate::forms::Form;
use crate::state::AuthServer;

pub fn router() -> Router<AuthServer> {
    Router::new().route("/revoke", post(handle))
}

async fn handle(
    State(s): State<AuthServer>,
    headers: HeaderMap,
    Form(f): Form,
) -> ApiResult<Response> {
    let client = client_auth::authenticate(&s, &headers, &f).await?;
    let token = f.require("token")?;
    revoke::revoke_token(&s.auth, &client, token).await?;
    Ok((StatusCode::OK, [(header::CACHE_CONTROL, "no-store")]).into_response())
}
