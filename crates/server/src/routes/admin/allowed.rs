//! `/admin/allowed`: the redirect allow-list: presets of known AI clients, enabled or
//! not, and custom redirect URIs.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use http::StatusCode;
use mcpgate_core::redirect_uri::{AllowEntry, PRESETS};

use super::{Admin, by, db_error};
use crate::flows::admin;
use crate::pages;
use crate::pages::{Administrator, Posted};
use crate::state::AuthServer;

pub fn router() -> Router<AuthServer> {
    Router::new()
        .route("/admin/allowed", get(list))
        .route("/admin/allowed/preset", post(preset))
        .route("/admin/allowed/uri", post(uri))
}

pub struct PresetLine {
    pub name: &'static str,
    pub title: &'static str,
    pub redirect_uris: &'static [&'static str],
    pub enabled: bool,
}

#[derive(Template)]
#[template(path = "admin/allowed.html")]
struct AllowedPage<'a> {
    csrf: &'a str,
    username: &'a str,
    presets: Vec<PresetLine>,
    custom: Vec<String>,
}

async fn list(State(s): State<AuthServer>, a: Admin) -> Response {
    let entries = match s.auth.store.allowed_redirects().await {
        Ok(e) => e,
        Err(e) => return db_error(e),
    };
    let (enabled, custom) = AllowEntry::partition(&entries);
    let presets = PRESETS
        .iter()
        .map(|p| PresetLine {
            name: p.name,
            title: p.title,
            redirect_uris: p.redirect_uris,
            enabled: enabled.iter().any(|e| e == p.name),
        })
        .collect();
    pages::render(
        &AllowedPage {
            csrf: &a.csrf,
            username: &a.user.username,
            presets,
            custom,
        },
        StatusCode::OK,
        a.set_cookie,
    )
}

async fn preset(
    State(s): State<AuthServer>,
    Posted {
        who: Administrator(me),
        form: f,
    }: Posted<Administrator>,
) -> Response {
    let name = f.get("preset").unwrap_or("");
    match admin::set_preset(&s.auth, name, f.get("on") == Some("yes"), &by(&me)).await {
        Ok(_) => pages::see_other("/admin/allowed"),
        Err(e) => super::act_error(e),
    }
}

async fn uri(
    State(s): State<AuthServer>,
    Posted {
        who: Administrator(me),
        form: f,
    }: Posted<Administrator>,
) -> Response {
    let uri = f.get("uri").unwrap_or("").trim();
    match admin::set_redirect_uri(&s.auth, uri, f.get("on") == Some("yes"), &by(&me)).await {
        Ok(_) => pages::see_other("/admin/allowed"),
        Err(e) => super::act_error(e),
    }
}
