//! Every page: a strict Content-Security-Policy with `frame-ancestors 'none'`,
//! `X-Frame-Options: DENY`, no referrer, no caching.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderValue, header};

/// Content-Security-Policy of the pages; `form_action` adds targets a form may reach
/// (the consent form redirects to the client, and browsers check that redirect too).
pub fn csp(form_action: &str) -> String {
    format!(
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'{}{form_action}; frame-ancestors 'none'; base-uri 'none'",
        if form_action.is_empty() { "" } else { " " }
    )
}

/// Adds the security headers to every HTML response (middleware).
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    add_security_headers(&mut resp);
    resp
}

/// The headers [`security_headers`] adds, for responses made outside its layer.
pub fn add_security_headers(resp: &mut Response) {
    let is_html = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if is_html {
        if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_str(&csp("")).expect("static CSP"),
            );
        }
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}
