//! Cookies and CSRF.
//!
//! CSRF is double-submit: a random token in an `HttpOnly`, `SameSite=Strict` cookie,
//! repeated in each form; a POST whose field does not equal the cookie is refused. A
//! cross-site page can neither read nor set the cookie; a sibling subdomain (same site)
//! can set it, so the browser must also say the form came from this origin.

use http::{HeaderMap, HeaderValue, header};
use mcpgate_core::secret::{Secret, constant_time_eq};

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

/// True when the form's `csrf` field equals the browser's CSRF cookie, and the browser
/// says the form came from this origin.
///
/// The cookie alone is not enough: a sibling subdomain is the same *site*, so it can
/// set a cookie the browser then sends here (double-submit's known gap). Browsers
/// name where a request comes from: `Sec-Fetch-Site` (Fetch Metadata), when sent, must
/// be `same-origin` (or `none`, typed by the person). Without it (older browsers),
/// `Origin`, when sent, must be the issuer's. Our pages' `no-referrer` policy makes
/// browsers send `Origin: null` on their own forms (Fetch, "serializing a request
/// origin"), so `null` says nothing and is let through to the token check. Clients
/// that send neither header (not browsers) are held to the token.
pub fn csrf_ok(s: &AuthServer, headers: &HeaderMap, form: &Params) -> bool {
    let from_here = match headers.get("sec-fetch-site").map(HeaderValue::to_str) {
        Some(Ok("same-origin" | "none")) => true,
        Some(_) => false,
        None => match headers.get(header::ORIGIN).map(HeaderValue::to_str) {
            None | Some(Ok("null")) => true,
            Some(Ok(o)) => url::Url::parse(&s.cfg.issuer)
                .is_ok_and(|issuer| issuer.origin().ascii_serialization() == o),
            Some(Err(_)) => false,
        },
    };
    from_here
        && match (cookie(headers, CSRF_COOKIE), form.get("csrf")) {
            (Some(c), Some(f)) => constant_time_eq(&c, f),
            _ => false,
        }
}
