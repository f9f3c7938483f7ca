//! Tool-call audit events. The guard reports every `tools/call` decision (who, which
//! client, which tool and operation, allowed or denied) to an [`AuditSink`]; a sink
//! must not block — the deployment decides where events go (a store, a log pipeline)
//! off the request path.

/// One `tools/call` decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCallEvent {
    pub subject: String,
    pub username: Option<String>,
    pub client_id: String,
    pub tool: String,
    /// The value of the argument the scope rule keys on (the calculator's `operation`).
    pub operation: Option<String>,
    pub allowed: bool,
    /// The scopes the call needed.
    pub needed: String,
}

/// Receives audit events. Implementations must return at once.
pub trait AuditSink: Send + Sync + 'static {
    fn tool_call(&self, event: ToolCallEvent);
}
