//! `/admin/grants`: live grants searched by user and client; revoking one ends every
//! token issued under it at once ([`crate::flows::revoke::revoke_grant`]).

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use http::StatusCode;

use super::{Admin, Filters, LIST_LIMIT, by, db_error};
use crate::flows::{activity, revoke};
use crate::pages;
use crate::pages::{Administrator, Posted};
use crate::state::AuthServer;

pub fn router() -> Router<AuthServer> {
    Router::new()
        .route("/admin/grants", get(list))
        .route("/admin/grants/revoke", post(revoke_grant))
}

pub struct GrantLine {
    pub id: String,
    pub username: String,
    pub client_id: String,
    pub client_name: String,
    pub scopes: Vec<String>,
    pub resource: String,
    pub granted: String,
    pub last_used: String,
    /// "ends in …", when the person chose an end at consent.
    pub ends: Option<String>,
    /// Tool calls over the last thirty days: allowed, refused.
    pub calls_30d: [i64; 2],
}

#[derive(Template)]
#[template(path = "admin/grants.html")]
struct GrantsPage<'a> {
    csrf: &'a str,
    username: &'a str,
    user: &'a str,
    client: &'a str,
    grants: Vec<GrantLine>,
    notice: Option<String>,
}

async fn list(State(s): State<AuthServer>, a: Admin, q: Filters) -> Response {
    let (user, client) = (q.get("user").unwrap_or(""), q.get("client").unwrap_or(""));
    let user_id = match user {
        "" => None,
        name => match s.auth.store.user_by_name(name).await {
            Ok(Some(u)) => Some(u.id),
            Ok(None) => {
                return render(
                    &a,
                    user,
                    client,
                    Vec::new(),
                    Some(format!("No user named {name}.")),
                );
            }
            Err(e) => return db_error(e),
        },
    };
    let client_id = (!client.is_empty()).then_some(client);
    let rows = match s
        .auth
        .store
        .search_grants(user_id.as_deref(), client_id, LIST_LIMIT)
        .await
    {
        Ok(r) => r,
        Err(e) => return db_error(e),
    };
    let calls = match activity::by_app(&s.auth, user_id.as_deref()).await {
        Ok(c) => c,
        Err(e) => return db_error(e),
    };
    let now = s.auth.now();
    let grants = rows
        .into_iter()
        .map(|(g, username)| GrantLine {
            calls_30d: calls
                .get(&(g.user_id.clone(), g.client_id.clone()))
                .map_or([0, 0], |a| [a.allowed, a.refused]),
            ends: g.expires_at.map(|e| pages::until(now, e)),
            scopes: g
                .scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            granted: pages::when(Some(g.created_at)),
            last_used: pages::when(g.last_used_at),
            id: g.id,
            username,
            client_id: g.client_id,
            client_name: g.client_name,
            resource: g.resource,
        })
        .collect();
    render(&a, user, client, grants, None)
}

fn render(
    a: &super::Admin,
    user: &str,
    client: &str,
    grants: Vec<GrantLine>,
    notice: Option<String>,
) -> Response {
    pages::render(
        &GrantsPage {
            csrf: &a.csrf,
            username: &a.user.username,
            user,
            client,
            grants,
            notice,
        },
        StatusCode::OK,
        a.set_cookie.clone(),
    )
}

async fn revoke_grant(
    State(s): State<AuthServer>,
    Posted {
        who: Administrator(me),
        form: f,
    }: Posted<Administrator>,
) -> Response {
    let Some(id) = f.get("grant") else {
        return super::not_found("grant");
    };
    match revoke::revoke_grant(&s.auth, id, &by(&me)).await {
        Ok(true) => pages::see_other("/admin/grants"),
        Ok(false) => super::not_found("live grant"),
        Err(e) => super::act_error(e),
    }
}
