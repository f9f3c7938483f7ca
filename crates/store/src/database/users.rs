//! Users: accounts for password sign-in, their state and credentials (hashed).

use async_trait::async_trait;
use mcpgate_domain::store::{StoreResult, Users};

use crate::timing::timed;

use sqlx::Row;

use super::{Database, Pool};
use crate::model::*;
use crate::notify::Change;

/// Writes a user with `$conn` (a pool or a transaction).
macro_rules! insert_user {
    ($conn:expr, $u:expr) => {{
        let u: &User = $u;
        sqlx::query("INSERT INTO users (id, username, email, password_hash, is_admin, disabled, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&u.id).bind(&u.username).bind(&u.email).bind(&u.password_hash)
            .bind(u.is_admin).bind(u.disabled).bind(u.created_at)
            .execute($conn).await?;
    }};
}
pub(super) use insert_user;

#[async_trait]
impl Users for Database {
    async fn create_user(&self, u: &User) -> StoreResult<()> {
        timed("create_user", async move {
            dispatch!(self, pool, {
                insert_user!(pool, u);
                Ok(())
            })
        })
        .await
    }

    async fn user_by_name(&self, username: &str) -> StoreResult<Option<User>> {
        timed("user_by_name", async move {
            dispatch!(self, pool, {
                Ok(
                    sqlx::query_as::<_, UserRow>("SELECT * FROM users WHERE username = $1")
                        .bind(username)
                        .fetch_optional(pool)
                        .await?
                        .map(Into::into),
                )
            })
        })
        .await
    }

    async fn user(&self, id: &str) -> StoreResult<Option<User>> {
        let read = timed("user", async move {
            dispatch!(self, pool, {
                Ok(
                    sqlx::query_as::<_, UserRow>("SELECT * FROM users WHERE id = $1")
                        .bind(id)
                        .fetch_optional(pool)
                        .await?
                        .map(Into::into),
                )
            })
        });
        let r = &self.remembered;
        r.row(&r.users, id, read).await
    }

    async fn users(&self) -> StoreResult<Vec<User>> {
        timed("users", async move {
            dispatch!(self, pool, {
                Ok(
                    sqlx::query_as::<_, UserRow>("SELECT * FROM users ORDER BY username")
                        .fetch_all(pool)
                        .await?
                        .into_iter()
                        .map(Into::into)
                        .collect(),
                )
            })
        })
        .await
    }

    async fn count_users(&self) -> StoreResult<i64> {
        timed("count_users", async move {
            dispatch!(self, pool, {
                Ok(sqlx::query("SELECT COUNT(*) FROM users")
                    .fetch_one(pool)
                    .await?
                    .get(0))
            })
        })
        .await
    }

    async fn set_user_disabled(&self, username: &str, disabled: bool) -> StoreResult<bool> {
        timed("set_user_disabled", async move {
            notifying!(self, Change::Config, conn, {
                let r = sqlx::query("UPDATE users SET disabled = $1 WHERE username = $2")
                    .bind(disabled)
                    .bind(username)
                    .execute(conn)
                    .await?;
                Ok(r.rows_affected() == 1)
            })
        })
        .await
    }

    async fn set_password(&self, username: &str, hash: &str) -> StoreResult<bool> {
        timed("set_password", async move {
            notifying!(self, Change::Config, pool, {
                let r = sqlx::query("UPDATE users SET password_hash = $1 WHERE username = $2")
                    .bind(hash)
                    .bind(username)
                    .execute(pool)
                    .await?;
                Ok(r.rows_affected() == 1)
            })
        })
        .await
    }

    async fn users_by_email(&self, email: &str) -> StoreResult<Vec<User>> {
        timed("users_by_email", async move {
            dispatch!(self, pool, {
                Ok(sqlx::query_as::<_, UserRow>(
                    "SELECT * FROM users WHERE LOWER(email) = LOWER($1) ORDER BY created_at",
                )
                .bind(email)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(Into::into)
                .collect())
            })
        })
        .await
    }
}
