//! `/admin`: the activity chart (tool calls and sign-ins over the last day, week or
//! month) and a few counts.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use http::StatusCode;

use super::{Admin, Filters, LIST_LIMIT, db_error};
use crate::pages;
use crate::pages::chart::{self, Chart};
use crate::state::AuthServer;

pub fn router() -> Router<AuthServer> {
    Router::new().route("/admin", get(overview))
}

/// The chart's ranges: (name, label, bucket seconds, buckets).
const RANGES: &[(&str, &str, i64, usize)] = &[
    ("day", "Last 24 hours", 3600, 24),
    ("week", "Last 7 days", 6 * 3600, 28),
    ("month", "Last 30 days", 86_400, 30),
];

#[derive(Template)]
#[template(path = "admin/overview.html")]
struct OverviewPage<'a> {
    csrf: &'a str,
    username: &'a str,
    range: &'a str,
    ranges: Vec<(&'static str, &'static str)>,
    chart: Chart,
    users: usize,
    clients: usize,
    grants: usize,
    limit: i64,
}

/// The activity of the `buckets` buckets of `width` seconds that end with the one
/// holding `now`.
pub(super) async fn activity_chart(
    s: &AuthServer,
    now: i64,
    width: i64,
    buckets: usize,
) -> Result<Chart, mcpgate_domain::StoreError> {
    let from = (now.div_euclid(width) + 1 - buckets as i64) * width;
    let activity = s.auth.store.activity(from, width, buckets).await?;
    Ok(chart::chart(from, width, &activity))
}

async fn overview(State(s): State<AuthServer>, a: Admin, q: Filters) -> Response {
    let name = q.get("range").unwrap_or("day");
    let Some(&(range, _, width, buckets)) = RANGES.iter().find(|r| r.0 == name) else {
        return super::not_found("range");
    };
    let chart = match activity_chart(&s, s.auth.now(), width, buckets).await {
        Ok(c) => c,
        Err(e) => return db_error(e),
    };
    let counts = async {
        Ok::<_, mcpgate_domain::StoreError>((
            s.auth.store.search_users("", LIST_LIMIT).await?.len(),
            s.auth.store.search_clients("", LIST_LIMIT).await?.len(),
            s.auth
                .store
                .search_grants(None, None, LIST_LIMIT)
                .await?
                .len(),
        ))
    };
    let (users, clients, grants) = match counts.await {
        Ok(c) => c,
        Err(e) => return db_error(e),
    };
    pages::render(
        &OverviewPage {
            csrf: &a.csrf,
            username: &a.user.username,
            range,
            ranges: RANGES.iter().map(|r| (r.0, r.1)).collect(),
            chart,
            users,
            clients,
            grants,
            limit: LIST_LIMIT,
        },
        StatusCode::OK,
        a.set_cookie,
    )
}
