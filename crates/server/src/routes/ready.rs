//! `GET /readyz`: whether this instance can serve correctly now (`/healthz` only says
//! it is alive). 200 when the database answers, the keys are loaded and changes made
//! elsewhere reach it at once; otherwise 503 naming what is wrong, so that a balancer
//! can route around an instance that would accept a token revoked elsewhere for up to
//! one poll period.
//!
//! The endpoint needs no credentials, so it must not cost a database round trip per
//! call: the ping's answer is shared by every probe for [`PING_REUSE`] ([`DbProbe`]),
//! so a flood of probes costs at most one ping per interval, and a database that goes
//! away still turns the answer to 503 within that interval (plus the ping's timeout).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{StatusCode, header};
use mcpgate_domain::store::Store;
use serde_json::json;

use crate::state::AuthServer;
use crate::sync::NotifyState;

/// A database slower than this to answer `SELECT 1` is reported unreachable.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// How long one ping's answer serves every probe.
pub const PING_REUSE: Duration = Duration::from_secs(1);

/// The last database ping and when it was made, shared by every probe.
#[derive(Debug, Default)]
pub struct DbProbe {
    /// Held while a ping is under way, so that probes arriving meanwhile wait for its
    /// answer instead of starting their own.
    last: tokio::sync::Mutex<Option<(Instant, bool)>>,
    /// Pings made so far (for tests and the log).
    pings: AtomicU64,
}

impl DbProbe {
    /// Whether the database answers: the last answer if younger than [`PING_REUSE`],
    /// else a new ping.
    pub async fn database_ok(&self, store: &dyn Store) -> bool {
        let mut last = self.last.lock().await;
        if let Some((at, ok)) = *last
            && at.elapsed() < PING_REUSE
        {
            return ok;
        }
        self.pings.fetch_add(1, Ordering::Relaxed);
        let ok = matches!(
            tokio::time::timeout(PING_TIMEOUT, store.ping()).await,
            Ok(Ok(()))
        );
        *last = Some((Instant::now(), ok));
        ok
    }

    /// How many pings have been made.
    pub fn pings(&self) -> u64 {
        self.pings.load(Ordering::Relaxed)
    }
}

pub fn router() -> Router<AuthServer> {
    Router::new().route("/readyz", get(handle))
}

async fn handle(State(s): State<AuthServer>) -> Response {
    let db_ok = s.db_probe.database_ok(s.auth.store.as_ref()).await;
    let keys_ok = !s.auth.keys.kids().is_empty();
    let notify = s.notifications.get();
    let ready = db_ok && keys_ok && matches!(notify, NotifyState::Connected | NotifyState::NotUsed);
    let body = json!({
        "database": if db_ok { "ok" } else { "unreachable" },
        "keys": if keys_ok { "loaded" } else { "missing" },
        "notifications": notify.as_str(),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(body),
    )
        .into_response()
}
