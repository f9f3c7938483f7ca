//! The steps of clients' connections, for the connection doctor: written in batches,
//! bounded per client and in total, and forgotten after a week.

use async_trait::async_trait;

use super::StoreResult;
use crate::model::*;

/// How long a step is kept.
pub const STEPS_KEPT_SECS: i64 = 7 * 86_400;
/// Most steps kept per client (the newest).
pub const STEPS_PER_CLIENT: i64 = 100;
/// Most steps kept in all (the newest).
pub const STEPS_IN_ALL: i64 = 50_000;

#[async_trait]
pub trait Diagnostics: Send + Sync {
    async fn record_steps(&self, steps: &[ClientStep]) -> StoreResult<()>;

    /// A client's steps, oldest first: its newest `limit`.
    async fn client_steps(&self, client_id: &str, limit: i64) -> StoreResult<Vec<ClientStep>>;

    /// Clients with a step since `since`, the most recently active first.
    async fn clients_with_steps(&self, since: i64, limit: i64) -> StoreResult<Vec<String>>;

    /// Forgets steps older than `before`, and beyond the per-client and total bounds.
    async fn prune_steps(&self, before: i64) -> StoreResult<()>;
}
