//! Cookies and CSRF.
//!
//! CSRF is double-submit: a random token in an `HttpOnly`, `SameSite=Strict` cookie,
//! repeated in each form; a POST whose field does not equal the cookie is refused. A
//! cross-site page can neither read nor set the cookie; a sibling subdomain (same site)
//! can set it, so the browser must also say the form came from this origin.
//!
//! Served over https at the origin's root, every cookie is named with the `__Host-`
//! prefix (RFC 6265bis §4.1.3.2): browsers accept such a cookie only with `Secure`,
//! `Path=/` and no `Domain`, so neither a sibling subdomain nor a plain-http page of
//! the host can set or shadow it (cookies are not isolated by port or scheme, RFC 6265
//! §8.5, §8.6). Over plain http (loopback development) `Secure` is impossible, and
//! under a path the cookies are scoped to that path (`Path=/oauth/2.1`), which the
//! prefix forbids: there the names stay unprefixed. Only the expected name is read:
//! an unprefixed cookie is not taken in place of a prefixed one.

use http::{HeaderMap, HeaderValue, header};
use mcpgate_core::secret::{Secret, constant_time_eq};

use crate::config::ServerConfig;
use crate::forms::Params;
use crate::state::AuthServer;

/// The cookies this server sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jar {
    /// Who is signed in (see [`super::session`]).
    Session,
    /// The double-submit CSRF token.
    Csrf,
    /// Binds a sign-in at an identity provider to the browser that started it.
    IdpBrowser,
}

impl Jar {
    /// The cookie's name under `cfg`: `__Host-` prefixed when served over https at the
    /// origin's root (see the module's documentation).
    pub fn name(self, cfg: &ServerConfig) -> &'static str {
        match (self, cfg.host_prefixed_cookies()) {
            (Jar::Session, true) => "__Host-mcpgate_session",
            (Jar::Session, false) => "mcpgate_session",
            (Jar::Csrf, true) => "__Host-mcpgate_csrf",
            (Jar::Csrf, false) => "mcpgate_csrf",
            (Jar::IdpBrowser, true) => "__Host-mcpgate_idp",
            (Jar::IdpBrowser, false) => "mcpgate_idp",
        }
    }

    /// This cookie's value in a request, under its one expected name.
    pub fn read(self, cfg: &ServerConfig, headers: &HeaderMap) -> Option<String> {
        cookie(headers, self.name(cfg))
    }

    /// The `Set-Cookie` value that sets (or, with `max_age` 0, clears) this cookie.
    pub fn set(
        self,
        cfg: &ServerConfig,
        value: &str,
        max_age: i64,
        same_site: &str,
    ) -> HeaderValue {
        set_cookie(
            self.name(cfg),
            value,
            max_age,
            same_site,
            cfg.secure_cookies,
        )
    }
}

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

/// A `Set-Cookie` value: `Path=/` (moved under the base path by [`crate::mount`]), no
/// `Domain` (host-only), `HttpOnly`, `Secure` when `secure`.
fn set_cookie(name: &str, value: &str, max_age: i64, same_site: &str, secure: bool) -> HeaderValue {
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
    match Jar::Csrf.read(&s.cfg, headers) {
        Some(token) => Csrf {
            token,
            set_cookie: None,
        },
        None => {
            let token = Secret::generate().expose().to_owned();
            let set = Jar::Csrf.set(&s.cfg, &token, 12 * 3600, "Strict");
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
            Some(Ok(o)) => url::Url::parse(&s.cfg.rules.issuer)
                .is_ok_and(|issuer| issuer.origin().ascii_serialization() == o),
            Some(Err(_)) => false,
        },
    };
    from_here
        && match (Jar::Csrf.read(&s.cfg, headers), form.get("csrf")) {
            (Some(c), Some(f)) => constant_time_eq(&c, f),
            _ => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(issuer: &str) -> ServerConfig {
        ServerConfig::new(issuer, &format!("{issuer}/mcp"), Default::default())
    }

    /// `__Host-` only where a browser accepts it: https, `Path=/`.
    #[test]
    fn cookie_names_are_host_prefixed_only_over_https_at_the_root() {
        for (issuer, prefixed) in [
            ("https://as.example", true),
            ("https://as.example/oauth/2.1", false),
            ("http://127.0.0.1:8080", false),
            ("http://127.0.0.1:8080/oauth/2.1", false),
        ] {
            let c = cfg(issuer);
            for jar in [Jar::Session, Jar::Csrf, Jar::IdpBrowser] {
                let set = jar.set(&c, "v", 60, "Lax");
                let set = set.to_str().unwrap();
                assert_eq!(jar.name(&c).starts_with("__Host-"), prefixed, "{issuer}");
                assert!(set.starts_with(&format!("{}=v; Path=/;", jar.name(&c))));
                assert_eq!(set.ends_with("; Secure"), issuer.starts_with("https"));
                assert!(!set.contains("Domain"));
            }
        }
        let c = cfg("https://as.example");
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("mcpgate_session=planted"),
        );
        assert_eq!(
            Jar::Session.read(&c, &h),
            None,
            "the unprefixed name is not read"
        );
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("__Host-mcpgate_session=s"),
        );
        assert_eq!(Jar::Session.read(&c, &h).as_deref(), Some("s"));
    }
}
