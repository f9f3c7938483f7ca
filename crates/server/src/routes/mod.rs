//! The authorization server's endpoints, one module each.

mod apps;
mod authorize;
mod clients;
mod consent;
mod introspect;
mod login;
mod metadata;
mod register;
mod revoke;
mod token;

use axum::Router;
use axum::routing::get;
use http::header;

use crate::pages;
use crate::state::AuthServer;

/// Every route of the authorization server, with the page security headers.
pub fn router(s: AuthServer) -> Router {
    Router::new()
        .merge(metadata::router())
        .merge(register::router())
        .merge(authorize::router())
        .merge(consent::router())
        .merge(login::router())
        .merge(token::router())
        .merge(introspect::router())
        .merge(revoke::router())
        .merge(apps::router())
        .merge(clients::router())
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
