//! Store steps added for hardening: ending a person's sessions and grants at once,
//! atomic sign-in reservations, shared rate-limit counters and first-run markers.
//! Each is one statement or one transaction, so instances racing on one database
//! cannot both win.

use sqlx::Row;

use super::{Pool, Result, Store};

/// The outcome of reserving a sign-in attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The attempt may check the password; it already counts as a failure until
    /// [`Store::clear_login_throttle`] is called.
    Granted,
    /// Locked until this time (seconds since the epoch).
    LockedUntil(i64),
}

impl Store {
    /// Deletes every browser session of a user except `keep` (a session id hash):
    /// returns how many ended.
    pub async fn delete_sessions_of(&self, user_id: &str, keep: Option<&str>) -> Result<u64> {
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
    }

    /// Ids of the live grants a user made.
    pub async fn live_grants_of_user(&self, user_id: &str) -> Result<Vec<String>> {
        dispatch!(self, pool, {
            let rows =
                sqlx::query("SELECT id FROM grants WHERE user_id = $1 AND revoked_at IS NULL")
                    .bind(user_id)
                    .fetch_all(pool)
                    .await?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    /// Reserves one sign-in attempt for `key` before the password is checked: the
    /// attempt is counted (and, past `free` attempts, the next lock set) by a
    /// compare-and-set, so concurrent requests each get their own count and cannot
    /// all pass a check made before any of them failed. `wait(n)` is the lock after
    /// the n-th counted attempt.
    pub async fn reserve_login_attempt(
        &self,
        key: &str,
        now: i64,
        free: i64,
        wait: fn(i64) -> i64,
    ) -> Result<Reservation> {
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
    }

    /// Counts one hit for `key` in the fixed window starting at `window_start` and
    /// returns the hits so far in that window (this one included). One statement:
    /// atomic across instances.
    pub async fn hit_rate_limit(&self, key: &str, window_start: i64) -> Result<i64> {
        dispatch!(self, pool, {
            let row = sqlx::query("INSERT INTO rate_limits (key, window_start, hits) VALUES ($1, $2, 1) ON CONFLICT (key) DO UPDATE SET hits = CASE WHEN rate_limits.window_start = $2 THEN rate_limits.hits + 1 ELSE 1 END, window_start = $2 RETURNING hits")
                .bind(key)
                .bind(window_start)
                .fetch_one(pool)
                .await?;
            Ok(row.get(0))
        })
    }

    /// Takes back one hit counted in `window_start` (a request that turned out not to
    /// count, e.g. a successful sign-in).
    pub async fn refund_rate_limit(&self, key: &str, window_start: i64) -> Result<()> {
        dispatch!(self, pool, {
            sqlx::query("UPDATE rate_limits SET hits = hits - 1 WHERE key = $1 AND window_start = $2 AND hits > 0")
                .bind(key)
                .bind(window_start)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Forgets counters of windows that started before `before`.
    pub async fn sweep_rate_limits(&self, before: i64) -> Result<()> {
        dispatch!(self, pool, {
            sqlx::query("DELETE FROM rate_limits WHERE window_start < $1")
                .bind(before)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Marks a first-run step done; true only for the one caller that marked it
    /// (across processes), which then performs the step.
    pub async fn mark_seeded(&self, step: &str, now: i64) -> Result<bool> {
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
    }
}
