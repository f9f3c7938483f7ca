//! Browser sessions and per-name sign-in throttling.

use async_trait::async_trait;
use mcpgate_domain::store::{Sessions, StoreResult};

use crate::timing::timed;

use super::{Database, Pool};
use crate::model::*;

#[async_trait]
impl Sessions for Database {
    async fn insert_session(
        &self,
        id_hash: &str,
        user_id: &str,
        now: i64,
        expires_at: i64,
    ) -> StoreResult<()> {
        timed("insert_session", async move {
        dispatch!(self, pool, {
            sqlx::query("INSERT INTO sessions (id_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)").bind(id_hash).bind(user_id).bind(now).bind(expires_at).execute(pool).await?;
            Ok(())
        })
    })
        .await
    }

    async fn session_user(&self, id_hash: &str, now: i64) -> StoreResult<Option<User>> {
        timed("session_user", async move {
        dispatch!(self, pool, {
            Ok(sqlx::query_as::<_, UserRow>("SELECT u.* FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = $1 AND s.expires_at > $2 AND NOT u.disabled")
                .bind(id_hash).bind(now).fetch_optional(pool).await?.map(Into::into))
        })
    })
        .await
    }

    async fn delete_session(&self, id_hash: &str) -> StoreResult<()> {
        timed("delete_session", async move {
            dispatch!(self, pool, {
                sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
                    .bind(id_hash)
                    .execute(pool)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn delete_sessions_of(&self, user_id: &str, keep: Option<&str>) -> StoreResult<u64> {
        timed("delete_sessions_of", async move {
            dispatch!(self, pool, {
                let r = sqlx::query(
                    "DELETE FROM sessions WHERE user_id = $1 AND id_hash <> COALESCE($2, '')",
                )
                .bind(user_id)
                .bind(keep)
                .execute(pool)
                .await?;
                Ok(r.rows_affected())
            })
        })
        .await
    }
}
