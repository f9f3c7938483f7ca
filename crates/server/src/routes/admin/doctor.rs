//! `/admin/doctor`: where each recent client's connection stopped, step by step, with
//! what it usually means: what `mcpgate doctor` prints.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use http::StatusCode;

use super::{Admin, Filters, db_error};
use crate::flows::doctor::{self, ClientReport};
use crate::pages;
use crate::state::AuthServer;

pub fn router() -> Router<AuthServer> {
    Router::new().route("/admin/doctor", get(show))
}

pub struct StepLine {
    pub step: &'static str,
    pub at: String,
    /// `ok`, `refused` or `pending`: the stylesheet's class and the words shown.
    pub outcome: &'static str,
    pub detail: String,
}

pub struct ClientLine {
    pub client_id: String,
    pub client_name: String,
    pub steps: Vec<StepLine>,
    pub stopped_at: Option<&'static str>,
    pub advice: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/doctor.html")]
struct DoctorPage<'a> {
    csrf: &'a str,
    username: &'a str,
    client: String,
    clients: Vec<ClientLine>,
}

fn line(r: ClientReport) -> ClientLine {
    ClientLine {
        client_name: r.client_name.unwrap_or_else(|| "(removed)".into()),
        steps: r
            .steps
            .into_iter()
            .map(|s| StepLine {
                step: s.step.as_str(),
                at: pages::when(Some(s.at)),
                outcome: match s.ok {
                    Some(true) => "ok",
                    Some(false) => "refused",
                    None => "pending",
                },
                detail: s.detail,
            })
            .collect(),
        stopped_at: r.stopped_at.map(|s| s.as_str()),
        advice: r.advice,
        client_id: r.client_id,
    }
}

async fn show(State(s): State<AuthServer>, a: Admin, q: Filters) -> Response {
    let client = q.get("client").map(str::to_owned);
    // This process's latest notes first, so the page is current.
    if let Err(e) = s.auth.flush_steps().await {
        return db_error(e);
    }
    let reports = match doctor::report(&s.auth, client.as_deref()).await {
        Ok(r) => r,
        Err(e) => return db_error(e),
    };
    pages::render(
        &DoctorPage {
            csrf: &a.csrf,
            username: &a.user.username,
            client: client.unwrap_or_default(),
            clients: reports.into_iter().map(line).collect(),
        },
        StatusCode::OK,
        a.set_cookie,
    )
}
