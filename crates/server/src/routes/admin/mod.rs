//! The operator's pages under `/admin`, for signed-in users with the admin role
//! (`users.is_admin`; the first-run administrator has it). One module per page.
//!
//! Every action is the domain function the command line calls ([`crate::flows::admin`],
//! [`crate::flows::accounts`], [`crate::flows::revoke`]), so both paths validate the
//! same way and are audited the same way, with `by = "admin:<name>"`.
//!
//! The page rules are those of every other page ([`crate::pages`]): CSRF double-submit
//! on every POST (checked before anything else), the strict CSP with
//! `frame-ancestors 'none'` and `X-Frame-Options: DENY`, no caching. Anyone signed in
//! without the role gets 403 on every page and action; a database failure renders an
//! error page, never an empty list.

// The helpers answer `Err(Response)`: the page a handler returns as is, once per
// request, so its size on the stack does not matter.
#![allow(clippy::result_large_err)]

mod allowed;
mod audit;
mod clients;
mod doctor;
mod grants;
mod groups;
mod overview;
mod scopes;
mod users;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderValue, StatusCode};
use mcpgate_domain::StoreError;
use mcpgate_domain::model::User;

use mcpgate_domain::Actor;

use crate::forms::Params;
use crate::pages;
use crate::pages::{Administrator, FormToken};
use crate::state::AuthServer;

pub fn router() -> Router<AuthServer> {
    Router::new()
        .merge(overview::router())
        .merge(users::router())
        .merge(clients::router())
        .merge(allowed::router())
        .merge(scopes::router())
        .merge(grants::router())
        .merge(groups::router())
        .merge(audit::router())
        .merge(doctor::router())
}

/// Most rows a list shows; the search narrows it.
pub(super) const LIST_LIMIT: i64 = 200;
/// Longest value of a search or filter field.
const MAX_FILTER_LEN: usize = 256;

/// The signed-in administrator of a page view, with the browser's CSRF token.
pub(super) struct Admin {
    pub user: User,
    pub csrf: String,
    pub set_cookie: Option<HeaderValue>,
}

impl FromRequestParts<AuthServer> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AuthServer) -> Result<Self, Response> {
        let Administrator(user) = Administrator::from_request_parts(parts, s).await?;
        let FormToken(csrf) = match FormToken::from_request_parts(parts, s).await {
            Ok(t) => t,
            Err(never) => match never {},
        };
        Ok(Self {
            user,
            csrf: csrf.token,
            set_cookie: csrf.set_cookie,
        })
    }
}

/// Who an administrator's acts are recorded as.
pub(super) fn by(user: &User) -> Actor {
    Actor::Administrator(user.username.clone())
}

/// The query string of a GET as parameters, each bounded; `Err` is a 400 page.
fn query(raw: Option<String>) -> Result<Params, Response> {
    let bad = || {
        pages::error_page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "The address has a repeated or malformed parameter.",
        )
    };
    let raw = raw.unwrap_or_default();
    if raw.len() > 4 * MAX_FILTER_LEN {
        return Err(bad());
    }
    Params::parse(raw.as_bytes()).map_err(|_| bad())
}

/// A page's query, read before its handler runs: no parameter repeated, every value
/// bounded and on one line (trimmed; empty counts as absent). Otherwise the handler
/// never runs and the person gets a 400 page.
pub(super) struct Filters(Params);

impl FromRequestParts<AuthServer> for Filters {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &AuthServer) -> Result<Self, Response> {
        let p = query(parts.uri.query().map(str::to_owned))?;
        if let Some((name, _)) = p.iter().find(|(_, v)| {
            let v = v.trim();
            v.len() > MAX_FILTER_LEN || v.chars().any(char::is_control)
        }) {
            return Err(pages::error_page(
                StatusCode::BAD_REQUEST,
                "Bad request",
                &format!(
                    "The field {} is too long or has control characters.",
                    name.chars().take(40).collect::<String>()
                ),
            ));
        }
        Ok(Self(p))
    }
}

impl Filters {
    /// A field, trimmed; `None` when absent or empty.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(str::trim).filter(|v| !v.is_empty())
    }
}

/// The error page of a failed read: the page never pretends an empty list.
pub(super) fn db_error(e: StoreError) -> Response {
    pages::PageError::from(e).into_response()
}

/// The page of an act that failed: its reason when the input was wrong (400), a
/// generic message when the server was (500, logged once).
pub(super) fn act_error(e: mcpgate_core::OAuthError) -> Response {
    pages::PageError::from(e).into_response()
}

pub(super) fn not_found(what: &str) -> Response {
    pages::error_page(
        StatusCode::NOT_FOUND,
        "Not found",
        &format!("There is no such {what}."),
    )
}
