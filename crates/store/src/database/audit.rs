//! The audit log: events written one by one or in batches, and read back.

use async_trait::async_trait;
use mcpgate_domain::store::{AuditLog, StoreResult};

use crate::timing::timed;

use super::{Database, Pool};
use crate::model::*;

#[async_trait]
impl AuditLog for Database {
    async fn audit(
        &self,
        at: i64,
        event: &str,
        user_id: Option<&str>,
        client_id: Option<&str>,
        detail: &serde_json::Value,
    ) -> StoreResult<()> {
        timed("audit", async move {
        dispatch!(self, pool, {
            sqlx::query("INSERT INTO audit_events (at, event, user_id, client_id, detail) VALUES ($1, $2, $3, $4, $5)")
                .bind(at).bind(event).bind(user_id).bind(client_id).bind(detail.to_string()).execute(pool).await?;
            Ok(())
        })
    })
        .await
    }

    async fn audit_batch(&self, events: &[AuditRow]) -> StoreResult<()> {
        timed("audit_batch", async move {
            for chunk in events.chunks(200) {
                let placeholders: Vec<String> = (0..chunk.len())
                    .map(|i| {
                        format!(
                            "(${}, ${}, ${}, ${}, ${})",
                            i * 5 + 1,
                            i * 5 + 2,
                            i * 5 + 3,
                            i * 5 + 4,
                            i * 5 + 5
                        )
                    })
                    .collect();
                // Only generated placeholders are interpolated; every value is bound.
                let sql = format!(
                    "INSERT INTO audit_events (at, event, user_id, client_id, detail) VALUES {}",
                    placeholders.join(", ")
                );
                dispatch!(self, pool, {
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
                    for r in chunk {
                        q = q
                            .bind(r.at)
                            .bind(&r.event)
                            .bind(&r.user_id)
                            .bind(&r.client_id)
                            .bind(r.detail.to_string());
                    }
                    q.execute(pool).await?;
                });
            }
            Ok(())
        })
        .await
    }
}
