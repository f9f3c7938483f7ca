//! `GET /readyz`: whether this instance can serve correctly now (`/healthz` only says
//! it is alive). 200 when the database answers, the keys are loaded and changes made
//! elsewhere reach it at once; otherwise 503 naming what is wrong, so that a balancer
//! can route around an instance that would accept a token revoked elsewhere for up to
//! one poll period.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{StatusCode, header};
use serde_json::json;

use crate::state::AuthServer;
use crate::sync::NotifyState;

/// A database slower than this to answer `SELECT 1` is reported unreachable.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

pub fn router() -> Router<AuthServer> {
    Router::new().route("/readyz", get(handle))
}

async fn handle(State(s): State<AuthServer>) -> Response {
    let db_ok = matches!(
        tokio::time::timeout(PING_TIMEOUT, s.store.ping()).await,
        Ok(Ok(()))
    );
    let keys_ok = !s.keys.kids().is_empty();
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
