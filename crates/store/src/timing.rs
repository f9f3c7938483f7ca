//! Timing and tracing of store steps: [`timed`] runs one step in a debug-level span
//! (exported only when traces are), records its duration in
//! `mcpgate_db_step_duration_seconds{step}` (a no-op without a metrics recorder), and
//! hands its error over as the domain's [`StoreError`]: the one place a step's result
//! leaves this crate.

use std::future::Future;
use std::time::Instant;

use mcpgate_domain::store::{StoreError, StoreResult};

use crate::database::Error;
use tracing::Instrument;

/// Runs `fut`, the store step named `name`, timed and in its own span.
pub(crate) async fn timed<T>(
    name: &'static str,
    fut: impl Future<Output = Result<T, Error>>,
) -> StoreResult<T> {
    let start = Instant::now();
    let span = tracing::debug_span!(target: "mcpgate::store", "store", otel.name = name, db.operation.name = name);
    let out = fut.instrument(span).await;
    metrics::histogram!("mcpgate_db_step_duration_seconds", "step" => name).record(start.elapsed());
    out.map_err(StoreError::from)
}
