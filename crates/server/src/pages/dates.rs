//! Timestamps for people.

/// Formats a timestamp for people (UTC).
pub fn when(ts: Option<i64>) -> String {
    match ts {
        None => "never".into(),
        Some(t) => {
            let days = t.div_euclid(86400);
            let secs = t.rem_euclid(86400);
            let (y, m, d) = civil_from_days(days);
            format!(
                "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
                secs / 3600,
                (secs % 3600) / 60
            )
        }
    }
}

/// How long until `end`, seen at `now`, for people: "in 59 minutes", "in 23 hours",
/// "in 29 days"; "ended" once past.
pub fn until(now: i64, end: i64) -> String {
    let left = end - now;
    let plural = |n: i64, unit: &str| {
        if n == 1 {
            format!("in 1 {unit}")
        } else {
            format!("in {n} {unit}s")
        }
    };
    match left {
        ..=0 => "ended".into(),
        1..=3599 => plural((left + 59) / 60, "minute"),
        3600..=172_799 => plural((left + 1800) / 3600, "hour"),
        _ => plural((left + 43_200) / 86_400, "day"),
    }
}

// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(when(Some(0)), "1970-01-01 00:00 UTC");
        assert_eq!(when(Some(1_795_000_000)), "2026-11-18 11:06 UTC");
        assert_eq!(until(0, 3600), "in 1 hour");
        assert_eq!(until(0, 3599), "in 60 minutes");
        assert_eq!(until(0, 60), "in 1 minute");
        assert_eq!(until(0, 86_400), "in 24 hours");
        assert_eq!(until(0, 2_592_000), "in 30 days");
        assert_eq!(until(10, 10), "ended");
    }
}
