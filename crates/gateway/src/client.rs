//! The HTTP client of Streamable HTTP upstreams: hyper's HTTP/1.1 connections, one
//! pool of them per upstream ([`Pool`]), each upstream's URL turned into a request
//! target once, at start.
//!
//! reqwest, which the forwarding path used first, and then hyper-util's pooled
//! client, both wrap these same connections. Over them, the general client hashed
//! its pool key (scheme and authority, SipHash) on every checkout and again on every
//! return, rewrote the URI to origin form, and spawned a task per call to put the
//! connection back once it was ready: about a tenth of a forwarded call's
//! instructions in the gateway. An upstream's own pool is a list of idle
//! connections: a call takes the most recently used ready one (as hyper-util did: the
//! others age and are let go) or opens one, and its answer's body puts the
//! connection back as it ends.
//!
//! As before: no redirect is followed (a redirect could carry identity elsewhere), no
//! proxy is taken from the environment (upstreams are usually on loopback; hyper reads
//! no environment), `https` upstreams are verified against the platform's trust store
//! (rustls-platform-verifier, reqwest's default), credentials written in the URL
//! (`https://user:pass@host/mcp`) become HTTP Basic authentication (RFC 7617), and a
//! call whose pooled connection turns out closed before the call went out is sent
//! again on another connection (an upstream may close an idle connection at any
//! time: RFC 9112 §9.6); hyper hands such a call back only when none of it was sent.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::body::Body;
use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, Uri, header};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use tower::ServiceExt;
use url::Url;

/// How every upstream connection is opened: TCP, and TLS for `https`. Cheap to clone.
#[derive(Clone)]
pub struct UpstreamClient {
    connector: HttpsConnector<HttpConnector>,
}

/// Idle connections kept per upstream: more than the concurrent calls one instance
/// usually carries (the benchmark runs 64), so a burst does not end in a round of new
/// connections.
pub const MAX_IDLE_PER_HOST: usize = 256;

/// The longest an idle connection is used again; older ones are closed as the pool
/// is next used (an upstream usually closes its idle connections much sooner).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// TCP keep-alive probes on upstream connections, so a dead peer behind a long-lived
/// SSE stream is noticed.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// Builds the connector. Uses the process's rustls crypto provider (`main` installs
/// one), or ring's when none is installed.
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
    UpstreamClient { connector }
}

/// Why a call did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("cannot connect: {0}")]
    Connect(Box<dyn std::error::Error + Send + Sync>),
    #[error(transparent)]
    Http(#[from] hyper::Error),
}

/// One upstream's keep-alive connections.
pub struct Pool {
    client: UpstreamClient,
    /// Where connections go (the upstream's URL).
    target: Uri,
    /// Most recently put back last.
    idle: Mutex<VecDeque<Idle>>,
}

struct Idle {
    sender: SendRequest<Body>,
    since: Instant,
}

impl Pool {
    pub fn new(client: &UpstreamClient, target: &Target) -> Arc<Self> {
        Arc::new(Self {
            client: client.clone(),
            target: target.uri.clone(),
            idle: Mutex::new(VecDeque::new()),
        })
    }

    /// Sends `req` (origin-form URI, `Host` set) on an idle connection, or a new one.
    pub async fn send(self: &Arc<Self>, req: Request<Body>) -> Result<Response<Pooled>, SendError> {
        let mut req = req;
        loop {
            let (mut sender, reused) = match self.checkout() {
                Some(s) => (s, true),
                None => (self.connect().await?, false),
            };
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    let (parts, body) = resp.into_parts();
                    let mut body = Pooled {
                        body,
                        home: Some((sender, Arc::downgrade(self))),
                    };
                    // An answer without a body (202 to a notification) frees the
                    // connection at once.
                    if body.body.is_end_stream() {
                        body.go_home();
                    }
                    return Ok(Response::from_parts(parts, body));
                }
                // The connection was gone before the call went out (closed while
                // idle): the call is sent again, on a new connection.
                Err(mut e) => match e.take_message() {
                    Some(unsent) if reused => req = unsent,
                    _ => return Err(e.into_error().into()),
                },
            }
        }
    }

    /// The most recently used idle connection that is ready for a call. Closed and
    /// expired ones are dropped; ones not ready yet (their last answer still
    /// finishing, for a moment) are kept.
    fn checkout(&self) -> Option<SendRequest<Body>> {
        let mut idle = self.lock();
        prune(&mut idle);
        let at = idle.iter().rposition(|i| i.sender.is_ready())?;
        idle.remove(at).map(|i| i.sender)
    }

    fn put_back(&self, sender: SendRequest<Body>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.lock();
        prune(&mut idle);
        if idle.len() < MAX_IDLE_PER_HOST {
            idle.push_back(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }

    async fn connect(&self) -> Result<SendRequest<Body>, SendError> {
        let io = self
            .client
            .connector
            .clone()
            .oneshot(self.target.clone())
            .await
            .map_err(SendError::Connect)?;
        let (sender, conn) = http1::handshake(io).await?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "an upstream connection ended");
            }
        });
        Ok(sender)
    }

    /// Idle connections held, for tests.
    pub fn idle(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Idle>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Lets the closed and expired connections at the front (the least recently used) go:
/// one clock read, and usually one look, per call. Closed ones further back are not
/// ready, so no call takes them; they go once they reach the front.
fn prune(idle: &mut VecDeque<Idle>) {
    let now = Instant::now();
    while idle
        .front()
        .is_some_and(|i| i.sender.is_closed() || now.duration_since(i.since) >= IDLE_TIMEOUT)
    {
        idle.pop_front();
    }
}

/// An answer's body, which puts its connection back in the pool as it ends. A body
/// dropped before its end (the client went away) takes its connection with it: hyper
/// closes a connection whose answer was not read through.
pub struct Pooled {
    body: Incoming,
    home: Option<(SendRequest<Body>, Weak<Pool>)>,
}

impl std::fmt::Debug for Pooled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pooled").field("body", &self.body).finish()
    }
}

impl Pooled {
    /// Puts the connection back once it can take the next call: at once when it
    /// can (the usual case), else when its task has finished with this answer, so that
    /// the pool holds only connections ready for a call and a call never opens a
    /// connection beside one about to be free.
    fn go_home(&mut self) {
        let Some((mut sender, pool)) = self.home.take() else {
            return;
        };
        if sender.is_ready() {
            if let Some(pool) = pool.upgrade() {
                pool.put_back(sender);
            }
            return;
        }
        tokio::spawn(async move {
            if sender.ready().await.is_ok()
                && let Some(pool) = pool.upgrade()
            {
                pool.put_back(sender);
            }
        });
    }
}

impl HttpBody for Pooled {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let frame = ready!(Pin::new(&mut self.body).poll_frame(cx));
        match &frame {
            None => self.go_home(),
            Some(Ok(_)) if self.body.is_end_stream() => self.go_home(),
            // A broken answer leaves its connection unusable.
            Some(Err(_)) => self.home = None,
            Some(Ok(_)) => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Where an upstream's requests go: its URL as a `Uri`, parsed once.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL without credentials or fragment: where connections go.
    uri: Uri,
    /// Its path and query, the request target of every call (origin form, RFC 9112
    /// §3.2.1).
    path: Uri,
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
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let path = path
            .parse()
            .expect("a URL's path and query form a valid origin-form URI");
        Self {
            uri,
            path,
            host,
            basic,
        }
    }

    /// The `Host` header for requests to this upstream.
    pub fn host(&self) -> HeaderValue {
        self.host.clone()
    }

    /// The request's target: exactly the upstream's path and query. A client's query
    /// is not carried over: Streamable HTTP gives it no meaning, and the upstream's
    /// own (`?tenant=…`) is the operator's to set.
    pub fn path(&self) -> Uri {
        self.path.clone()
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
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// How the test upstream treats each connection.
    #[derive(Clone, Copy)]
    enum Upstream {
        /// Answers every request on it.
        KeepAlive,
        /// Answers one request, then closes the connection unannounced.
        CloseAfterOne,
        /// Sends half of a 10-byte answer, then waits.
        Stall,
    }

    /// A raw HTTP/1.1 upstream on loopback; returns its target and the number of
    /// connections it accepted.
    async fn upstream(mode: Upstream) -> (Target, Arc<AtomicUsize>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/mcp", l.local_addr().unwrap())).unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut sock, _) = l.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        // Requests without a body: a head ends the request.
                        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                            let mut chunk = [0u8; 1024];
                            match sock.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        buf.clear();
                        let answer: &[u8] = match mode {
                            Upstream::Stall => {
                                b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf!"
                            }
                            _ => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
                        };
                        if sock.write_all(answer).await.is_err() {
                            return;
                        }
                        match mode {
                            Upstream::KeepAlive => {}
                            Upstream::CloseAfterOne => return,
                            Upstream::Stall => std::future::pending::<()>().await,
                        }
                    }
                });
            }
        });
        (Target::new(&url), accepted)
    }

    fn get(t: &Target) -> Request<Body> {
        let mut req = Request::new(Body::empty());
        *req.uri_mut() = t.path();
        req.headers_mut().insert(header::HOST, t.host());
        req
    }

    async fn read_through(resp: Response<Pooled>) -> Bytes {
        use http_body_util::BodyExt;
        resp.into_body().collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn calls_in_turn_share_one_connection() {
        let (t, accepted) = upstream(Upstream::KeepAlive).await;
        let pool = Pool::new(&build(), &t);
        for _ in 0..5 {
            let resp = pool.send(get(&t)).await.unwrap();
            assert_eq!(read_through(resp).await, "ok");
            // Back in the pool once its answer ended and its task is ready.
            let deadline = Instant::now() + Duration::from_secs(10);
            while pool.idle() == 0 && Instant::now() < deadline {
                tokio::task::yield_now().await;
            }
            assert_eq!(pool.idle(), 1);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_connection_closed_while_idle_is_replaced_unseen() {
        let (t, accepted) = upstream(Upstream::CloseAfterOne).await;
        let pool = Pool::new(&build(), &t);
        for _ in 0..3 {
            let resp = pool
                .send(get(&t))
                .await
                .expect("answered on a new connection");
            assert_eq!(read_through(resp).await, "ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn an_answer_not_read_through_takes_its_connection_along() {
        let (t, accepted) = upstream(Upstream::Stall).await;
        let pool = Pool::new(&build(), &t);
        let resp = pool.send(get(&t)).await.unwrap();
        assert_eq!(resp.body().size_hint().exact(), Some(10));
        drop(resp);
        assert_eq!(
            pool.idle(),
            0,
            "a connection with half an answer is not reused"
        );
        let _second = pool.send(get(&t)).await.unwrap();
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_unreachable_upstream_is_a_connect_error() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = Url::parse(&format!("http://{}/mcp", closed.local_addr().unwrap())).unwrap();
        drop(closed);
        let t = Target::new(&url);
        let err = Pool::new(&build(), &t).send(get(&t)).await.unwrap_err();
        assert!(matches!(err, SendError::Connect(_)), "{err}");
    }

    fn target(u: &str) -> Target {
        Target::new(&Url::parse(u).unwrap())
    }

    #[test]
    fn the_upstreams_own_url_is_the_target() {
        let t = target("http://127.0.0.1:3000/mcp?key=1#frag");
        assert_eq!(t.uri, "http://127.0.0.1:3000/mcp?key=1");
        assert_eq!(t.path(), "/mcp?key=1");
        assert_eq!(t.host(), "127.0.0.1:3000");
        let t = target("https://[::1]:443/v1/mcp");
        assert_eq!(t.uri, "https://[::1]/v1/mcp");
        assert_eq!(t.path(), "/v1/mcp");
        assert_eq!(t.host(), "[::1]", "the default port is left out");
    }

    #[test]
    fn url_credentials_become_basic_auth_and_leave_the_uri() {
        let t = target("http://us%40r:p%3Ass@up.example/mcp");
        assert_eq!(t.uri, "http://up.example/mcp");
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
