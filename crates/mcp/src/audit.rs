//! Tool-call audit. The guard reports every `tools/call` decision (who, which client,
//! which tool and operation, allowed or denied) to an [`AuditSink`]; a sink must not
//! block — the deployment decides where records go (a store, the log) off the request
//! path.
//!
//! [`ToolCallTally`] is the sink mcpgate uses: it counts decisions per caller, client,
//! tool, operation and outcome, and hands the counts on once per interval. A busy
//! client costs one record per interval instead of one per call (a row per call cost
//! more than the call itself), and the record still says who did what, how often and
//! when, to the interval.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcpgate_core::ScopeSet;

use crate::principal::Principal;
use mcpgate_core::prehashed::PrehashedMap;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// One `tools/call` decision, borrowed from the request: reporting it allocates
/// nothing unless the sink keeps it.
#[derive(Debug, Clone, Copy)]
pub struct ToolCallEvent<'a> {
    /// Who called: the validator's principal, shared by every call made with one token.
    pub caller: &'a Arc<Principal>,
    pub tool: &'a str,
    /// The value of the argument the scope rule keys on (the calculator's `operation`).
    pub operation: Option<&'a str>,
    pub allowed: bool,
    /// The scopes the call needed.
    pub needed: &'a ScopeSet,
    /// The policy rule that decided ([`crate::policy::Decision::rule`]): the tool's
    /// label in metrics, chosen by the operator's policy, never by the caller.
    pub rule: &'a str,
}

/// Receives audit events. Implementations must return at once.
pub trait AuditSink: Send + Sync + 'static {
    fn tool_call(&self, event: &ToolCallEvent<'_>);
}

/// How many calls of one kind one caller made in an interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCallCount {
    pub subject: String,
    pub username: Option<String>,
    pub client_id: String,
    pub tool: String,
    pub operation: Option<String>,
    pub allowed: bool,
    pub needed: String,
    /// The policy rule that decided: a metric label with bounded values.
    pub rule: String,
    pub count: u64,
}

/// A kind of call as the tally keeps it. The caller is held by its `Arc`, which
/// identifies it cheaply (one token, one `Arc`) and, being held, cannot be reused
/// for another caller while the entry lives.
struct Kind {
    caller: Arc<Principal>,
    tool: Box<str>,
    operation: Option<Box<str>>,
    allowed: bool,
    needed: String,
    rule: Box<str>,
    count: u64,
}

impl Kind {
    fn is(&self, e: &ToolCallEvent<'_>) -> bool {
        Arc::ptr_eq(&self.caller, e.caller)
            && self.allowed == e.allowed
            && *self.tool == *e.tool
            && self.operation.as_deref() == e.operation
    }
}

/// Who (subject, client) made which call (tool, operation) with which outcome.
type KindOfCall = (String, String, Box<str>, Option<Box<str>>, bool);

/// Most distinct kinds of call kept per interval. Callers choose tool names and
/// argument values; past this bound new kinds are only counted, not itemised.
pub const MAX_KINDS: usize = 10_000;

/// Counts of tool-call decisions since the last [`take`](Self::take).
#[derive(Default)]
pub struct ToolCallTally {
    hasher: RandomState,
    inner: Mutex<Tally>,
}

#[derive(Default)]
struct Tally {
    /// Keyed by a hash of the caller's address and the call's fields; the bucket
    /// resolves collisions, so a repeat call compares and allocates nothing.
    kinds: PrehashedMap<Vec<Kind>>,
    len: usize,
    /// Calls of kinds beyond [`MAX_KINDS`].
    unitemised: u64,
}

/// What [`ToolCallTally::take`] returns: the counts, and the calls beyond the bound.
#[derive(Debug, Default)]
pub struct TakenCounts {
    pub counts: Vec<ToolCallCount>,
    pub unitemised: u64,
}

impl ToolCallTally {
    pub fn new() -> Self {
        Self::default()
    }

    fn key(&self, e: &ToolCallEvent<'_>) -> u64 {
        self.hasher.hash_one((
            Arc::as_ptr(e.caller) as usize,
            e.tool,
            e.operation,
            e.allowed,
        ))
    }

    /// Kinds of call counted since the last [`take`](Self::take).
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Everything counted since the last call, leaving the tally empty. Calls one
    /// person made with several tokens are summed into one count.
    pub fn take(&self) -> TakenCounts {
        let tally = std::mem::take(&mut *self.inner.lock().unwrap_or_else(|e| e.into_inner()));
        let mut merged: HashMap<KindOfCall, ToolCallCount> = HashMap::new();
        for k in tally.kinds.into_values().flatten() {
            let p = &k.caller;
            merged
                .entry((
                    p.subject.clone(),
                    p.client_id.clone(),
                    k.tool.clone(),
                    k.operation.clone(),
                    k.allowed,
                ))
                .or_insert_with(|| ToolCallCount {
                    subject: p.subject.clone(),
                    username: p.username.clone(),
                    client_id: p.client_id.clone(),
                    tool: k.tool.to_string(),
                    operation: k.operation.as_deref().map(str::to_owned),
                    allowed: k.allowed,
                    needed: k.needed.clone(),
                    rule: k.rule.to_string(),
                    count: 0,
                })
                .count += k.count;
        }
        TakenCounts {
            counts: merged.into_values().collect(),
            unitemised: tally.unitemised,
        }
    }
}

impl AuditSink for ToolCallTally {
    fn tool_call(&self, e: &ToolCallEvent<'_>) {
        let key = self.key(e);
        let mut t = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(k) = t
            .kinds
            .get_mut(&key)
            .and_then(|b| b.iter_mut().find(|k| k.is(e)))
        {
            k.count += 1;
            return;
        }
        // Past the bound nothing is added, not even an empty bucket.
        if t.len >= MAX_KINDS {
            t.unitemised += 1;
            return;
        }
        t.kinds
            .entry(key)
            .or_insert_with(|| Vec::with_capacity(1))
            .push(Kind {
                caller: e.caller.clone(),
                tool: e.tool.into(),
                operation: e.operation.map(Into::into),
                allowed: e.allowed,
                needed: e.needed.to_string(),
                rule: e.rule.into(),
                count: 1,
            });
        t.len += 1;
    }
}

/// Hands a tally's counts to a writer once per interval, off the request path.
pub struct TallyWriter {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl TallyWriter {
    /// Calls `write` with what `tally` counted, every `every` (when there is anything).
    pub fn spawn<W, Fut>(tally: Arc<ToolCallTally>, every: Duration, write: W) -> Self
    where
        W: Fn(TakenCounts) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let last = tokio::select! {
                    _ = tick.tick() => false,
                    _ = stopped.cancelled() => true,
                };
                let taken = tally.take();
                if !taken.counts.is_empty() || taken.unitemised > 0 {
                    write(taken).await;
                }
                if last {
                    break;
                }
            }
        });
        Self { stop, task }
    }

    /// Writes what is left and ends. Call it after the server has stopped taking
    /// requests, so that no decision is counted after the last write.
    pub async fn finish(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }

    /// [`finish`](Self::finish), waiting at most `limit`: a store that does not answer
    /// must not hold a shutdown.
    pub async fn finish_within(self, limit: Duration) {
        if tokio::time::timeout(limit, self.finish()).await.is_err() {
            tracing::warn!(
                target: "mcpgate::audit",
                "the last tool-call audit write did not finish within {limit:?}"
            );
        }
    }
}

/// A writer for deployments without a store: one log line per kind of call.
pub async fn log_counts(taken: TakenCounts) {
    for c in &taken.counts {
        tracing::info!(
            target: "mcpgate::audit",
            event = "tool_calls",
            subject = %c.subject,
            user = c.username.as_deref().unwrap_or(&c.subject),
            client_id = %c.client_id,
            tool = %c.tool,
            operation = c.operation.as_deref().unwrap_or("-"),
            allowed = c.allowed,
            count = c.count,
            "{} {} call(s) of {} {}",
            c.count,
            if c.allowed { "allowed" } else { "denied" },
            c.tool,
            c.operation.as_deref().unwrap_or(""),
        );
    }
    warn_unitemised(taken.unitemised);
}

/// Says, in the log, how many calls were counted without being itemised.
pub fn warn_unitemised(n: u64) {
    if n > 0 {
        tracing::warn!(
            target: "mcpgate::audit",
            calls = n,
            "{n} tool call(s) of kinds beyond the audit bound were not itemised"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(subject: &str) -> Arc<Principal> {
        Arc::new(Principal {
            subject: subject.into(),
            username: Some("alice".into()),
            email: None,
            client_id: "client-1".into(),
            scopes: ScopeSet::new(),
            session_id: None,
            expires_at: 0,
            jkt: None,
        })
    }

    fn event<'a>(
        caller: &'a Arc<Principal>,
        op: &'a str,
        allowed: bool,
        needed: &'a ScopeSet,
    ) -> ToolCallEvent<'a> {
        ToolCallEvent {
            caller,
            tool: "calculator",
            operation: Some(op),
            allowed,
            needed,
            rule: "calculator",
        }
    }

    #[test]
    fn counts_per_kind_and_empties_on_take() {
        let tally = ToolCallTally::new();
        let add = ScopeSet::parse("op:add").unwrap();
        let div = ScopeSet::parse("op:div").unwrap();
        let (u1, u1_other_token, u2) = (caller("u1"), caller("u1"), caller("u2"));
        for _ in 0..2 {
            tally.tool_call(&event(&u1, "add", true, &add));
        }
        tally.tool_call(&event(&u1_other_token, "add", true, &add));
        tally.tool_call(&event(&u1, "divide", false, &div));
        tally.tool_call(&event(&u2, "add", true, &add));
        let mut taken = tally.take().counts;
        taken.sort_by(|a, b| (&a.subject, &a.operation).cmp(&(&b.subject, &b.operation)));
        let summary: Vec<_> = taken
            .iter()
            .map(|c| {
                (
                    c.subject.as_str(),
                    c.operation.as_deref().unwrap(),
                    c.allowed,
                    c.needed.as_str(),
                    c.count,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("u1", "add", true, "op:add", 3),
                ("u1", "divide", false, "op:div", 1),
                ("u2", "add", true, "op:add", 1)
            ]
        );
        assert_eq!(taken[0].username.as_deref(), Some("alice"));
        assert!(tally.take().counts.is_empty());
    }

    #[test]
    fn kinds_are_bounded() {
        let tally = ToolCallTally::new();
        let none = ScopeSet::new();
        let u = caller("u");
        let ops: Vec<String> = (0..MAX_KINDS + 5).map(|i| format!("op{i}")).collect();
        for op in &ops {
            tally.tool_call(&event(&u, op, true, &none));
        }
        // A kind already itemised is still counted once the bound is reached.
        tally.tool_call(&event(&u, "op0", true, &none));
        for op in &ops {
            tally.tool_call(&event(&u, &format!("x{op}"), true, &none));
        }
        assert_eq!(
            tally.inner.lock().unwrap().kinds.len(),
            MAX_KINDS,
            "calls past the bound leave nothing behind, not even an empty bucket"
        );
        assert_eq!(tally.len(), MAX_KINDS);
        let taken = tally.take();
        assert_eq!(taken.counts.len(), MAX_KINDS);
        assert_eq!(taken.unitemised, 5 + ops.len() as u64);
        assert!(tally.is_empty());
        let op0 = taken
            .counts
            .iter()
            .find(|c| c.operation.as_deref() == Some("op0"))
            .unwrap();
        assert_eq!(op0.count, 2);
    }
}
