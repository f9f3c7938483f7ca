//! The HTML side: cookies, CSRF, sessions, security headers, rendering.
//!
//! - Sessions: a random id in an `HttpOnly`, `SameSite=Lax` cookie (`Secure` behind
//!   https); the store keeps its hash. Lax, so that the top-level navigation from an
//!   AI client to `/authorize` still sees the person signed in.
//! - CSRF: double-submit. A random token in an `HttpOnly`, `SameSite=Strict` cookie,
//!   repeated in each form; a POST whose field does not equal the cookie is refused.
//!   A cross-site page can neither read nor set the cookie.
//! - Every page: a strict Content-Security-Policy with `frame-ancestors 'none'`,
//!   `X-Frame-Options: DENY`, no referrer, no caching.

pub mod passwords;

use askama::Template;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use mcpgate_core::secret::{Secret, constant_time_eq, hash_token};
use mcpgate_store::User;

use crate::forms::Params;
use crate::state::AuthServer;

pub const CSRF_COOKIE: &str = "mcpgate_csrf";
pub const SESSION_COOKIE: &str = "mcpgate_session";

/// Reads one cookie.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name && !v.is_empty() && v.len() <= 128).then(|| v.to_owned())
        })
}

pub fn set_cookie(
    name: &str,
    value: &str,
    max_age: i64,
    same_site: &str,
    secure: bool,
) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite={same_site}; Max-Age={max_age}{secure}"
    ))
    .expect("cookie values are base64url")
}

/// The CSRF token of this browser, and the cookie to set if it had none.
pub struct Csrf {
    pub token: String,
    pub set_cookie: Option<HeaderValue>,
}

pub fn csrf(s: &AuthServer, headers: &HeaderMap) -> Csrf {
    match cookie(headers, CSRF_COOKIE) {
        Some(token) => Csrf {
            token,
            set_cookie: None,
        },
        None => {
            let token = Secret::generate().expose().to_owned();
            let set = set_cookie(
                CSRF_COOKIE,
                &token,
                12 * 3600,
                "Strict",
                s.cfg.secure_cookies,
            );
            Csrf {
                token,
                set_cookie: Some(set),
            }
        }
    }
}

/// True when the form's `csrf` field equals the browser's CSRF cookie.
pub fn csrf_ok(headers: &HeaderMap, form: &Params) -> bool {
    match (cookie(headers, CSRF_COOKIE), form.get("csrf")) {
        (Some(c), Some(f)) => constant_time_eq(&c, f),
        _ => false,
    }
}

/// The signed-in person, if any.
pub async fn current_user(s: &AuthServer, headers: &HeaderMap) -> Option<User> {
    let id = cookie(headers, SESSION_COOKIE)?;
    s.store
        .session_user(&hash_token(&id), s.now())
        .await
        .ok()
        .flatten()
}

/// Renders a template as a page, setting the CSRF cookie when needed.
pub fn render<T: Template>(
    t: &T,
    status: StatusCode,
    csrf_cookie: Option<HeaderValue>,
) -> Response {
    match t.render() {
        Ok(body) => {
            let mut resp = (status, Html(body)).into_response();
            if let Some(c) = csrf_cookie {
                resp.headers_mut().append(header::SET_COOKIE, c);
            }
            resp
        }
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub title: &'a str,
    pub message: &'a str,
}

/// An error page: the way to report an authorization error that must not redirect.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    render(&ErrorPage { title, message }, status, None)
}

pub fn csrf_failure() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "This form has expired",
        "The form was not submitted from this site, or it is too old. Reload the page and try again.",
    )
}

/// A 303 to `location` (a POST answered with a redirect becomes a GET).
pub fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (StatusCode::SEE_OTHER, [(header::LOCATION, v)]).into_response(),
        Err(_) => error_page(
            StatusCode::BAD_REQUEST,
            "Bad redirect",
            "The redirect address is not valid.",
        ),
    }
}

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

/// Where to send a person after signing in: `next` resolved against the public URL,
/// kept only when it lands on the same origin; otherwise the connected-apps page.
///
/// Browsers strip tabs and newlines from URLs and read `\\` as `/` (WHATWG URL
/// parsing), so `/<TAB>/evil.example` or `/\\evil.example` would leave the site once the
/// browser follows the redirect. Any control character or backslash, raw or
/// percent-encoded, refuses the value outright; the answer is an absolute URL, so no
/// browser resolves it again.
pub fn safe_next(issuer: &str, next: Option<&str>) -> String {
    let base = url::Url::parse(issuer).expect("the issuer is a URL");
    let fallback = || format!("{}/apps", issuer.trim_end_matches('/'));
    let Some(n) = next else {
        return fallback();
    };
    let decoded: String = percent_decode_lossy(n);
    let hostile = |s: &str| s.chars().any(|c| c.is_control() || c == '\\');
    if n.is_empty() || n.len() >= 2048 || hostile(n) || hostile(&decoded) {
        return fallback();
    }
    // Our own return paths are written as if at the root (see `crate::mount`): a
    // root-relative one is under the issuer's path.
    let within = match n.starts_with('/') && !n.starts_with("//") {
        true => format!("{}{n}", crate::mount::base_path(issuer)),
        false => n.to_owned(),
    };
    match base.join(&within) {
        Ok(u)
            if u.origin() == base.origin() && u.username().is_empty() && u.password().is_none() =>
        {
            u.to_string()
        }
        _ => fallback(),
    }
}

/// Percent-decodes repeatedly (a few rounds), so doubly encoded bytes are seen too.
fn percent_decode_lossy(s: &str) -> String {
    let mut cur = s.as_bytes().to_vec();
    for _ in 0..3 {
        let mut out = Vec::with_capacity(cur.len());
        let mut i = 0;
        while i < cur.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            match (cur[i], cur.get(i + 1), cur.get(i + 2)) {
                (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                    out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                    i += 3;
                }
                (b, _, _) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        if out == cur {
            break;
        }
        cur = out;
    }
    String::from_utf8_lossy(&cur).into_owned()
}

/// Formats a timestamp for people (UTC).
pub fn when(ts: Option<i64>) -> String {
    match ts {
        None => "never".into(),
        Some(t) => {
            let days = t.div_euclid(86400);
            let secs = t.rem_euclid(86400);
            let (y, m, d) = civil_from_days(days);
            format!(
                "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
                secs / 3600,
                (secs % 3600) / 60
            )
        }
    }
}

// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        let iss = "https://as.example";
        assert_eq!(
            safe_next(iss, Some("/consent?request=x")),
            "https://as.example/consent?request=x"
        );
        assert_eq!(
            safe_next(iss, Some("https://as.example/clients")),
            "https://as.example/clients"
        );
        for bad in [
            "//evil.example/x",
            "https://evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "\t//evil.example",
            "/%09/evil.example",
            "/%5C%5Cevil.example",
            "/%255C%255Cevil.example",
            "/%0d%0aSet-Cookie:x=1",
            "javascript:alert(1)",
            "https://as.example@evil.example/",
            "https://user@as.example/",
            "http://as.example/",
            "https://as.example:444/",
            "",
        ] {
            assert_eq!(
                safe_next(iss, Some(bad)),
                "https://as.example/apps",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn dates() {
        assert_eq!(when(Some(0)), "1970-01-01 00:00 UTC");
        assert_eq!(when(Some(1_795_000_000)), "2026-11-18 11:06 UTC");
    }
}

#[cfg(test)]
mod proptests {
    //! `PROPTEST_CASES=100000 cargo test -p mcpgate-server proptests` runs them longer.
    use proptest::prelude::*;

    use crate::proptest_cases as cases;

    proptest! {
        #![proptest_config(cases())]

        /// Whatever `next` is, the redirect after sign-in stays on the issuer's origin
        /// and carries nothing a browser would rewrite.
        #[test]
        fn next_never_leaves_the_origin(
            pieces in proptest::collection::vec(prop_oneof![
                Just("/"), Just("\\"), Just("\t"), Just("\n"), Just("%09"), Just("%5C"), Just("%2F"),
                Just("@"), Just(":"), Just("evil.example"), Just("https:"), Just("."), Just("#"), Just("?"),
                Just("%25"), Just("apps"),
            ], 0..8),
            tail in ".{0,10}",
        ) {
            let iss = "https://as.example/base";
            let next = format!("{}{tail}", pieces.concat());
            let out = super::safe_next(iss, Some(&next));
            prop_assert!(!out.chars().any(|c| c.is_control() || c == '\\'), "{:?} -> {:?}", next, out);
            let u = url::Url::parse(&out).unwrap();
            prop_assert_eq!(u.origin(), url::Url::parse(iss).unwrap().origin(), "{:?} -> {:?}", next, out);
            prop_assert!(u.username().is_empty() && u.password().is_none());
        }
    }
}
