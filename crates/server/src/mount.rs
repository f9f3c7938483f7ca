//! Serving everything under the public URL's path.
//!
//! An issuer may carry a path (`https://auth.example.com/oauth/2.1`, or a sub-path
//! behind a reverse proxy such as `https://example.com/mcpgate`; RFC 8414 §2 allows
//! issuers with paths). Every route, page, redirect and cookie of mcpgate then lives
//! under that path, except the well-known documents, which RFC 8414 §3.1 and RFC 9728
//! §3.1 place at the origin with the path inserted after the well-known prefix.
//!
//! The routes themselves are written as if served at the root. [`under`] nests them
//! at the base path, and [`rebasing`] adds one layer that moves what they emit along:
//! root-relative `Location` headers, cookie `Path`s, and the root-relative `href`,
//! `action` and `src` attributes of our own pages (askama escapes `"` in data, so
//! only template markup can match `="/`). One mechanism, so a new page or redirect
//! follows the base path without knowing about it.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use http::{HeaderValue, header};

/// Largest page the layer rewrites; our pages are a few KiB.
const MAX_PAGE_BYTES: usize = 1 << 20;

/// The path of a public URL, without a trailing slash: `""` for an origin,
/// `"/oauth/2.1"` for `https://auth.example.com/oauth/2.1`.
pub fn base_path(public_url: &str) -> String {
    match url::Url::parse(public_url) {
        Ok(u) => u.path().trim_end_matches('/').to_owned(),
        Err(_) => String::new(),
    }
}

/// `router` nested under `base` (`""`: unchanged).
pub fn under(base: &str, router: Router) -> Router {
    if base.is_empty() {
        return router;
    }
    Router::new().nest(base, router)
}

/// `router`, whose routes are written as if at the root, with the layer that moves
/// its redirects, cookies and page links under `base` (`""`: unchanged). Only the
/// routes that emit those need it: `/mcp` does not pay for it.
pub fn rebasing(base: &str, router: Router) -> Router {
    if base.is_empty() {
        return router;
    }
    let base: Arc<str> = Arc::from(base);
    router.layer(middleware::from_fn_with_state(base, rebase))
}

async fn rebase(State(base): State<Arc<str>>, req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let (mut parts, body) = resp.into_parts();
    if let Some(loc) = parts
        .headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        && let Some(moved) = rebase_path(&base, loc)
        && let Ok(v) = HeaderValue::from_str(&moved)
    {
        parts.headers.insert(header::LOCATION, v);
    }
    let cookies: Vec<HeaderValue> = parts
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|c| match c.to_str() {
            Ok(s) if s.contains("; Path=/;") || s.ends_with("; Path=/") => {
                HeaderValue::from_str(&s.replacen("; Path=/", &format!("; Path={base}"), 1))
                    .unwrap_or_else(|_| c.clone())
            }
            _ => c.clone(),
        })
        .collect();
    if !cookies.is_empty() {
        parts.headers.remove(header::SET_COOKIE);
        for c in cookies {
            parts.headers.append(header::SET_COOKIE, c);
        }
    }
    let is_html = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !is_html {
        return Response::from_parts(parts, body);
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_PAGE_BYTES).await else {
        tracing::error!("a page was too large to move under the base path");
        return Response::from_parts(parts, Body::empty());
    };
    let page = rebase_html(&base, &String::from_utf8_lossy(&bytes));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(page))
}

/// `/x` → `{base}/x`; absolute URLs, scheme-relative `//host` and relative paths are
/// left alone.
fn rebase_path(base: &str, location: &str) -> Option<String> {
    (location.starts_with('/') && !location.starts_with("//")).then(|| format!("{base}{location}"))
}

/// A page's root-relative `href`, `action` and `src` attributes moved under `base`.
pub fn rebase_html(base: &str, page: &str) -> String {
    let mut out = page.to_owned();
    for attr in ["href", "action", "src"] {
        let from = format!("{attr}=\"/");
        out = out.replace(&from, &format!("{attr}=\"{base}/"));
    }
    // `="//host"` would have become `="{base}//host"`: a path under our base, still
    // same-origin; our templates never emit one.
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_path_of_public_urls() {
        assert_eq!(base_path("https://a.example"), "");
        assert_eq!(base_path("https://a.example/"), "");
        assert_eq!(base_path("https://a.example/oauth/2.1"), "/oauth/2.1");
        assert_eq!(base_path("https://a.example/mcpgate/"), "/mcpgate");
    }

    #[test]
    fn only_root_relative_locations_move() {
        assert_eq!(
            rebase_path("/b", "/login?next=/apps").as_deref(),
            Some("/b/login?next=/apps")
        );
        assert_eq!(rebase_path("/b", "https://client.example/cb?code=x"), None);
        assert_eq!(rebase_path("/b", "//evil.example"), None);
        assert_eq!(rebase_path("/b", "consent"), None);
    }

    #[test]
    fn page_links_move_but_escaped_data_does_not() {
        let page = r#"<a href="/apps">x</a><form action="/login"><p>&#34;=&#34;/x</p>"#;
        assert_eq!(
            rebase_html("/b", page),
            r#"<a href="/b/apps">x</a><form action="/b/login"><p>&#34;=&#34;/x</p>"#
        );
    }
}
