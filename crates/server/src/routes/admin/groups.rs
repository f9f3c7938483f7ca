//! `/admin/groups`: groups of people, their members, and the scopes restricted to
//! them; create and remove groups, add and remove members. Each act is the domain's
//! ([`crate::flows::groups`]), as `mcpgate group …` calls it.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use http::StatusCode;

use super::{Admin, by, db_error};
use crate::flows::groups::{self, GroupListing};
use crate::pages;
use crate::pages::{Administrator, Posted};
use crate::state::AuthServer;

pub fn router() -> Router<AuthServer> {
    Router::new()
        .route("/admin/groups", get(list).post(add))
        .route("/admin/groups/remove", post(remove))
        .route("/admin/groups/members", post(member))
}

#[derive(Template)]
#[template(path = "admin/groups.html")]
struct GroupsPage<'a> {
    csrf: &'a str,
    username: &'a str,
    groups: Vec<GroupListing>,
    /// Identity providers a group can take its members from.
    providers: Vec<String>,
}

async fn list(State(s): State<AuthServer>, a: Admin) -> Response {
    let groups = match groups::list(&s.auth).await {
        Ok(g) => g,
        Err(e) => return db_error(e),
    };
    let providers = match s.auth.store.identity_providers().await {
        Ok(p) => p.into_iter().map(|p| p.name).collect(),
        Err(e) => return db_error(e),
    };
    pages::render(
        &GroupsPage {
            csrf: &a.csrf,
            username: &a.user.username,
            groups,
            providers,
        },
        StatusCode::OK,
        a.set_cookie,
    )
}

async fn add(
    State(s): State<AuthServer>,
    Posted {
        who: Administrator(me),
        form: f,
    }: Posted<Administrator>,
) -> Response {
    let name = f.get("name").unwrap_or("").trim();
    let description = f.get("description").unwrap_or("");
    let provider = f.get("provider").filter(|p| !p.is_empty());
    match groups::add_group(&s.auth, name, description, provider, &by(&me)).await {
        Ok(_) => pages::see_other("/admin/groups"),
        Err(e) => super::act_error(e),
    }
}

async fn remove(
    State(s): State<AuthServer>,
    Posted {
        who: Administrator(me),
        form: f,
    }: Posted<Administrator>,
) -> Response {
    let name = f.get("name").unwrap_or("");
    match groups::remove_group(&s.auth, name, &by(&me)).await {
        Ok(true) => pages::see_other("/admin/groups"),
        Ok(false) => super::not_found("group"),
        Err(e) => super::act_error(e),
    }
}

/// Adds (`on=yes`) or removes a member added by hand.
async fn member(
    State(s): State<AuthServer>,
    Posted {
        who: Administrator(me),
        form: f,
    }: Posted<Administrator>,
) -> Response {
    let group = f.get("group").unwrap_or("");
    let user = f.get("user").unwrap_or("").trim();
    let outcome = if f.get("on") == Some("yes") {
        groups::add_member(&s.auth, group, user, &by(&me)).await
    } else {
        groups::remove_member(&s.auth, group, user, &by(&me)).await
    };
    match outcome {
        Ok(_) => pages::see_other("/admin/groups"),
        Err(e) => super::act_error(e),
    }
}
