//! `/admin/audit`: audit events filtered by user, client, event and time range
//! (UTC), with the activity chart over the same range.

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use http::StatusCode;
use mcpgate_domain::model::AuditFilter;

use super::{Admin, Filters, db_error};
use crate::pages;
use crate::pages::chart::{self, Chart};
use crate::state::AuthServer;

pub fn router() -> Router<AuthServer> {
    Router::new().route("/admin/audit", get(list))
}

/// Most events one page shows.
const AUDIT_LIMIT: i64 = 500;
/// Buckets of the chart over the filtered range.
const CHART_BUCKETS: usize = 24;

pub struct Row {
    pub at: String,
    pub event: String,
    pub user: String,
    pub client: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage<'a> {
    csrf: &'a str,
    username: &'a str,
    f_user: &'a str,
    f_client: &'a str,
    f_event: &'a str,
    f_from: &'a str,
    f_to: &'a str,
    events: &'static [&'static str],
    chart: Chart,
    rows: Vec<Row>,
    limit: i64,
}

fn bad_time(name: &str) -> Response {
    pages::error_page(
        StatusCode::BAD_REQUEST,
        "Bad request",
        &format!("{name} must be a UTC date and time, YYYY-MM-DDTHH:MM."),
    )
}

async fn list(State(s): State<AuthServer>, a: Admin, q: Filters) -> Response {
    let mut v = HashMap::new();
    for name in ["user", "client", "event", "from", "to"] {
        v.insert(name, q.get(name).unwrap_or(""));
    }
    let time = |name: &str| match v[name] {
        "" => Ok(None),
        t => parse_utc(t).map(Some).ok_or_else(|| bad_time(name)),
    };
    let (from, to) = match (time("from"), time("to")) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let user_id = match v["user"] {
        "" => None,
        name => match s.auth.store.user_by_name(name).await {
            Ok(Some(u)) => Some(u.id),
            Ok(None) => Some(name.to_owned()), // an id, or a subject from elsewhere
            Err(e) => return db_error(e),
        },
    };
    let filter = AuditFilter {
        user_id,
        client_id: Some(v["client"])
            .filter(|c| !c.is_empty())
            .map(String::from),
        event: Some(v["event"]).filter(|c| !c.is_empty()).map(String::from),
        from,
        to,
    };
    let now = s.auth.now();
    let chart = match (from, to) {
        (None, None) => super::overview::activity_chart(&s, now, 3600, CHART_BUCKETS).await,
        _ => {
            let start = from.unwrap_or(to.unwrap_or(now) - 86_400);
            let end = to.unwrap_or(now).max(start + 1);
            let width = (end - start + CHART_BUCKETS as i64 - 1) / CHART_BUCKETS as i64;
            s.auth
                .store
                .activity(start, width, CHART_BUCKETS)
                .await
                .map(|act| chart::chart(start, width, &act))
        }
    };
    let chart = match chart {
        Ok(c) => c,
        Err(e) => return db_error(e),
    };
    let events = match s.auth.store.search_audit(&filter, AUDIT_LIMIT).await {
        Ok(e) => e,
        Err(e) => return db_error(e),
    };
    // People by name where the id is one of ours (a few distinct ids per page).
    let mut names: HashMap<String, String> = HashMap::new();
    let mut rows = Vec::with_capacity(events.len());
    for e in events {
        let user = match &e.user_id {
            None => "-".to_owned(),
            Some(id) => match names.get(id) {
                Some(n) => n.clone(),
                None => {
                    let n = match s.auth.store.user(id).await {
                        Ok(Some(u)) => u.username,
                        Ok(None) => id.clone(),
                        Err(e) => return db_error(e),
                    };
                    names.insert(id.clone(), n.clone());
                    n
                }
            },
        };
        rows.push(Row {
            at: pages::when(Some(e.at)),
            event: e.event,
            user,
            client: e.client_id.unwrap_or_else(|| "-".into()),
            detail: e.detail,
        });
    }
    pages::render(
        &AuditPage {
            csrf: &a.csrf,
            username: &a.user.username,
            f_user: v["user"],
            f_client: v["client"],
            f_event: v["event"],
            f_from: v["from"],
            f_to: v["to"],
            events: mcpgate_domain::audit::NAMES,
            chart,
            rows,
            limit: AUDIT_LIMIT,
        },
        StatusCode::OK,
        a.set_cookie,
    )
}

/// `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM` or `YYYY-MM-DDTHH:MM:SS` (what a
/// `datetime-local` field sends), read as UTC, to Unix seconds.
fn parse_utc(t: &str) -> Option<i64> {
    let (date, time) = t.split_once('T').unwrap_or((t, "00:00"));
    let mut d = date.splitn(3, '-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut h = time.splitn(3, ':').map(|x| x.parse::<i64>().ok());
    let (hh, mm) = (h.next()??, h.next()??);
    let ss = h.next().map_or(Some(0), |x| x)?;
    if !(1..=9999).contains(&y)
        || !(1..=12).contains(&m)
        || !(1..=31).contains(&day)
        || !(0..24).contains(&hh)
        || !(0..60).contains(&mm)
        || !(0..60).contains(&ss)
    {
        return None;
    }
    Some(days_from_civil(y, m, day) * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the inverse of the
/// days-to-civil conversion [`pages::when`] uses).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::parse_utc;
    use crate::pages::when;

    #[test]
    fn times_read_as_utc_round_trip() {
        for t in [0, 1_795_000_000 - 1_795_000_000 % 60, 951_782_400] {
            let shown = when(Some(t)); // "YYYY-MM-DD HH:MM UTC"
            let input = shown.trim_end_matches(" UTC").replace(' ', "T");
            assert_eq!(parse_utc(&input), Some(t), "{shown}");
        }
        assert_eq!(parse_utc("2026-12-02"), Some(1_796_169_600));
        assert_eq!(
            parse_utc("2026-12-02T10:30:15"),
            Some(1_796_169_600 + 37_815)
        );
        for bad in [
            "",
            "2026",
            "2026-13-01",
            "2026-12-02T24:00",
            "x-y-z",
            "2026-12-02T10",
        ] {
            assert_eq!(parse_utc(bad), None, "{bad:?}");
        }
    }
}
