//! Users: accounts for password sign-in, their state and credentials (hashed).

use sqlx::Row;

use super::{Pool, Result, Store};
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

impl Store {
    pub async fn create_user(&self, u: &User) -> Result<()> {
        dispatch!(self, pool, {
            insert_user!(pool, u);
            Ok(())
        })
    }

    pub async fn user_by_name(&self, username: &str) -> Result<Option<User>> {
        dispatch!(self, pool, {
            Ok(
                sqlx::query_as::<_, UserRow>("SELECT * FROM users WHERE username = $1")
                    .bind(username)
                    .fetch_optional(pool)
                    .await?
                    .map(Into::into),
            )
        })
    }

    pub async fn user(&self, id: &str) -> Result<Option<User>> {
        dispatch!(self, pool, {
            Ok(
                sqlx::query_as::<_, UserRow>("SELECT * FROM users WHERE id = $1")
                    .bind(id)
                    .fetch_optional(pool)
                    .await?
                    .map(Into::into),
            )
        })
    }

    pub async fn users(&self) -> Result<Vec<User>> {
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
    }

    pub async fn count_users(&self) -> Result<i64> {
        dispatch!(self, pool, {
            Ok(sqlx::query("SELECT COUNT(*) FROM users")
                .fetch_one(pool)
                .await?
                .get(0))
        })
    }

    pub async fn set_user_disabled(&self, username: &str, disabled: bool) -> Result<bool> {
        notifying!(self, Change::Config, conn, {
            let r = sqlx::query("UPDATE users SET disabled = $1 WHERE username = $2")
                .bind(disabled)
                .bind(username)
                .execute(conn)
                .await?;
            Ok(r.rows_affected() == 1)
        })
    }

    pub async fn set_password(&self, username: &str, hash: &str) -> Result<bool> {
        dispatch!(self, pool, {
            let r = sqlx::query("UPDATE users SET password_hash = $1 WHERE username = $2")
                .bind(hash)
                .bind(username)
                .execute(pool)
                .await?;
            Ok(r.rows_affected() == 1)
        })
    }
}
