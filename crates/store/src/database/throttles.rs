//! Store steps added for hardening: ending a person's sessions and grants at once,
//! atomic sign-in reservations, shared rate-limit counters and first-run markers.
//! Each is one statement or one transaction, so instances racing on one database
//! cannot both win.

use async_trait::async_trait;
use mcpgate_domain::store::{StoreResult, Throttles};

use crate::model::*;
use crate::timing::timed;

use sqlx::Row;

use super::{Database, Pool};

#[async_trait]
impl Throttles for Database {
    async fn reserve_login_attempt(
        &self,
        key: &str,
        now: i64,
        free: i64,
        wait: fn(i64) -> i64,
    ) -> StoreResult<Reservation> {
        timed("reserve_login_attempt", async move {
        dispatch!(self, pool, {
            sqlx::query("INSERT INTO login_throttle (username, failures, locked_until) VALUES ($1, 0, 0) ON CONFLICT (username) DO NOTHING")
                .bind(key)
                .execute(pool)
                .await?;
            for _ in 0..64 {
                let row = sqlx::query(
                    "SELECT failures, locked_until FROM login_throttle WHERE username = $1",
                )
                .bind(key)
                .fetch_optional(pool)
                .await?;
                let (failures, locked): (i64, i64) =
                    row.map(|r| (r.get(0), r.get(1))).unwrap_or((0, 0));
                if locked > now {
                    return Ok(Reservation::LockedUntil(locked));
                }
                let n = failures + 1;
                let lock = if n > free { now + wait(n) } else { 0 };
                let r = sqlx::query("INSERT INTO login_throttle (username, failures, locked_until) VALUES ($1, $2, $3) ON CONFLICT (username) DO UPDATE SET failures = $2, locked_until = $3 WHERE login_throttle.failures = $4 AND login_throttle.locked_until = $5")
                    .bind(key).bind(n).bind(lock).bind(failures).bind(locked)
                    .execute(pool)
                    .await?;
                if r.rows_affected() == 1 {
                    return Ok(Reservation::Granted);
                }
            }
            // Heavy contention on one key: treat as locked for a second.
            Ok(Reservation::LockedUntil(now + 1))
        })
    })
        .await
    }

    async fn clear_login_throttle(&self, username: &str) -> StoreResult<()> {
        timed("clear_login_throttle", async move {
            dispatch!(self, pool, {
                sqlx::query("DELETE FROM login_throttle WHERE username = $1")
                    .bind(username)
                    .execute(pool)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn hit_rate_limit(&self, key: &str, window_start: i64) -> StoreResult<i64> {
        timed("hit_rate_limit", async move {
        dispatch!(self, pool, {
            let row = sqlx::query("INSERT INTO rate_limits (key, window_start, hits) VALUES ($1, $2, 1) ON CONFLICT (key) DO UPDATE SET hits = CASE WHEN rate_limits.window_start = $2 THEN rate_limits.hits + 1 ELSE 1 END, window_start = $2 RETURNING hits")
                .bind(key)
                .bind(window_start)
                .fetch_one(pool)
                .await?;
            Ok(row.get(0))
        })
    })
        .await
    }

    async fn refund_rate_limit(&self, key: &str, window_start: i64) -> StoreResult<()> {
        timed("refund_rate_limit", async move {
        dispatch!(self, pool, {
            sqlx::query("UPDATE rate_limits SET hits = hits - 1 WHERE key = $1 AND window_start = $2 AND hits > 0")
                .bind(key)
                .bind(window_start)
                .execute(pool)
                .await?;
            Ok(())
        })
    })
        .await
    }

    async fn sweep_rate_limits(&self, before: i64) -> StoreResult<()> {
        timed("sweep_rate_limits", async move {
            dispatch!(self, pool, {
                sqlx::query("DELETE FROM rate_limits WHERE window_start < $1")
                    .bind(before)
                    .execute(pool)
                    .await?;
                Ok(())
            })
        })
        .await
    }
}
