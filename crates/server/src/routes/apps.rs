//! The connected-apps page: every grant the signed-in person made, with a revoke
//! button that ends the grant's tokens at once.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode};

use crate::flows::{authorize, revoke};
use crate::forms::Form;
use crate::pages;
use crate::state::AuthServer;

pub fn router() -> Router<AuthServer> {
    Router::new()
        .route("/apps", get(list))
        .route("/apps/revoke", post(revoke_grant))
}

pub struct GrantLine {
    pub id: String,
    pub client_id: String,
    pub client_name: String,
    pub unverified: bool,
    /// Who vouches for a client the operator did not register.
    pub vouched_by: Option<String>,
    pub scopes: Vec<String>,
    pub granted: String,
    pub last_used: String,
}

#[derive(Template)]
#[template(path = "apps.html")]
struct AppsPage<'a> {
    csrf: &'a str,
    username: &'a str,
    /// Shows the link to the admin pages.
    is_admin: bool,
    grants: Vec<GrantLine>,
}

async fn list(State(s): State<AuthServer>, headers: HeaderMap) -> Response {
    let Some(user) = pages::current_user(&s, &headers).await else {
        return pages::see_other("/login?next=/apps");
    };
    let mut grants = Vec::new();
    for g in s
        .store
        .grant_views(Some(&user.id))
        .await
        .unwrap_or_default()
    {
        let client = s.store.client(&g.client_id).await.ok().flatten();
        let (unverified, vouched_by) = match &client {
            Some(c) => (
                !authorize::operator_vouches_for(c),
                authorize::voucher_text(&s, c).await,
            ),
            None => (true, None),
        };
        grants.push(GrantLine {
            unverified,
            vouched_by,
            scopes: g
                .scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            granted: pages::when(Some(g.created_at)),
            last_used: pages::when(g.last_used_at),
            id: g.id,
            client_id: g.client_id,
            client_name: g.client_name,
        });
    }
    let csrf = pages::csrf(&s, &headers);
    pages::render(
        &AppsPage {
            csrf: &csrf.token,
            username: &user.username,
            is_admin: user.is_admin,
            grants,
        },
        StatusCode::OK,
        csrf.set_cookie,
    )
}

async fn revoke_grant(State(s): State<AuthServer>, headers: HeaderMap, Form(f): Form) -> Response {
    if !pages::csrf_ok(&headers, &f) {
        return pages::csrf_failure();
    }
    let Some(user) = pages::current_user(&s, &headers).await else {
        return pages::see_other("/login?next=/apps");
    };
    let Some(id) = f.get("grant") else {
        return pages::see_other("/apps");
    };
    // Only the person's own grants.
    match s.store.grant(id).await {
        Ok(Some(g)) if g.user_id == user.id => {
            if let Err(e) = revoke::revoke_grant(&s, id, "person").await {
                tracing::error!(error = ?e.error, "grant revocation failed");
                return pages::error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Revocation failed",
                    "Try again.",
                );
            }
        }
        _ => {
            return pages::error_page(
                StatusCode::NOT_FOUND,
                "Not found",
                "That grant does not exist.",
            );
        }
    }
    pages::see_other("/apps")
}
