//! Abuse limits shared by the routes: who the caller is (its source address) and how
//! often it may knock.
//!
//! Counters live in the database ([`mcpgate_domain::store::Throttles::hit_rate_limit`]), so every
//! instance on one database enforces one limit; a fixed one-minute window keeps that to
//! one row and one statement per request (rather than an in-process limiter, which
//! each instance would enforce on its own share of the traffic). The source is the
//! TCP peer; forwarding headers are believed only from the operator's trusted proxies
//! ([`crate::forwarded`]; none by default), so a client cannot pick its own bucket.
//!
//! Limited endpoints: `/login` (failed attempts), `/register`, `/token`,
//! `/authorize` requests whose `client_id` is a metadata-document URL (each may make
//! this server fetch a stranger's URL), and `/login/idp/<name>` (each stores a pending
//! sign-in, and may fetch the provider's discovery document). A limit of 0 turns one
//! off.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderValue, StatusCode, header};

use crate::state::AuthServer;

/// The caller's address, when the server was started with connection info.
#[derive(Debug, Clone, Copy)]
pub struct Source(pub Option<IpAddr>);

impl FromRequestParts<AuthServer> for Source {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        s: &AuthServer,
    ) -> Result<Self, Self::Rejection> {
        Ok(Source(
            parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| {
                crate::forwarded::client_address(c.0.ip(), &parts.headers, &s.cfg.trusted_proxies)
            }),
        ))
    }
}

/// Length of a rate-limit window.
pub const WINDOW_SECS: i64 = 60;

/// Over the limit: retry after this many seconds.
#[derive(Debug, Clone, Copy)]
pub struct Limited {
    pub retry_after: i64,
}

/// A counted hit that may be taken back (see [`refund`]).
#[derive(Debug, Clone)]
pub struct Hit {
    key: String,
    window: i64,
}

/// The bucket of an address: itself for IPv4; its /64 network for IPv6, since one
/// subscriber commonly holds a whole /64 (RFC 6177) and could otherwise take a fresh
/// bucket per request. An IPv4-mapped IPv6 address counts as the IPv4 one.
pub fn bucket(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// Counts one request of `kind` from `source`; `Err` once more than `per_window`
/// arrived in the current window (a `per_window` of 0 or less is no limit). A store
/// failure lets the request through (the limit is a brake, not an outage).
pub async fn hit(
    s: &AuthServer,
    kind: &str,
    source: Source,
    per_window: i64,
) -> Result<Option<Hit>, Limited> {
    let Some(ip) = source.0.filter(|_| per_window > 0) else {
        return Ok(None);
    };
    let now = s.auth.now();
    let window = now - now.rem_euclid(WINDOW_SECS);
    let key = format!("{kind}:{}", bucket(ip));
    match s.auth.store.hit_rate_limit(&key, window).await {
        Ok(n) if n > per_window => Err(Limited {
            retry_after: (window + WINDOW_SECS - now).max(1),
        }),
        Ok(_) => Ok(Some(Hit { key, window })),
        Err(e) => {
            tracing::warn!(error = %e, "rate-limit counter unavailable");
            Ok(None)
        }
    }
}

/// Takes back a hit that should not count (a successful sign-in counts against no
/// limit: only failures do, so people sharing an address are not locked out by use).
pub async fn refund(s: &AuthServer, hit: Option<Hit>) {
    if let Some(h) = hit {
        let _ = s.auth.store.refund_rate_limit(&h.key, h.window).await;
    }
}

/// Adds `Retry-After` (RFC 9110 §10.2.3) to a 429 or 503 answer.
pub fn with_retry_after(mut resp: Response, secs: i64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

impl Limited {
    /// The HTML answer (for the browser-facing `/authorize`): an error page, never a
    /// redirect, since the redirect URI may not have been verified yet.
    pub fn page(self) -> Response {
        with_retry_after(
            crate::pages::error_page(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests",
                &format!(
                    "Too many sign-in requests came from your address. Try again in {} seconds.",
                    self.retry_after
                ),
            ),
            self.retry_after,
        )
    }
}

/// The JSON answer of `/token` and `/register`: 429 (RFC 6585 §4) with `Retry-After`
/// and an OAuth error body. RFC 6749 §5.2 closes the list of token-endpoint error
/// codes and has none for rate limits (`temporarily_unavailable` is an authorization-
/// endpoint code, §4.1.2.1; `slow_down` is the device flow's, RFC 8628 §3.5), so the
/// code is `invalid_request`, which RFC 7591 §3.2.2 also allows, and the status,
/// `Retry-After` and the description say why.
impl IntoResponse for Limited {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": "invalid_request",
            "error_description": format!(
                "too many requests from this address; try again in {} seconds",
                self.retry_after
            ),
        });
        let mut resp = with_retry_after(
            (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response(),
            self.retry_after,
        );
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::bucket;

    #[test]
    fn an_ipv6_subscriber_has_one_bucket_for_its_whole_64() {
        let a = bucket("2001:db8:1:2::1".parse().unwrap());
        let b = bucket("2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap());
        let other = bucket("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, other);
        assert_eq!(bucket("::ffff:192.0.2.7".parse().unwrap()), "192.0.2.7");
        assert_eq!(bucket("192.0.2.7".parse().unwrap()), "192.0.2.7");
        assert_ne!(
            bucket("192.0.2.7".parse().unwrap()),
            bucket("192.0.2.8".parse().unwrap())
        );
    }
}
