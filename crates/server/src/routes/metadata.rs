//! Authorization server metadata (RFC 8414) and the public keys (RFC 7517).
//! Advertises what is implemented and nothing more.
//!
//! The one document is served at every well-known URL a client may derive from the
//! issuer (MCP "Authorization Server Metadata Discovery"): for an issuer with a path
//! `https://as/p`, RFC 8414 §3.1 inserts the path after the well-known prefix
//! (`/.well-known/oauth-authorization-server/p`, and the same for
//! `openid-configuration`, see [`discovery`]); OpenID Connect Discovery 1.0 §4 appends
//! it (`/p/.well-known/openid-configuration`, served by [`router`] under the base
//! path). For an issuer without a path they coincide. `issuer` is always the
//! configured string, exactly (RFC 8414 §3.3).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http::header;
use serde_json::json;

use crate::flows::authorize::known_scopes;
use crate::flows::{client_auth, id_jag, token_exchange};
use crate::state::AuthServer;

/// The documents relative to the issuer, served under its path.
pub fn router() -> Router<AuthServer> {
    Router::new()
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .route("/.well-known/openid-configuration", get(metadata))
        .route("/jwks.json", get(jwks))
}

/// The path-inserted forms at the origin, for an issuer with a path; empty otherwise
/// (the forms of [`router`] are the same URLs then).
pub fn discovery(s: AuthServer) -> Router {
    let base = crate::mount::base_path(&s.cfg.rules.issuer);
    if base.is_empty() {
        return Router::new();
    }
    Router::new()
        .route(
            &format!("/.well-known/oauth-authorization-server{base}"),
            get(metadata),
        )
        .route(
            &format!("/.well-known/openid-configuration{base}"),
            get(metadata),
        )
        .with_state(s)
}

async fn metadata(State(s): State<AuthServer>) -> Response {
    // A store failure is a 500, not a document that silently lists fewer scopes.
    let scopes: Vec<String> = match known_scopes(&s.auth).await {
        Ok(known) => known.iter().map(String::from).collect(),
        Err(e) => return crate::error::ApiError::from(e).into_response(),
    };
    let doc = json!({
        "issuer": s.cfg.rules.issuer,
        "authorization_endpoint": s.cfg.rules.endpoint("/authorize"),
        "token_endpoint": s.cfg.rules.endpoint("/token"),
        "registration_endpoint": s.cfg.rules.endpoint("/register"),
        "introspection_endpoint": s.cfg.rules.endpoint("/introspect"),
        "revocation_endpoint": s.cfg.rules.endpoint("/revoke"),
        "jwks_uri": s.cfg.rules.endpoint("/jwks.json"),
        "scopes_supported": scopes,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials", id_jag::GRANT_TYPE, token_exchange::GRANT_TYPE],
        // Enterprise-managed authorization (draft-ietf-oauth-identity-assertion-authz-grant
        // §7.2; the MCP extension's discovery, §6).
        "authorization_grant_profiles_supported": [id_jag::PROFILE],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post", "private_key_jwt"],
        // RFC 8414 §2: present whenever private_key_jwt is listed.
        "token_endpoint_auth_signing_alg_values_supported": client_auth::ASSERTION_ALGS,
        // RFC 9449 §5.1.
        "dpop_signing_alg_values_supported": mcpgate_core::dpop::ALGS,
        // Resource servers are created by the operator, with client_secret_basic (the
        // method they must use: RFC 7591 §2).
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic"],
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
        .into_response()
}

async fn jwks(State(s): State<AuthServer>) -> impl IntoResponse {
    (
        [
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        Json(s.auth.keys.jwks()),
    )
}
