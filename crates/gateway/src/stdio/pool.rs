//! The stateless pool: 2026-07-28 requests to a stdio upstream. A modern request
//! carries everything it needs (`basic/index.mdx`, "Statelessness"), so any process
//! can serve it; a stdio process serves one client, so each request borrows one
//! process for as long as its answer streams, then gives it back.
//!
//! The gateway starts each pooled process itself and initializes it once as its
//! client (`initialize` of 2025-11-25 with no client capabilities: a stateless client
//! cannot answer sampling or elicitation). The pool is bounded (`pool_size`), and a
//! request waits for a free process at most `pool_wait_ms`, then gets 503 with a
//! JSON-RPC error, never a hang. Each borrowed request goes out under an id of the
//! gateway's, so that a late answer to an earlier borrower's request (one that timed
//! out) can never pass for the current one's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderMap, StatusCode, header};
use mcpgate_mcp::Principal;
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Session;
use super::modern::{self, Shape};
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
    /// Initialized processes not lent out (a dead one is restarted on its next loan).
    idle: Mutex<Vec<Arc<Session>>>,
    /// One permit per process the pool may run.
    permits: Arc<Semaphore>,
}

/// A process on loan; given back when the answer has been sent (or abandoned).
struct Lease {
    inner: Arc<Inner>,
    session: Option<Arc<Session>>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            self.inner
                .idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(s);
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
                idle: Mutex::new(Vec::new()),
                permits: Arc::new(Semaphore::new(cfg.pool_size)),
            }),
            cfg,
            next: AtomicU64::new(1),
        }
    }

    /// Processes started so far and not lent out.
    pub fn idle(&self) -> usize {
        self.inner
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Borrows a process: an idle one, or a new one while the pool has room.
    async fn borrow(&self) -> Result<Lease, GatewayError> {
        let permit = tokio::time::timeout(
            self.cfg.pool_wait(),
            self.inner.permits.clone().acquire_owned(),
        )
        .await
        .map_err(|_| GatewayError::PoolBusy)?
        .map_err(|_| GatewayError::PoolBusy)?;
        let idle = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop();
        let session = idle
            .unwrap_or_else(|| Session::new(String::new(), self.cfg.clone(), gateway_initialize()));
        Ok(Lease {
            inner: self.inner.clone(),
            session: Some(session),
            _permit: permit,
        })
    }

    /// Serves one 2026-07-28 request (`msg`, already known to carry modern `_meta`).
    pub async fn handle(
        &self,
        up: &Upstream,
        p: &Principal,
        headers: &HeaderMap,
        mut msg: Value,
    ) -> Response {
        let method = match modern::check(&msg, headers) {
            Ok(m) => m,
            Err(r) => return json_response(r.status, &r.body),
        };
        let Some(client_id) = msg.get("id").cloned() else {
            // A notification: with no request in flight on this borrow-per-request
            // pool, there is nothing for it to act on.
            return StatusCode::ACCEPTED.into_response();
        };
        let lease = match self.borrow().await {
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
            let result = modern::discover(&init);
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
        let shape = Shape {
            client_id: Some(client_id),
            modern: true,
            method,
            filter,
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
