//! Browser sessions and per-name sign-in throttling.

use super::{Pool, Result, Store};
use crate::model::*;

impl Store {
    pub async fn insert_session(
        &self,
        id_hash: &str,
        user_id: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        dispatch!(self, pool, {
            sqlx::query("INSERT INTO sessions (id_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)").bind(id_hash).bind(user_id).bind(now).bind(expires_at).execute(pool).await?;
            Ok(())
        })
    }

    /// The live, enabled user of a session.
    pub async fn session_user(&self, id_hash: &str, now: i64) -> Result<Option<User>> {
        dispatch!(self, pool, {
            Ok(sqlx::query_as::<_, UserRow>("SELECT u.* FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = $1 AND s.expires_at > $2 AND NOT u.disabled")
                .bind(id_hash).bind(now).fetch_optional(pool).await?.map(Into::into))
        })
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<()> {
        dispatch!(self, pool, {
            sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
                .bind(id_hash)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    // ---------------------------------------------------------- login throttle

    /// Forgets a username's failed attempts (a successful sign-in);
    /// [`Store::reserve_login_attempt`] counts them.
    pub async fn clear_login_throttle(&self, username: &str) -> Result<()> {
        dispatch!(self, pool, {
            sqlx::query("DELETE FROM login_throttle WHERE username = $1")
                .bind(username)
                .execute(pool)
                .await?;
            Ok(())
        })
    }
}
