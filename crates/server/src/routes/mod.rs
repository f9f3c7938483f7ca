//! The authorization server's endpoints, one module each.

mod admin;
mod apps;
mod authorize;
mod clients;
mod connections;
mod consent;
mod idp;
mod introspect;
mod login;
mod metadata;
pub mod ready;
mod register;
mod revoke;
mod token;

use axum::Router;
use axum::routing::get;
use http::header;

use crate::pages;
use crate::state::AuthServer;

pub use metadata::discovery;

/// Every route of the authorization server, with the page security headers, written
/// as if served at the root: [`crate::mount::under`] moves them under the issuer's
/// path, and [`discovery`] adds the metadata URLs that live at the origin.
pub fn router(s: AuthServer) -> Router {
    // Browser-based clients (an inspector page, a single-page app) call these from
    // their own origin. They take no cookies, so any origin may call them
    // (credentials are never allowed cross-origin).
    let api = Router::new()
        .merge(metadata::router())
        .merge(register::router())
        .merge(token::router())
        .merge(revoke::router())
        .layer(
            tower_http::cors::CorsLayer::new()
                .allow_origin(tower_http::cors::Any)
                .allow_methods([http::Method::GET, http::Method::POST])
                .allow_headers([
                    header::CONTENT_TYPE,
                    header::AUTHORIZATION,
                    http::HeaderName::from_static("mcp-protocol-version"),
                ])
                .max_age(std::time::Duration::from_secs(600)),
        );
    Router::new()
        .merge(api)
        .merge(authorize::router())
        .merge(consent::router())
        .merge(login::router())
        .merge(idp::router())
        .merge(introspect::router())
        .merge(apps::router())
        .merge(connections::router())
        .merge(clients::router())
        .merge(admin::router())
        .merge(ready::router())
        .route(
            "/assets/style.css",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/css"),
                        (header::CACHE_CONTROL, "public, max-age=3600"),
                    ],
                    include_str!("../../assets/style.css"),
                )
            }),
        )
        .layer(axum::middleware::from_fn(pages::security_headers))
        .with_state(s)
}
