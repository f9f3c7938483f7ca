//! `/admin/scopes`: the scopes and the descriptions the consent page shows; add one
//! or change a description.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use http::{HeaderMap, StatusCode};

use super::{admin_act, admin_view, by, db_error};
use crate::flows::admin;
use crate::forms::Form;
use crate::pages;
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

async fn list(State(s): State<AuthServer>, headers: HeaderMap) -> Response {
    let a = match admin_view(&s, &headers, "/admin/scopes").await {
        Ok(a) => a,
        Err(r) => return r,
    };
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

async fn set(State(s): State<AuthServer>, headers: HeaderMap, Form(f): Form) -> Response {
    let me = match admin_act(&s, &headers, &f).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let name = f.get("name").unwrap_or("").trim();
    let description = f.get("description").unwrap_or("");
    match admin::set_scope(&s.auth, name, description, &by(&me)).await {
        Ok(()) => pages::see_other("/admin/scopes"),
        Err(e) => super::act_error(e),
    }
}
