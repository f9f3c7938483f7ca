//! The audit record: events written one by one or in batches (tool-call counts).

use async_trait::async_trait;

use super::StoreResult;
use crate::model::*;

#[async_trait]
pub trait AuditLog: Send + Sync {
    async fn audit(
        &self,
        at: i64,
        event: &str,
        user_id: Option<&str>,
        client_id: Option<&str>,
        detail: &serde_json::Value,
    ) -> StoreResult<()>;

    /// Writes many events with one multi-row INSERT per 200 rows.
    async fn audit_batch(&self, events: &[AuditRow]) -> StoreResult<()>;
}
