//! stdio upstreams, bridged to Streamable HTTP. A stdio server serves one client, so
//! each MCP session gets its own process, started by `initialize` and bound to the
//! person who sent it. A request is written to the process's stdin; its answer, and
//! whatever the server sends meanwhile (progress, logging, sampling, elicitation and
//! roots requests), come back as an SSE stream on that POST; server messages sent
//! while no request is open go to the session's GET stream (or wait, bounded, for it).
//! A process that dies fails its open requests at once; the session's next request
//! starts a new process and replays the session's `initialize` to it.
//!
//! 2026-07-28 requests come without a session: [`pool`] serves them from a few
//! processes the gateway initialized itself, shaped for the modern revision by
//! [`stateless`].

pub mod pool;
pub mod process;
mod routes;
mod sse;
pub mod stateless;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use mcpgate_core::secret::Secret;
use mcpgate_mcp::Principal;
use mcpgate_mcp::guard::Envelope;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::UpstreamConfig;
use crate::errors::GatewayError;
use crate::{SESSION_HEADER, Upstream};
use process::Process;
use routes::{BACKLOG, Peek, Routes};
use sse::{sse_event, sse_response};
use stateless::Shape;

/// Messages buffered per open stream before the server is slowed down.
const STREAM_BUFFER: usize = 64;

pub struct StdioPool {
    cfg: Arc<UpstreamConfig>,
    sessions: Arc<Sessions>,
    /// Processes for stateless (2026-07-28) requests.
    stateless: Arc<pool::Pool>,
}

type Sessions = Mutex<HashMap<String, Arc<Session>>>;

/// One MCP session: its owner, its process (replaced after a crash) and the streams
/// its messages go to.
struct Session {
    owner: String,
    cfg: Arc<UpstreamConfig>,
    /// The owner's own secrets in its process's environment (`env_from_person`).
    env: Vec<(String, String)>,
    /// The client's `initialize` request, replayed to a restarted process.
    init: Bytes,
    /// The server's answer to the latest replayed `initialize` (its `result`).
    init_result: Mutex<Option<Value>>,
    proc: tokio::sync::Mutex<Option<Arc<Process>>>,
    routes: Arc<Mutex<Routes>>,
    last_used: Mutex<Instant>,
}

/// The answer to a GET or DELETE without a session. A client of the stateless
/// revision (2026-07-28) has no session to name: there is no stream for it to open
/// here, which a server says with 405 (MCP transport, "Listening for Messages from the
/// Server"; rmcp's stateless server answers the same), and its SDK takes as "no
/// stream" rather than as an error. A client of the `initialize` revisions gets 400:
/// "servers that require a session ID SHOULD respond to requests without an
/// `Mcp-Session-Id` header (other than initialization) with HTTP 400" (MCP transport,
/// "Session Management"; the TypeScript SDK's server answers the same).
fn sessionless(headers: &http::HeaderMap) -> GatewayError {
    if stateless::is_modern_header(headers) {
        GatewayError::NoStream
    } else {
        GatewayError::SessionRequired
    }
}

impl StdioPool {
    pub fn new(cfg: &UpstreamConfig, cancel: CancellationToken) -> Self {
        let cfg = Arc::new(cfg.clone());
        let pool = Self {
            stateless: Arc::new(pool::Pool::new(cfg.clone())),
            cfg: cfg.clone(),
            sessions: Default::default(),
        };
        // Idle sessions end within a quarter of the idle time (at most a minute late);
        // on shutdown every session ends, and with it its process.
        let (sessions, idle) = (pool.sessions.clone(), Duration::from_secs(cfg.idle_secs));
        let every = (idle / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
        let stateless = pool.stateless.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(every) => {
                        reap(&sessions, idle);
                        stateless.reap(idle);
                    }
                }
            }
            sessions.lock().unwrap_or_else(|e| e.into_inner()).clear();
            stateless.reap(Duration::ZERO);
        });
        pool
    }

    /// How many sessions (processes) are alive.
    pub fn len(&self) -> usize {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Ends sessions idle longer than `idle` (a session with an open request is not idle).
fn reap(sessions: &Sessions, idle: Duration) {
    let mut map = sessions.lock().unwrap_or_else(|e| e.into_inner());
    map.retain(|_, s| s.in_use() || s.idle_for() < idle);
}

/// Makes room for one more session of `owner`: ends that person's least recently used
/// idle session when they hold `per_person`, and anyone's when `total` are alive. A
/// session in use is never ended for room; `false` when there is none to end.
fn make_room(sessions: &Sessions, owner: &str, per_person: usize, total: usize) -> bool {
    let mut map = sessions.lock().unwrap_or_else(|e| e.into_inner());
    let oldest_idle = |map: &HashMap<String, Arc<Session>>, of: Option<&str>| {
        map.iter()
            .filter(|(_, s)| of.is_none_or(|o| s.owner == o) && !s.in_use())
            .max_by_key(|(_, s)| s.idle_for())
            .map(|(k, _)| k.clone())
    };
    if map.values().filter(|s| s.owner == owner).count() >= per_person {
        match oldest_idle(&map, Some(owner)) {
            Some(k) => {
                map.remove(&k);
            }
            None => return false,
        }
    }
    if map.len() >= total {
        match oldest_idle(&map, None) {
            Some(k) => {
                map.remove(&k);
            }
            None => return false,
        }
    }
    true
}

impl StdioPool {
    fn session(&self, id: &str) -> Option<Arc<Session>> {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    #[tracing::instrument(level = "debug", target = "mcpgate::outbound", name = "upstream",
        skip_all, fields(otel.kind = "client", upstream = %up.cfg.name))]
    pub async fn handle(&self, up: &Upstream, p: Arc<Principal>, req: Request) -> Response {
        let envelope = req.extensions().get::<Envelope>().cloned();
        let id = envelope.as_ref().and_then(|e| e.id.clone());
        let sid = req
            .headers()
            .get(&SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let method = req.method().clone();
        let rpc_method = envelope.as_ref().and_then(|e| e.method.clone());
        // A person's own secrets go only into processes of theirs: none yet, and they
        // are asked for them (a URL elicitation, in the client's revision), before any
        // process starts. The body is read first then, to see how to ask.
        let mut req = req;
        let mut peek = Bytes::new();
        if !up.cfg.env_from_person.is_empty() && method == Method::POST {
            let (parts, body) = req.into_parts();
            let Ok(bytes) = to_bytes(body, up.max_body_bytes).await else {
                return GatewayError::BadGateway.respond(id.as_ref());
            };
            peek = bytes.clone();
            req = Request::from_parts(parts, Body::from(bytes));
        }
        let presented = crate::credentials::presented(req.headers());
        let modern = stateless::is_modern_header(req.headers())
            || peek
                .windows(stateless::PROTOCOL_VERSION.len())
                .any(|w| w == stateless::PROTOCOL_VERSION.as_bytes());
        let asking =
            || crate::credentials::Asking::of(modern, rpc_method.as_deref().unwrap_or(""), &peek);
        let env =
            match crate::credentials::person_env(up, &p.subject, presented, id.as_ref(), asking)
                .await
            {
                Ok(env) => env,
                Err(answer) => return answer,
            };
        let Some(sid) = sid else {
            if method != Method::POST {
                return sessionless(req.headers()).respond(id.as_ref());
            }
            let headers = req.headers().clone();
            let Ok(body) = to_bytes(req.into_body(), up.max_body_bytes).await else {
                return GatewayError::BadGateway.respond(id.as_ref());
            };
            return match serde_json::from_slice::<Value>(&body) {
                Ok(mut msg) if stateless::is_modern(&msg, &headers) => {
                    crate::credentials::take_our_answer(&mut msg);
                    self.stateless.handle(up, &p, &headers, msg, env).await
                }
                _ if rpc_method.as_deref() == Some("initialize") => {
                    self.initialize(up, &p, one_line(body), id, env).await
                }
                _ => GatewayError::SessionRequired.respond(id.as_ref()),
            };
        };
        let Some(session) = self.session(&sid) else {
            return GatewayError::UnknownSession.respond(id.as_ref());
        };
        if session.owner != p.subject {
            return GatewayError::ForeignSession.respond(id.as_ref());
        }
        if session.env != env {
            // The person's secret changed or is gone (connected anew, disconnected):
            // the process holding the old one ends, and the client starts over.
            self.sessions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&sid);
            return GatewayError::UnknownSession.respond(id.as_ref());
        }
        *session.last_used.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        match method {
            Method::POST => {
                let Ok(body) = to_bytes(req.into_body(), up.max_body_bytes).await else {
                    return GatewayError::BadGateway.respond(id.as_ref());
                };
                let is_request =
                    envelope.as_ref().is_some_and(|e| e.method.is_some()) && id.is_some();
                let shape = Shape::for_session(up, &p, rpc_method.unwrap_or_default());
                session
                    .post(
                        up,
                        one_line(body),
                        is_request.then_some(id).flatten(),
                        shape,
                    )
                    .await
            }
            Method::GET => session.open_get(),
            Method::DELETE => {
                self.sessions
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&sid);
                StatusCode::NO_CONTENT.into_response()
            }
            _ => GatewayError::Method.respond(None),
        }
    }

    async fn initialize(
        &self,
        up: &Upstream,
        p: &Principal,
        init: Bytes,
        id: Option<Value>,
        env: Vec<(String, String)>,
    ) -> Response {
        reap(&self.sessions, Duration::from_secs(self.cfg.idle_secs));
        let per_person = self.cfg.sessions_per_person();
        if !make_room(
            &self.sessions,
            &p.subject,
            per_person,
            self.cfg.max_sessions,
        ) {
            tracing::warn!(
                upstream = up.name(),
                "stdio session limit reached, every session in use"
            );
            return GatewayError::Busy.respond(id.as_ref());
        }
        let session = Session::new(p.subject.clone(), self.cfg.clone(), init.clone(), env);
        let sid = Secret::generate().expose().to_owned();
        let shape = Shape::for_session(up, p, "initialize".into());
        let mut resp = session.request(up, init, id, false, shape).await;
        if resp.status().is_success() {
            self.sessions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(sid.clone(), session);
            if let Ok(v) = HeaderValue::from_str(&sid) {
                resp.headers_mut().insert(SESSION_HEADER.clone(), v);
            }
        }
        resp
    }
}

/// A message as one line: re-serialized compactly when the client's JSON spans lines.
fn one_line(body: Bytes) -> Bytes {
    if !body.iter().any(|&b| b == b'\n' || b == b'\r') {
        return body;
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(v) => Bytes::from(v.to_string()),
        Err(_) => body,
    }
}

impl Session {
    fn new(
        owner: String,
        cfg: Arc<UpstreamConfig>,
        init: Bytes,
        env: Vec<(String, String)>,
    ) -> Arc<Self> {
        Arc::new(Self {
            owner,
            cfg,
            env,
            init,
            init_result: Mutex::new(None),
            proc: tokio::sync::Mutex::new(None),
            routes: Default::default(),
            last_used: Mutex::new(Instant::now()),
        })
    }

    /// A request is open, or the GET stream is.
    fn in_use(&self) -> bool {
        let r = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        !r.pending.is_empty() || r.get.as_ref().is_some_and(|g| !g.is_closed())
    }

    fn idle_for(&self) -> Duration {
        self.last_used
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
    }

    /// The live process, started (and the session's `initialize` replayed) if needed;
    /// `true` when it was started now.
    async fn process(&self, replay: bool) -> Result<(Arc<Process>, bool), GatewayError> {
        let mut slot = self.proc.lock().await;
        if let Some(p) = slot.as_ref()
            && !p.dead.is_cancelled()
        {
            return Ok((p.clone(), false));
        }
        let routes = self.routes.clone();
        let on_exit_routes = self.routes.clone();
        let proc = Process::spawn_with(
            &self.cfg,
            &self.env,
            move |line| routes.lock().unwrap_or_else(|e| e.into_inner()).route(line),
            move || {
                on_exit_routes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .fail_all()
            },
        )
        .map_err(|e| {
            tracing::error!(upstream = self.cfg.name, error = %e, "could not start the stdio upstream");
            GatewayError::BadGateway
        })?;
        if replay {
            self.replay_initialize(&proc).await?;
        }
        *slot = Some(proc.clone());
        Ok((proc, true))
    }

    /// Brings a restarted process to where the session was: `initialize` (the
    /// client's own parameters, under an id of ours) and `notifications/initialized`.
    async fn replay_initialize(&self, proc: &Process) -> Result<(), GatewayError> {
        let mut init: Value =
            serde_json::from_slice(&self.init).map_err(|_| GatewayError::BadGateway)?;
        let key = format!("\"mcpgate-replay-{}\"", proc.pid);
        init["id"] = serde_json::from_str(&key).unwrap_or(Value::Null);
        let (tx, mut rx) = mpsc::channel(STREAM_BUFFER);
        self.routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pending
            .push((key, tx));
        proc.send(init.to_string().as_bytes())
            .await
            .map_err(|_| GatewayError::BadGateway)?;
        let answered = tokio::time::timeout(self.cfg.start_timeout(), async {
            while let Some(m) = rx.recv().await {
                if serde_json::from_slice::<Peek>(&m).is_ok_and(|p| p.method.is_none()) {
                    return Some(m);
                }
            }
            None
        })
        .await;
        let Ok(Some(answer)) = answered else {
            return Err(GatewayError::BadGateway);
        };
        let result = serde_json::from_slice::<Value>(&answer)
            .ok()
            .and_then(|mut v| v.get_mut("result").map(Value::take));
        *self.init_result.lock().unwrap_or_else(|e| e.into_inner()) = result;
        proc.send(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .await
            .map_err(|_| GatewayError::BadGateway)?;
        tracing::info!(
            upstream = self.cfg.name,
            "restarted a stdio upstream and replayed its session"
        );
        Ok(())
    }

    /// A POST within the session: a request gets a stream, anything else 202.
    async fn post(&self, up: &Upstream, body: Bytes, id: Option<Value>, shape: Shape) -> Response {
        if id.is_none() {
            let proc = match self.process(true).await {
                Ok((p, _)) => p,
                Err(e) => return e.respond(None),
            };
            return match proc.send(&body).await {
                Ok(()) => StatusCode::ACCEPTED.into_response(),
                Err(_) => GatewayError::BadGateway.respond(None),
            };
        }
        self.request(up, body, id, true, shape).await
    }

    /// Writes a request and answers with an SSE stream that ends with its response,
    /// each message shaped by `shape`. Nothing at all within the timeout gives 504; a
    /// process that dies first, 502.
    async fn request(
        &self,
        up: &Upstream,
        body: Bytes,
        id: Option<Value>,
        replay: bool,
        shape: Shape,
    ) -> Response {
        let key = id.as_ref().map(Value::to_string).unwrap_or_default();
        // The gateway's own answers carry the id the client sent.
        let reply = shape.client_id.clone().or_else(|| id.clone());
        let (proc, fresh) = match self.process(replay).await {
            Ok(p) => p,
            Err(e) => return e.respond(reply.as_ref()),
        };
        let (tx, mut rx) = mpsc::channel(STREAM_BUFFER);
        self.routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pending
            .push((key.clone(), tx));
        if proc.send(&body).await.is_err() {
            self.forget(&key);
            return GatewayError::BadGateway.respond(reply.as_ref());
        }
        let timeout = up.timeout();
        // A process started for this request answers its `initialize` first.
        let wait = match fresh && !replay {
            true => self.cfg.start_timeout(),
            false => timeout,
        };
        let first = match tokio::time::timeout(wait, rx.recv()).await {
            Ok(Some(m)) => m,
            Ok(None) => return GatewayError::BadGateway.respond(reply.as_ref()),
            Err(_) => {
                self.forget(&key);
                self.cancel_upstream(&proc, id.as_ref()).await;
                tracing::warn!(upstream = up.name(), "stdio upstream timed out");
                return GatewayError::Timeout.respond(reply.as_ref());
            }
        };
        if shape.modern && stateless::is_method_not_found(&first) {
            let msg = shape.apply(first).unwrap_or_default();
            let json = [(header::CONTENT_TYPE, "application/json")];
            return (StatusCode::NOT_FOUND, json, msg).into_response();
        }
        let shape = Arc::new(shape);
        let stream = futures_util::stream::unfold(
            (Some(first), rx, reply, Some(self.routes.clone()), key),
            move |(first, mut rx, id, routes, key)| {
                let shape = shape.clone();
                async move {
                    let routes = routes?;
                    let mut next = first;
                    loop {
                        let msg = match next.take() {
                            Some(m) => m,
                            None => match tokio::time::timeout(timeout, rx.recv()).await {
                                Ok(Some(m)) => m,
                                Ok(None) => return None,
                                Err(_) => {
                                    drop_pending(&routes, &key);
                                    let e = GatewayError::Timeout.body(id.as_ref()).to_string();
                                    return Some((
                                        Ok::<_, Infallible>(sse_event(e.as_bytes())),
                                        (None, rx, id, None, key),
                                    ));
                                }
                            },
                        };
                        // A message the shape drops is skipped, not the end of the stream.
                        if let Some(msg) = shape.apply(msg) {
                            return Some((Ok(sse_event(&msg)), (None, rx, id, Some(routes), key)));
                        }
                    }
                }
            },
        );
        sse_response(Body::from_stream(stream))
    }

    fn forget(&self, key: &str) {
        drop_pending(&self.routes, key);
    }

    /// Tells the server the gateway gave up on a request (MCP "Cancellation").
    async fn cancel_upstream(&self, proc: &Process, id: Option<&Value>) {
        let msg = serde_json::json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": {"requestId": id, "reason": "the gateway timed out"}});
        let _ = proc.send(msg.to_string().as_bytes()).await;
    }

    /// Cancels request `id` on the running process, if any, and stops waiting for
    /// its answer.
    async fn cancel(&self, id: &Value, reason: &str) {
        self.forget(&id.to_string());
        let proc = self.proc.lock().await.clone();
        if let Some(proc) = proc {
            let msg = serde_json::json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                "params": {"requestId": id, "reason": reason}});
            let _ = proc.send(msg.to_string().as_bytes()).await;
        }
    }

    /// The session's GET stream: server messages sent while no request is open.
    fn open_get(&self) -> Response {
        let (tx, rx) = mpsc::channel(BACKLOG);
        {
            let mut r = self.routes.lock().unwrap_or_else(|e| e.into_inner());
            while let Some(m) = r.backlog.pop_front() {
                let _ = tx.try_send(m);
            }
            r.get = Some(tx);
        }
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            let m = rx.recv().await?;
            Some((Ok::<_, Infallible>(sse_event(&m)), rx))
        });
        sse_response(Body::from_stream(stream))
    }
}

fn drop_pending(routes: &Mutex<Routes>, key: &str) {
    routes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .pending
        .retain(|(k, _)| k != key);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_go_to_their_request_and_the_rest_to_the_newest_stream() {
        let mut r = Routes::default();
        let (a, mut ra) = mpsc::channel(8);
        let (b, mut rb) = mpsc::channel(8);
        r.pending.push(("1".into(), a));
        r.pending.push(("\"x\"".into(), b));
        r.route(Bytes::from_static(
            br#"{"jsonrpc":"2.0","method":"notifications/progress"}"#,
        ));
        r.route(Bytes::from_static(
            br#"{"jsonrpc":"2.0","id": 1,"result":{}}"#,
        ));
        assert!(
            rb.try_recv()
                .unwrap()
                .starts_with(b"{\"jsonrpc\":\"2.0\",\"method\"")
        );
        assert!(ra.try_recv().unwrap().ends_with(b"\"result\":{}}"));
        assert_eq!(r.pending.len(), 1);
        r.route(Bytes::from_static(b"garbage"));
        r.fail_all();
        let err: Value = serde_json::from_slice(&rb.try_recv().unwrap()).unwrap();
        assert_eq!(err["id"], "x");
        assert_eq!(err["error"]["code"], -32603);
        // With nothing open, server messages wait for the GET stream.
        r.route(Bytes::from_static(
            br#"{"jsonrpc":"2.0","method":"notifications/message"}"#,
        ));
        assert_eq!(r.backlog.len(), 1);
    }

    #[test]
    fn multi_line_json_becomes_one_line() {
        let b = one_line(Bytes::from_static(b"{\n \"a\": 1\n}"));
        assert_eq!(&b[..], br#"{"a":1}"#);
    }

    #[test]
    fn a_get_without_a_session_is_405_for_stateless_clients_and_400_for_the_others() {
        let with = |v: Option<&str>| {
            let mut h = http::HeaderMap::new();
            if let Some(v) = v {
                h.insert("mcp-protocol-version", v.parse().unwrap());
            }
            sessionless(&h)
        };
        assert_eq!(with(Some("2026-07-28")), GatewayError::NoStream);
        for legacy in [
            None,
            Some("2025-11-25"),
            Some("2025-06-18"),
            Some("2024-11-05"),
        ] {
            assert_eq!(with(legacy), GatewayError::SessionRequired, "{legacy:?}");
        }
    }
}
