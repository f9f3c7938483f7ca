//! Timing and tracing of store steps: [`step`] wraps one store method's future in a
//! debug-level span (exported only when traces are) and records its duration in
//! `mcpgate_db_step_duration_seconds{step}` (a no-op without a metrics recorder).

use std::future::Future;
use std::time::Instant;

use tracing::Instrument;

/// Runs `fut`, one store step named `name`, timed and in its own span.
pub async fn step<T>(name: &'static str, fut: impl Future<Output = T>) -> T {
    let start = Instant::now();
    let span = tracing::debug_span!(target: "mcpgate::store", "store", otel.name = name, db.operation.name = name);
    let out = fut.instrument(span).await;
    metrics::histogram!("mcpgate_db_step_duration_seconds", "step" => name).record(start.elapsed());
    out
}
