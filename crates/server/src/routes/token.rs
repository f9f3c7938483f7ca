//! `POST /token` (OAuth 2.1 §3.2): client authentication, then the grant.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use http::{HeaderMap, header};
use mcpgate_core::{ErrorCode, OAuthError};

use crate::client_auth;
use crate::error::ApiResult;
use crate::flows::authorization_code::{self, CodeExchange};
use crate::flows::client_credentials::{self, CredentialsRequest};
use crate::flows::id_jag::{self, JwtBearerRequest};
use crate::flows::refresh::{self, RefreshRequest};
use crate::flows::token_exchange::{self, ExchangeRequest};
use crate::forms::Form;
use crate::limits::{self, Source};
use crate::state::AuthServer;

pub fn router() -> Router<AuthServer> {
    Router::new().route("/token", post(handle))
}

async fn handle(
    State(s): State<AuthServer>,
    source: Source,
    headers: HeaderMap,
    Form(f): Form,
) -> ApiResult<Response> {
    if let Err(l) = limits::hit(&s, "token", source, s.cfg.token_per_source_per_minute).await {
        return Ok(l.into_response());
    }
    let grant_type = f.require("grant_type")?;
    if !matches!(
        grant_type,
        "authorization_code"
            | "refresh_token"
            | "client_credentials"
            | id_jag::GRANT_TYPE
            | token_exchange::GRANT_TYPE
    ) {
        return Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            format!(
                "supported: authorization_code, refresh_token, client_credentials, {}, {}",
                id_jag::GRANT_TYPE,
                token_exchange::GRANT_TYPE
            ),
        )
        .into());
    }
    let client = client_auth::authenticate(&s, &headers, &f).await?;
    let jkt = match crate::dpop::token_proof(&s, &headers).await {
        Ok(k) => k,
        Err(refused) => return Ok(refused),
    };
    let dpop_jkt = jkt.as_deref();
    let answer = match grant_type {
        "client_credentials" => {
            let req = CredentialsRequest {
                scope: f.get("scope"),
                resource: f.get("resource"),
                dpop_jkt,
            };
            client_credentials::grant(&s.auth, &client, req).await?
        }
        token_exchange::GRANT_TYPE => {
            let req = ExchangeRequest {
                subject_token: f.require("subject_token")?,
                subject_token_type: f.require("subject_token_type")?,
                requested_token_type: f.get("requested_token_type"),
                actor_token: f.get("actor_token"),
                resource: f.get("resource"),
                scope: f.get("scope"),
                dpop_jkt,
            };
            token_exchange::grant(&s.auth, &client, req).await?
        }
        id_jag::GRANT_TYPE => {
            let req = JwtBearerRequest {
                assertion: f.require("assertion")?,
                scope: f.get("scope"),
                resource: f.get("resource"),
                dpop_jkt,
            };
            id_jag::grant(&s.auth, &client, req).await?
        }
        "authorization_code" => {
            let req = CodeExchange {
                code: f.require("code")?,
                redirect_uri: f.require("redirect_uri")?,
                code_verifier: f.require("code_verifier")?,
                resource: f.get("resource"),
                dpop_jkt,
            };
            authorization_code::exchange(&s.auth, &client, req).await?
        }
        _ => {
            let req = RefreshRequest {
                refresh_token: f.require("refresh_token")?,
                scope: f.get("scope"),
                resource: f.get("resource"),
                dpop_jkt,
            };
            refresh::refresh(&s.auth, &client, req).await?
        }
    };
    let label = match grant_type {
        "authorization_code" => "authorization_code",
        "refresh_token" => "refresh_token",
        "client_credentials" => "client_credentials",
        token_exchange::GRANT_TYPE => "token_exchange",
        _ => "jwt_bearer",
    };
    metrics::counter!("mcpgate_tokens_issued_total", "grant_type" => label).increment(1);
    Ok((
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        Json(answer),
    )
        .into_response())
}
