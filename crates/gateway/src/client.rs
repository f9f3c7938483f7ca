//! The HTTP client every Streamable HTTP upstream shares: hyper's pooled HTTP/1.1
//! client with nothing on top, and each upstream's URL turned into a request target
//! once, at start.
//!
//! reqwest, which the forwarding path used before, wraps this same client; over it, it
//! parsed the URL again and merged header maps on every request, and boxed the future
//! and both bodies. A forwarded call now pays for a pool checkout and the request.
//! As before: no redirect is followed (a redirect could carry identity elsewhere), no
//! proxy is taken from the environment (upstreams are usually on loopback; hyper reads
//! no environment), `https` upstreams are verified against the platform's trust store
//! (rustls-platform-verifier, reqwest's default), and credentials written in the URL
//! (`https://user:pass@host/mcp`) become HTTP Basic authentication (RFC 7617).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use base64::Engine;
use http::{HeaderMap, HeaderValue, Uri, header};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use url::Url;

/// The shared client: one pool of keep-alive connections for every HTTP upstream.
pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, Body>;

/// Idle connections kept per upstream host: more than the concurrent calls one
/// instance usually carries (the benchmark runs 64), so a burst does not end in a
/// round of new connections.
pub const MAX_IDLE_PER_HOST: usize = 256;

/// How long an idle pooled connection is kept.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// TCP keep-alive probes on upstream connections, so a dead peer behind a long-lived
/// SSE stream is noticed.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// Builds the shared client. Uses the process's rustls crypto provider (`main`
/// installs one), or ring's when none is installed.
pub fn build() -> UpstreamClient {
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let mut http = HttpConnector::new();
    http.enforce_http(false); // the TLS connector above it takes `https` URLs
    http.set_nodelay(true); // small JSON-RPC messages: no Nagle delay
    http.set_keepalive(Some(TCP_KEEPALIVE));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_platform_verifier(provider)
        .expect("the platform's TLS verifier loads")
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(IDLE_TIMEOUT)
        .pool_max_idle_per_host(MAX_IDLE_PER_HOST)
        .pool_timer(TokioTimer::new())
        .build(connector)
}

/// Where an upstream's requests go: its URL as a `Uri`, parsed once.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL without credentials or fragment.
    uri: Uri,
    /// Its `Host` header (RFC 9110 §7.2), made once rather than by the client on
    /// every request.
    host: HeaderValue,
    /// `Authorization: Basic …` from credentials in the URL.
    basic: Option<HeaderValue>,
}

impl Target {
    /// The target of `url` (http or https, checked by the configuration).
    pub fn new(url: &Url) -> Self {
        let mut url = url.clone();
        url.set_fragment(None);
        let basic = basic_credentials(&url);
        // Both fail only for URLs that cannot have credentials, which have none.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        let uri = url
            .as_str()
            .parse()
            .expect("an http(s) URL serialized by `url` is a valid URI");
        // `port()` is `None` for the scheme's default port, which `Host` omits.
        let host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        let host = HeaderValue::from_str(&host).expect("a URL's host is a valid header value");
        Self { uri, host, basic }
    }

    /// The `Host` header for requests to this upstream.
    pub fn host(&self) -> HeaderValue {
        self.host.clone()
    }

    /// The request's URI: exactly the upstream's, query included. A client's query
    /// is not carried over: Streamable HTTP gives it no meaning, and the upstream's
    /// own (`?tenant=…`) is the operator's to set.
    pub fn uri(&self) -> Uri {
        self.uri.clone()
    }

    /// Adds the URL's credentials, unless the identity already set `Authorization`.
    pub fn authorize(&self, headers: &mut HeaderMap) {
        if let Some(b) = &self.basic
            && !headers.contains_key(header::AUTHORIZATION)
        {
            headers.insert(header::AUTHORIZATION, b.clone());
        }
    }
}

/// `Basic base64(user ":" password)` from the URL's userinfo, percent-decoded.
fn basic_credentials(url: &Url) -> Option<HeaderValue> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .ok()
            .map(|c| c.into_owned())
    };
    let user = decode(url.username())?;
    let password = url.password().map(decode);
    if user.is_empty() && password.is_none() {
        return None;
    }
    let pair = format!("{user}:{}", password.flatten().unwrap_or_default());
    let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
    let mut v = HeaderValue::from_str(&format!("Basic {encoded}")).ok()?;
    v.set_sensitive(true);
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(u: &str) -> Target {
        Target::new(&Url::parse(u).unwrap())
    }

    #[test]
    fn the_upstreams_own_url_is_the_target() {
        let t = target("http://127.0.0.1:3000/mcp?key=1#frag");
        assert_eq!(t.uri(), "http://127.0.0.1:3000/mcp?key=1");
        assert_eq!(t.host(), "127.0.0.1:3000");
        let t = target("https://[::1]:443/v1/mcp");
        assert_eq!(t.uri(), "https://[::1]/v1/mcp");
        assert_eq!(t.host(), "[::1]", "the default port is left out");
    }

    #[test]
    fn url_credentials_become_basic_auth_and_leave_the_uri() {
        let t = target("http://us%40r:p%3Ass@up.example/mcp");
        assert_eq!(t.uri(), "http://up.example/mcp");
        assert_eq!(t.host(), "up.example", "credentials are not part of Host");
        let mut h = HeaderMap::new();
        t.authorize(&mut h);
        // base64("us@r:p:ss")
        assert_eq!(h[header::AUTHORIZATION], "Basic dXNAcjpwOnNz");
        assert!(h[header::AUTHORIZATION].is_sensitive());
    }

    #[test]
    fn an_identity_jwt_wins_over_url_credentials() {
        let t = target("http://u:p@up.example/mcp");
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer id"));
        t.authorize(&mut h);
        assert_eq!(h[header::AUTHORIZATION], "Bearer id");
        let mut h = HeaderMap::new();
        target("http://up.example/mcp").authorize(&mut h);
        assert!(h.is_empty(), "no credentials, no header");
    }
}
