//! What each app did for a person: its tool calls per day over the last thirty days,
//! allowed and refused apart, from the counts the guard writes to the audit record.
//! Read by the connected-apps page, the admin pages and `mcpgate grants list`.

use std::collections::BTreeMap;

use crate::Authority;
use crate::store::StoreResult;

/// How many days the activity covers, today included.
pub const DAYS: usize = 30;
const DAY: i64 = 86_400;

/// One app's calls for one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppActivity {
    /// Allowed and refused calls, per day, oldest first ([`DAYS`] entries).
    pub days: Vec<[i64; 2]>,
    pub allowed: i64,
    pub refused: i64,
}

impl Default for AppActivity {
    fn default() -> Self {
        Self {
            days: vec![[0, 0]; DAYS],
            allowed: 0,
            refused: 0,
        }
    }
}

impl AppActivity {
    /// All calls, allowed or refused, over the window.
    pub fn calls(&self) -> i64 {
        self.allowed + self.refused
    }
}

/// The first second of the window: midnight (UTC) [`DAYS`] - 1 days before today's.
pub fn window_start(now: i64) -> i64 {
    now - now.rem_euclid(DAY) - (DAYS as i64 - 1) * DAY
}

/// Each (person, client)'s activity over the window, of one person when given. Pairs
/// without a call are absent (their activity is the default: none).
pub async fn by_app(
    s: &Authority,
    user_id: Option<&str>,
) -> StoreResult<BTreeMap<(String, String), AppActivity>> {
    let from = window_start(s.now());
    let mut out: BTreeMap<(String, String), AppActivity> = BTreeMap::new();
    for d in s.store.calls_by_day(user_id, from, DAYS).await? {
        let a = out.entry((d.user_id, d.client_id)).or_default();
        if let Some(slot) = a.days.get_mut(d.day) {
            slot[0] += d.allowed;
            slot[1] += d.refused;
            a.allowed += d.allowed;
            a.refused += d.refused;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_thirty_whole_days_ending_today() {
        let now = 1_800_000_000 + 3_600; // an hour into a day
        let from = window_start(now);
        assert_eq!(from % DAY, 0, "starts at midnight");
        assert_eq!((now - from) / DAY, DAYS as i64 - 1, "today is the last day");
    }
}
