//! `/admin/scopes`: the scopes and the descriptions the consent page shows; add one
//! or change a description.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use http::StatusCode;

use super::{Admin, by, db_error};
use crate::flows::admin;
use crate::pages;
use crate::pages::{Administrator, Posted};
use crate::state::AuthServer;

pub fn router() -> Router<AuthServer> {
    Router::new().route("/admin/scopes", get(list).post(set))
}

#[derive(Template)]
#[template(path = "admin/scopes.html")]
struct ScopesPage<'a> {
    csrf: &'a str,
    username: &'a str,
    scopes: Vec<(String, String)>,
}

async fn list(State(s): State<AuthServer>, a: Admin) -> Response {
    let scopes = match s.auth.store.scopes().await {
        Ok(v) => v,
        Err(e) => return db_error(e),
    };
    pages::render(
        &ScopesPage {
            csrf: &a.csrf,
            username: &a.user.username,
            scopes,
        },
        StatusCode::OK,
        a.set_cookie,
    )
}

async fn set(
    State(s): State<AuthServer>,
    Posted {
        who: Administrator(me),
        form: f,
    }: Posted<Administrator>,
) -> Response {
    let name = f.get("name").unwrap_or("").trim();
    let description = f.get("description").unwrap_or("");
    match admin::set_scope(&s.auth, name, description, &by(&me)).await {
        Ok(()) => pages::see_other("/admin/scopes"),
        Err(e) => super::act_error(e),
    }
}
