//! mcpgate-server: the OAuth 2.1 authorization server, made for MCP clients.
//!
//! Layout:
//! The rules themselves (grants, clients, accounts, keys) are `mcpgate-domain`; this
//! crate is their HTTP edge: it parses requests, calls one flow and renders the outcome.
//!
//! - [`config`]: the edge's settings (cookies, rate limits, proxies) beside the rules'.
//! - [`state`]: [`AuthServer`], shared by every handler: the rules, the store, the settings.
//! - [`documents`]: fetching client metadata documents without server-side request forgery.
//! - [`sync`]: changes made elsewhere (instances, CLI) read from the database at once
//!   when a notification hints at them (never taken from the notification itself),
//!   with a periodic poll as safety net.
//! - [`error`]: the one mapping of OAuth errors to HTTP responses.
//! - [`forms`]: bounded, duplicate-refusing form and query parsing (RFC 6749 §3.1, §3.2).
//! - [`client_auth`]: client authentication at the token, introspection and revocation
//!   endpoints (`none`, `client_secret_basic`, `client_secret_post`).
//! - [`flows`]: the rules' flows, re-exported from `mcpgate-domain`.
//! - [`routes`]: one module per endpoint.
//! - [`limits`], [`forwarded`]: per-source rate limits held in the database, and
//!   who the source is behind trusted proxies.
//! - [`pages`]: the HTML side: cookies, CSRF, security headers, templates.
//! - [`mount`]: everything under the public URL's path (issuers with a path).
//! - [`not_found`]: the answer for a path nothing serves, saying what exists.
//! - [`idp`]: upstream identity providers for the sign-in page (OpenID Connect,
//!   Google, Entra ID, GitHub) and who may enter through them.

pub mod client_auth;
pub mod config;
pub mod documents;
pub mod dpop;
pub mod error;
pub mod forms;
pub mod forwarded;
pub mod idp;
pub mod limits;
pub mod mount;
pub mod not_found;
pub mod outbound;
pub mod pages;
pub mod routes;
pub mod state;
pub mod sync;
pub mod upstream_oauth;

pub use config::ServerConfig;
pub use mcpgate_domain::flows;
pub use state::AuthServer;

/// Property tests run 2,000 cases each in the test command;
/// `PROPTEST_CASES=100000 cargo test -p mcpgate-server proptests` runs them longer.
#[cfg(test)]
pub(crate) fn proptest_cases() -> proptest::prelude::ProptestConfig {
    proptest::prelude::ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000),
    )
}
