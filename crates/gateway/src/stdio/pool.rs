//! The stateless pool: 2026-07-28 requests to a stdio upstream. A modern request
//! carries everything it needs (`basic/index.mdx`, "Statelessness"), so any process
//! can serve it; a stdio process serves one client, so each request borrows one
//! process for as long as its answer streams, then gives it back.
//!
//! **A process is lent to one person only.** A stdio server keeps whatever state it
//! keeps (notes, open files, a browser's session) for its one client; a process one
//! person used, lent to another, lets the second read what the first left. So idle
//! processes wait for the person who used them, each person holds at most
//! `pool_per_person` of the `pool_size` processes, and a person with room but no free
//! process takes the place of someone else's idle one (that process is stopped, not
//! lent). An upstream whose server keeps no state between requests may share its
//! processes (`shared_pool = true`), at its operator's word.
//!
//! The gateway starts each pooled process itself and initializes it once as its
//! client (`initialize` of 2025-11-25 with no client capabilities: a stateless client
//! cannot answer sampling or elicitation). The pool is bounded, and a request waits
//! for a free process at most `pool_wait_ms`, then gets 503 with a JSON-RPC error,
//! never a hang. Each borrowed request goes out under an id of the gateway's, so that
//! a late answer to an earlier borrower's request (one that timed out) can never pass
//! for the current one's, and only the notifications of the current request reach its
//! client ([`Shape::progress_token`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderMap, StatusCode, header};
use mcpgate_mcp::Principal;
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::Session;
use super::stateless::{self, Shape};
use crate::Upstream;
use crate::config::UpstreamConfig;
use crate::errors::GatewayError;

pub struct Pool {
    cfg: Arc<UpstreamConfig>,
    inner: Arc<Inner>,
    /// Numbers the gateway's own request ids.
    next: AtomicU64,
}

struct Inner {
    state: Mutex<State>,
    /// Woken when a process is given back or stopped.
    freed: Notify,
}

#[derive(Default)]
struct State {
    /// Initialized processes not lent out, by the person they serve (`""` in a
    /// shared pool), with when each was given back. A dead one restarts on its
    /// next loan.
    idle: HashMap<String, Vec<(Arc<Session>, Instant)>>,
    /// Processes alive (idle or lent) per person.
    held: HashMap<String, usize>,
    /// Processes alive in all.
    total: usize,
}

impl State {
    fn release(&mut self, owner: &str) {
        self.total = self.total.saturating_sub(1);
        if let Some(n) = self.held.get_mut(owner) {
            *n -= 1;
            if *n == 0 {
                self.held.remove(owner);
            }
        }
    }

    /// Stops someone else's least recently used idle process, making room.
    fn evict_idle_of_others(&mut self, owner: &str) -> bool {
        let oldest = self
            .idle
            .iter()
            .filter(|(o, v)| *o != owner && !v.is_empty())
            .filter_map(|(o, v)| v.first().map(|(_, at)| (o.clone(), *at)))
            .min_by_key(|(_, at)| *at);
        let Some((other, _)) = oldest else {
            return false;
        };
        let list = self.idle.get_mut(&other).expect("found above");
        list.remove(0);
        if list.is_empty() {
            self.idle.remove(&other);
        }
        self.release(&other);
        true
    }
}

/// A process on loan; given back when the answer has been sent (or abandoned).
struct Lease {
    inner: Arc<Inner>,
    owner: String,
    session: Option<Arc<Session>>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            let mut st = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
            st.idle
                .entry(self.owner.clone())
                .or_default()
                .push((s, Instant::now()));
            drop(st);
            self.inner.freed.notify_waiters();
        }
    }
}

/// A request lent a process and not answered yet. In 2026-07-28 a client that closes
/// its HTTP response has cancelled the request ("The server MUST treat a client
/// disconnect as cancellation of that request"); over stdio a cancellation is a
/// `notifications/cancelled` naming the request (MCP "Cancellation",
/// "Transport-Specific Cancellation"). So one dropped before its answer ended tells the
/// process, which may then stop the work. Its id is the gateway's own, used once, so
/// the notice can never cancel a later borrower's request.
struct InFlight {
    session: Arc<Session>,
    /// The request's id until its answer has been streamed to the end.
    unanswered: Option<Value>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let Some(id) = self.unanswered.take() else {
            return;
        };
        let session = self.session.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { session.cancel(&id, "the client went away").await });
        }
    }
}

/// The gateway's own `initialize`, as a client without capabilities.
fn gateway_initialize() -> Bytes {
    Bytes::from(
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "mcpgate", "version": env!("CARGO_PKG_VERSION")}
        }})
        .to_string(),
    )
}

impl Pool {
    pub fn new(cfg: Arc<UpstreamConfig>) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::default(),
                freed: Notify::new(),
            }),
            cfg,
            next: AtomicU64::new(1),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Processes started so far and not lent out.
    pub fn idle(&self) -> usize {
        self.state().idle.values().map(Vec::len).sum()
    }

    /// Stops processes idle longer than `idle`.
    pub fn reap(&self, idle: Duration) {
        let mut st = self.state();
        let mut stopped = Vec::new();
        for (owner, list) in st.idle.iter_mut() {
            let before = list.len();
            list.retain(|(_, at)| at.elapsed() < idle);
            stopped.extend(std::iter::repeat_n(owner.clone(), before - list.len()));
        }
        st.idle.retain(|_, l| !l.is_empty());
        for owner in stopped {
            st.release(&owner);
        }
        drop(st);
        self.inner.freed.notify_waiters();
    }

    /// Borrows a process for `subject`: one of theirs that is idle, or a new one while
    /// they hold less than their share (in place of someone else's idle process when
    /// the pool is full); else waits for one of theirs, at most `pool_wait`.
    async fn borrow(&self, subject: &str, env: &[(String, String)]) -> Result<Lease, GatewayError> {
        let owner = match self.cfg.shared_pool {
            true => String::new(),
            false => subject.to_owned(),
        };
        let per_person = match self.cfg.shared_pool {
            true => self.cfg.pool_size,
            false => self.cfg.pool_per_person(),
        };
        let deadline = tokio::time::Instant::now() + self.cfg.pool_wait();
        loop {
            let freed = self.inner.freed.notified();
            {
                let mut st = self.state();
                // An idle process started with another secret of the person's (they
                // connected anew) is stopped, not lent.
                while st
                    .idle
                    .get(&owner)
                    .and_then(|l| l.last())
                    .is_some_and(|(s, _)| s.env != env)
                {
                    st.idle.get_mut(&owner).and_then(Vec::pop);
                    st.release(&owner);
                }
                let session = match st.idle.get_mut(&owner).and_then(Vec::pop) {
                    Some((s, _)) => Some(s),
                    None if st.held.get(&owner).copied().unwrap_or(0) < per_person
                        && (st.total < self.cfg.pool_size || st.evict_idle_of_others(&owner)) =>
                    {
                        st.total += 1;
                        *st.held.entry(owner.clone()).or_default() += 1;
                        Some(Session::new(
                            owner.clone(),
                            self.cfg.clone(),
                            gateway_initialize(),
                            env.to_vec(),
                        ))
                    }
                    None => None,
                };
                if let Some(session) = session {
                    return Ok(Lease {
                        inner: self.inner.clone(),
                        owner,
                        session: Some(session),
                    });
                }
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return Err(GatewayError::PoolBusy);
            }
        }
    }

    /// Serves one 2026-07-28 request (`msg`, already known to carry modern `_meta`).
    pub async fn handle(
        &self,
        up: &Upstream,
        p: &Principal,
        headers: &HeaderMap,
        mut msg: Value,
        env: Vec<(String, String)>,
    ) -> Response {
        let method = match stateless::check(&msg, headers) {
            Ok(m) => m,
            Err(r) => return json_response(r.status, &r.body),
        };
        let Some(client_id) = msg.get("id").cloned() else {
            // A notification: with no request in flight on this borrow-per-request
            // pool, there is nothing for it to act on.
            return StatusCode::ACCEPTED.into_response();
        };
        let lease = match self.borrow(&p.subject, &env).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(upstream = up.name(), "stateless pool exhausted");
                return e.respond(Some(&client_id));
            }
        };
        let session = lease.session.clone().expect("a lease holds its session");
        if method == "server/discover" {
            // Answered from the process's InitializeResult (started now if need be).
            if let Err(e) = session.process(true).await {
                return e.respond(Some(&client_id));
            }
            let init = session
                .init_result
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let Some(init) = init else {
                return GatewayError::BadGateway.respond(Some(&client_id));
            };
            let result = stateless::discover(&init);
            return json_response(
                StatusCode::OK,
                &json!({"jsonrpc": "2.0", "id": client_id, "result": result}),
            );
        }
        let ours = Value::from(format!(
            "mcpgate-pool-{}",
            self.next.fetch_add(1, Ordering::Relaxed)
        ));
        msg["id"] = ours.clone();
        let filter = up
            .policy
            .narrows(&method)
            .then(|| (up.policy.clone(), p.scopes.clone()));
        let progress_token = msg.pointer("/params/_meta/progressToken").cloned();
        let shape = Shape {
            client_id: Some(client_id),
            modern: true,
            method,
            filter,
            progress_token,
        };
        let body = Bytes::from(msg.to_string());
        // Armed before the request goes out: a client gone while it waits for the
        // first message cancels it too.
        let mut in_flight = InFlight {
            session: session.clone(),
            unanswered: Some(ours.clone()),
        };
        let resp = session.request(up, body, Some(ours), true, shape).await;
        // The process goes back to the pool once the answer is sent or abandoned; an
        // answer streamed to its end needs no cancellation.
        let (parts, body) = resp.into_parts();
        let mut data = body.into_data_stream();
        let mut held = Some(lease);
        let stream = futures_util::stream::poll_fn(move |cx| {
            let next = data.poll_next_unpin(cx);
            if let std::task::Poll::Ready(None) = next {
                in_flight.unanswered.take();
                held.take();
            }
            next
        });
        Response::from_parts(parts, Body::from_stream(stream))
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
