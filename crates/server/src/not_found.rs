//! The answer for a path nothing serves: a 404 that says what exists, as JSON for
//! programs and as a page for browsers. A resource server that gets a bare 404 from a
//! mistyped authorization-server URL can only report "unauthorized"; this answer
//! names the right URLs.

use std::sync::Arc;

use askama::Template;
use axum::Json;
use axum::extract::Request;
use axum::response::{Html, IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};
use serde_json::json;

use crate::config::ServerConfig;
use crate::pages;

/// What this server serves: a description and an absolute URL per entry.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    entries: Vec<(String, String)>,
    /// The public URL's path, for the page's own links (see [`crate::mount`]).
    base: String,
}

impl Directory {
    /// The authorization server's endpoints, derived from its issuer.
    pub fn of_auth_server(cfg: &ServerConfig) -> Self {
        let mut d = Self {
            base: crate::mount::base_path(&cfg.rules.issuer),
            ..Self::default()
        };
        d.add("authorization server metadata", cfg.metadata_url());
        for (what, path) in [
            ("authorization endpoint", "/authorize"),
            ("token endpoint", "/token"),
            ("registration endpoint", "/register"),
            ("introspection endpoint", "/introspect"),
            ("revocation endpoint", "/revoke"),
            ("signing keys", "/jwks.json"),
            ("sign-in page", "/login"),
            ("connected apps", "/apps"),
        ] {
            d.add(what, cfg.rules.endpoint(path));
        }
        d
    }

    pub fn add(&mut self, what: impl Into<String>, url: impl Into<String>) {
        self.entries.push((what.into(), url.into()));
    }

    /// The fallback handler answering with this directory.
    pub fn handler(
        self,
    ) -> impl Fn(Request) -> std::future::Ready<Response> + Clone + Send + Sync + 'static {
        let dir = Arc::new(self);
        move |req: Request| std::future::ready(dir.answer(req.headers(), req.uri().path()))
    }

    fn answer(&self, headers: &HeaderMap, path: &str) -> Response {
        // Paths are echoed bounded; askama escapes them on the page.
        let path: String = path.chars().take(200).collect();
        if wants_html(headers) {
            let page = NotFoundPage {
                path: &path,
                entries: &self.entries,
            };
            let mut resp = match page.render() {
                Ok(html) => (
                    StatusCode::NOT_FOUND,
                    Html(crate::mount::rebase_html(&self.base, &html)),
                )
                    .into_response(),
                Err(e) => {
                    tracing::error!(error = %e, "template rendering failed");
                    StatusCode::INTERNAL_SERVER_ERROR.into_response()
                }
            };
            pages::add_security_headers(&mut resp);
            return resp;
        }
        let endpoints: Vec<_> = self
            .entries
            .iter()
            .map(|(what, url)| json!({ "name": what, "url": url }))
            .collect();
        (
            StatusCode::NOT_FOUND,
            [(header::CACHE_CONTROL, "no-store")],
            Json(json!({
                "error": "not_found",
                "error_description": format!("nothing is served at {path}; see `endpoints` for what is"),
                "endpoints": endpoints,
            })),
        )
            .into_response()
    }
}

/// A browser navigating asks for HTML first; programs ask for JSON or anything.
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.trim_start().starts_with("text/html"))
}

#[derive(Template)]
#[template(path = "not_found.html")]
struct NotFoundPage<'a> {
    path: &'a str,
    entries: &'a [(String, String)],
}
