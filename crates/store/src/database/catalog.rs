//! Operator settings: scopes with their descriptions and the redirect allow-list.

use async_trait::async_trait;
use mcpgate_domain::store::{Catalog, StoreResult};

use crate::timing::timed;

use sqlx::Row;

use super::{Database, Pool};
use crate::notify::Change;
use crate::remembered::List;

#[async_trait]
impl Catalog for Database {
    async fn scopes(&self) -> StoreResult<Vec<(String, String)>> {
        let read = timed("scopes", async move {
            dispatch!(self, pool, {
                let rows = sqlx::query("SELECT name, description FROM scopes ORDER BY name")
                    .fetch_all(pool)
                    .await?;
                Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
            })
        });
        self.remembered.list(List::Scopes, read).await
    }

    async fn upsert_scope(&self, name: &str, description: &str) -> StoreResult<()> {
        timed("upsert_scope", async move {
        notifying!(self, Change::Config, pool, {
            sqlx::query("INSERT INTO scopes (name, description) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET description = $2")
                .bind(name).bind(description).execute(pool).await?;
            Ok(())
        })
    })
        .await
    }

    async fn scope_includes(&self) -> StoreResult<Vec<(String, String)>> {
        let read = timed("scope_includes", async move {
            dispatch!(self, pool, {
                let rows = sqlx::query(
                    "SELECT scope, includes FROM scope_includes ORDER BY scope, includes",
                )
                .fetch_all(pool)
                .await?;
                Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
            })
        });
        self.remembered.list(List::Includes, read).await
    }

    async fn set_scope_includes(&self, scope: &str, includes: &[String]) -> StoreResult<()> {
        timed("set_scope_includes", async move {
            notifying!(self, Change::Config, conn, {
                let mut tx = sqlx::Acquire::begin(conn).await?;
                sqlx::query("DELETE FROM scope_includes WHERE scope = $1")
                    .bind(scope)
                    .execute(&mut *tx)
                    .await?;
                for narrower in includes {
                    sqlx::query("INSERT INTO scope_includes (scope, includes) VALUES ($1, $2)")
                        .bind(scope)
                        .bind(narrower)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            })
        })
        .await
    }

    async fn allowed_redirects(&self) -> StoreResult<Vec<String>> {
        timed("allowed_redirects", async move {
            dispatch!(self, pool, {
                let rows = sqlx::query("SELECT entry FROM allowed_redirects ORDER BY entry")
                    .fetch_all(pool)
                    .await?;
                Ok(rows.iter().map(|r| r.get(0)).collect())
            })
        })
        .await
    }

    async fn allow_redirect(&self, entry: &str, now: i64) -> StoreResult<bool> {
        timed("allow_redirect", async move {
        notifying!(self, Change::Config, pool, {
            let r = sqlx::query("INSERT INTO allowed_redirects (entry, created_at) VALUES ($1, $2) ON CONFLICT (entry) DO NOTHING").bind(entry).bind(now).execute(pool).await?;
            Ok(r.rows_affected() > 0)
        })
    })
        .await
    }

    async fn disallow_redirect(&self, entry: &str) -> StoreResult<bool> {
        timed("disallow_redirect", async move {
            notifying!(self, Change::Config, pool, {
                let r = sqlx::query("DELETE FROM allowed_redirects WHERE entry = $1")
                    .bind(entry)
                    .execute(pool)
                    .await?;
                Ok(r.rows_affected() == 1)
            })
        })
        .await
    }

    async fn mark_seeded(&self, step: &str, now: i64) -> StoreResult<bool> {
        timed("mark_seeded", async move {
            dispatch!(self, pool, {
                let r = sqlx::query(
                    "INSERT INTO seeded (step, at) VALUES ($1, $2) ON CONFLICT (step) DO NOTHING",
                )
                .bind(step)
                .bind(now)
                .execute(pool)
                .await?;
                Ok(r.rows_affected() == 1)
            })
        })
        .await
    }
}
