//! The guard's long-lived state, kept in check off the request path.
//!
//! Caches of verified tokens hold an entry per token until it expires. Entries are
//! dropped by a periodic sweep, not on the request path, so that a cache hit stays a
//! lookup. The same task logs the sizes of what it keeps, on the `mcpgate::memory`
//! target at debug level (a JSON object in the field `sizes`), which is how a long run
//! (`./scripts/bench soak`) sees them; nothing is computed unless that level is on.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::validator::TokenValidator;

/// Entries of a cache and the heap bytes they hold (approximately: payloads and the
/// allocations that carry them, not the map's own table).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheSize {
    pub entries: usize,
    pub bytes: usize,
}

/// How often expired entries are swept and sizes logged.
pub const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(5);

/// Every `every` until `cancel`: sweeps `validator`'s cache, and, when the
/// `mcpgate::memory` target is enabled at debug, logs its size with what `more` adds.
pub fn spawn_housekeeping<F>(
    validator: Arc<dyn TokenValidator>,
    every: Duration,
    cancel: CancellationToken,
    more: F,
) where
    F: Fn(&mut Map<String, Value>) + Send + 'static,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! { _ = cancel.cancelled() => break, _ = tick.tick() => {} }
            validator.sweep();
            if tracing::enabled!(target: "mcpgate::memory", tracing::Level::DEBUG) {
                let c = validator.cache_size();
                let mut sizes = Map::new();
                sizes.insert("token_cache_entries".into(), c.entries.into());
                sizes.insert("token_cache_bytes".into(), c.bytes.into());
                more(&mut sizes);
                let sizes = Value::Object(sizes);
                tracing::debug!(target: "mcpgate::memory", %sizes, "sizes");
            }
        }
    });
}
