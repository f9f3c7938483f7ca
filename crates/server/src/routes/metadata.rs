//! Authorization server metadata (RFC 8414) and the public keys (RFC 7517).
//! Advertises what is implemented and nothing more.

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use http::header;
use serde_json::json;

use crate::flows::authorize::known_scopes;
use crate::state::AuthServer;

pub fn router() -> Router<AuthServer> {
    Router::new()
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .route("/jwks.json", get(jwks))
}

async fn metadata(State(s): State<AuthServer>) -> impl IntoResponse {
    let scopes: Vec<String> = known_scopes(&s).await.iter().map(String::from).collect();
    let doc = json!({
        "issuer": s.cfg.issuer,
        "authorization_endpoint": s.cfg.endpoint("/authorize"),
        "token_endpoint": s.cfg.endpoint("/token"),
        "registration_endpoint": s.cfg.endpoint("/register"),
        "introspection_endpoint": s.cfg.endpoint("/introspect"),
        "revocation_endpoint": s.cfg.endpoint("/revoke"),
        "jwks_uri": s.cfg.endpoint("/jwks.json"),
        "scopes_supported": scopes,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": true,
    });
    (
        [
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        Json(doc),
    )
}

async fn jwks(State(s): State<AuthServer>) -> impl IntoResponse {
    (
        [
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        Json(s.keys.jwks()),
    )
}
