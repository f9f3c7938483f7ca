//! The steps of clients' connections (the connection doctor's record).

use async_trait::async_trait;
use mcpgate_domain::store::{Diagnostics, STEPS_IN_ALL, STEPS_PER_CLIENT, StoreResult};
use sqlx::Row;

use super::{Database, Pool};
use crate::model::*;
use crate::timing::timed;

/// Rows per multi-row INSERT (each row binds 5 values).
const BATCH: usize = 200;

#[async_trait]
impl Diagnostics for Database {
    async fn record_steps(&self, steps: &[ClientStep]) -> StoreResult<()> {
        timed("record_steps", async move {
            for chunk in steps.chunks(BATCH) {
                let mut sql = String::from(
                    "INSERT INTO client_steps (client_id, at, step, outcome, detail) VALUES ",
                );
                for i in 0..chunk.len() {
                    let b = i * 5;
                    if i > 0 {
                        sql.push_str(", ");
                    }
                    sql.push_str(&format!(
                        "(${}, ${}, ${}, ${}, ${})",
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4,
                        b + 5
                    ));
                }
                dispatch!(self, pool, {
                    // Only placeholders are interpolated; every value is bound.
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
                    for s in chunk {
                        q = q
                            .bind(&s.client_id)
                            .bind(s.at)
                            .bind(s.step.as_str())
                            .bind(s.outcome.as_str())
                            .bind(&s.detail);
                    }
                    q.execute(pool).await?;
                });
            }
            Ok(())
        })
        .await
    }

    async fn client_steps(&self, client_id: &str, limit: i64) -> StoreResult<Vec<ClientStep>> {
        timed("client_steps", async move {
            dispatch!(self, pool, {
                let rows = sqlx::query(
                    "SELECT client_id, at, step, outcome, detail FROM client_steps \
                     WHERE client_id = $1 ORDER BY seq DESC LIMIT $2",
                )
                .bind(client_id)
                .bind(limit)
                .fetch_all(pool)
                .await?;
                let mut out: Vec<ClientStep> = rows
                    .iter()
                    .filter_map(|r| {
                        Some(ClientStep {
                            client_id: r.get(0),
                            at: r.get(1),
                            step: StepKind::parse(r.get(2))?,
                            outcome: Outcome::parse(r.get(3))?,
                            detail: r.get(4),
                        })
                    })
                    .collect();
                out.reverse();
                Ok(out)
            })
        })
        .await
    }

    async fn clients_with_steps(&self, since: i64, limit: i64) -> StoreResult<Vec<String>> {
        timed("clients_with_steps", async move {
            dispatch!(self, pool, {
                let rows = sqlx::query(
                    "SELECT client_id FROM client_steps WHERE at >= $1 \
                     GROUP BY client_id ORDER BY MAX(seq) DESC LIMIT $2",
                )
                .bind(since)
                .bind(limit)
                .fetch_all(pool)
                .await?;
                Ok(rows.iter().map(|r| r.get(0)).collect())
            })
        })
        .await
    }

    async fn prune_steps(&self, before: i64) -> StoreResult<()> {
        timed("prune_steps", async move {
            dispatch!(self, pool, {
                sqlx::query("DELETE FROM client_steps WHERE at < $1")
                    .bind(before)
                    .execute(pool)
                    .await?;
                sqlx::query(
                    "DELETE FROM client_steps WHERE seq IN (SELECT seq FROM (SELECT seq, \
                     ROW_NUMBER() OVER (PARTITION BY client_id ORDER BY seq DESC) AS n \
                     FROM client_steps) ranked WHERE n > $1)",
                )
                .bind(STEPS_PER_CLIENT)
                .execute(pool)
                .await?;
                sqlx::query(
                    "DELETE FROM client_steps WHERE seq <= (SELECT MAX(seq) FROM client_steps) - $1",
                )
                .bind(STEPS_IN_ALL)
                .execute(pool)
                .await?;
                Ok(())
            })
        })
        .await
    }
}
