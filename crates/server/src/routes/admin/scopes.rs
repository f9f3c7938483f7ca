//! `/admin/scopes`: the scopes, the descriptions the consent page shows, and who may
//! hold each (every signed-in person, or the members of some groups), and the narrower
//! scopes each includes; add one, change a description, restrict or open one, declare
//! what it includes.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use http::StatusCode;

use super::{Admin, by, db_error};
use crate::flows::admin;
use crate::pages;
use crate::pages::{Administrator, Posted};
use crate::state::AuthServer;

pub fn router() -> Router<AuthServer> {
    Router::new()
        .route("/admin/scopes", get(list).post(set))
        .route("/admin/scopes/groups", post(restrict))
        .route("/admin/scopes/includes", post(include))
}

pub struct ScopeLine {
    pub name: String,
    pub description: String,
    /// Comma-separated groups; empty: open to everyone.
    pub groups: String,
    /// Comma-separated narrower scopes it includes.
    pub includes: String,
}

#[derive(Template)]
#[template(path = "admin/scopes.html")]
struct ScopesPage<'a> {
    csrf: &'a str,
    username: &'a str,
    scopes: Vec<ScopeLine>,
}

async fn list(State(s): State<AuthServer>, a: Admin) -> Response {
    let (scopes, restrictions, includes) = match tokio::try_join!(
        s.auth.store.scopes(),
        s.auth.store.scope_groups(),
        s.auth.store.scope_includes()
    ) {
        Ok(v) => v,
        Err(e) => return db_error(e),
    };
    let joined = |pairs: &[(String, String)], name: &str| {
        pairs
            .iter()
            .filter(|(sc, _)| sc == name)
            .map(|(_, g)| g.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let scopes = scopes
        .into_iter()
        .map(|(name, description)| ScopeLine {
            groups: joined(&restrictions, &name),
            includes: joined(&includes, &name),
            name,
            description,
        })
        .collect();
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

/// A form field holding a comma-separated list, as trimmed, non-empty items.
fn comma_list(f: &crate::forms::Params, field: &str) -> Vec<String> {
    f.get(field)
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The scopes page after `act` on the scope the form names.
fn after(act: Result<(), mcpgate_core::OAuthError>) -> Response {
    match act {
        Ok(()) => pages::see_other("/admin/scopes"),
        Err(e) => super::act_error(e),
    }
}

/// Sets the groups a scope is restricted to: a comma-separated list, empty to open it.
async fn restrict(
    State(s): State<AuthServer>,
    Posted {
        who: Administrator(me),
        form: f,
    }: Posted<Administrator>,
) -> Response {
    let name = f.get("name").unwrap_or("");
    let groups = comma_list(&f, "groups");
    after(crate::flows::groups::set_scope_groups(&s.auth, name, &groups, &by(&me)).await)
}

/// Sets the narrower scopes a scope includes: a comma-separated list, empty for none.
async fn include(
    State(s): State<AuthServer>,
    Posted {
        who: Administrator(me),
        form: f,
    }: Posted<Administrator>,
) -> Response {
    let name = f.get("name").unwrap_or("");
    let includes = comma_list(&f, "includes");
    after(crate::flows::hierarchy::set_includes(&s.auth, name, &includes, &by(&me)).await)
}
