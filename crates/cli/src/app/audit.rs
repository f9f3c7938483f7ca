//! The process's tool-call audit: one tally that every guard reports to, handed on
//! once per interval (off the request path) to the audit record, or to the log where
//! there is no store (`mcpgate mcp`), and to the metrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use mcpgate_core::clock::Clock;
use mcpgate_domain::audit::Event;
use mcpgate_domain::model::AuditRow;
use mcpgate_domain::store::Store;
use mcpgate_mcp::audit::{AuditSink, TakenCounts, log_counts};
use mcpgate_mcp::{TallyWriter, ToolCallTally};

pub struct ToolCallAudit {
    tally: Arc<ToolCallTally>,
    writer: TallyWriter,
}

impl ToolCallAudit {
    /// Counts written to `store` every `every`, each write covering the time since the
    /// previous one. `gateway`: tool names are `<upstream>/<tool>`.
    pub fn to_store(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        every: Duration,
        gateway: bool,
    ) -> Self {
        let tally = Arc::new(ToolCallTally::new());
        let last = AtomicI64::new(clock.now());
        let writer = TallyWriter::spawn(tally.clone(), every, move |taken| {
            let now = clock.now();
            let since = last.swap(now, Ordering::Relaxed);
            crate::observe::metrics::add_tool_calls(&taken, gateway);
            write_counts(store.clone(), now, since, taken)
        });
        Self { tally, writer }
    }

    /// Counts written to the log, a line per kind of call.
    pub fn to_log(every: Duration) -> Self {
        let tally = Arc::new(ToolCallTally::new());
        let writer = TallyWriter::spawn(tally.clone(), every, |taken| {
            crate::observe::metrics::add_tool_calls(&taken, false);
            log_counts(taken)
        });
        Self { tally, writer }
    }

    /// Where a guard reports its decisions.
    pub fn sink(&self) -> Arc<dyn AuditSink> {
        self.tally.clone()
    }

    /// Kinds of call counted and not yet written (for a long run's log).
    pub fn pending_kinds(&self) -> usize {
        self.tally.len()
    }

    /// The tally, for sizes logged beside a guard's caches.
    pub fn tally(&self) -> Arc<ToolCallTally> {
        self.tally.clone()
    }

    /// Writes what is left, waiting at most `limit` for the store; call it once the
    /// server has stopped taking requests.
    pub async fn finish_within(self, limit: Duration) {
        self.writer.finish_within(limit).await;
    }
}

/// Writes tool-call counts to the store, one row per kind of call; `since` is when
/// the counting began.
async fn write_counts(store: Arc<dyn Store>, now: i64, since: i64, taken: TakenCounts) {
    let rows: Vec<_> = taken
        .counts
        .into_iter()
        .map(|c| {
            let (event, detail) = Event::ToolCalls {
                tool: c.tool,
                operation: c.operation,
                allowed: c.allowed,
                needed: c.needed,
                username: c.username,
                count: c.count,
                since,
            }
            .record();
            AuditRow {
                at: now,
                event,
                user_id: Some(c.subject),
                client_id: Some(c.client_id),
                detail,
            }
        })
        .collect();
    if let Err(e) = store.audit_batch(&rows).await {
        tracing::error!(error = %e, "writing tool-call audit records failed");
    }
    mcpgate_mcp::audit::warn_unitemised(taken.unitemised);
}
