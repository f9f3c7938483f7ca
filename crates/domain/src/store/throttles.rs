//! Limits on work: sign-in attempts per account name (reserved before the password
//! is checked, so concurrent guesses cannot all pass), and per-source counters shared
//! by every instance.

use async_trait::async_trait;

use super::StoreResult;
use crate::model::*;

#[async_trait]
pub trait Throttles: Send + Sync {
    /// Reserves one sign-in attempt for `key` before the password is checked: the
    /// attempt is counted (and, past `free` attempts, the next lock set) by a
    /// compare-and-set, so concurrent requests each get their own count and cannot
    /// all pass a check made before any of them failed. `wait(n)` is the lock after
    /// the n-th counted attempt.
    async fn reserve_login_attempt(
        &self,
        key: &str,
        now: i64,
        free: i64,
        wait: fn(i64) -> i64,
    ) -> StoreResult<Reservation>;

    /// Forgets a username's failed attempts (a successful sign-in);
    /// [`Store::reserve_login_attempt`] counts them.
    async fn clear_login_throttle(&self, username: &str) -> StoreResult<()>;

    /// Counts one hit for `key` in the fixed window starting at `window_start` and
    /// returns the hits so far in that window (this one included). One statement:
    /// atomic across instances.
    async fn hit_rate_limit(&self, key: &str, window_start: i64) -> StoreResult<i64>;

    /// Takes back one hit counted in `window_start` (a request that turned out not to
    /// count, e.g. a successful sign-in).
    async fn refund_rate_limit(&self, key: &str, window_start: i64) -> StoreResult<()>;

    /// Forgets counters of windows that started before `before`.
    async fn sweep_rate_limits(&self, before: i64) -> StoreResult<()>;
}
