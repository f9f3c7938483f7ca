//! "My OAuth clients": a signed-in person creates clients for AI clients that take a
//! manual client id and secret. The secret is shown once and stored as a hash.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode};
use mcpgate_core::ErrorCode;
use mcpgate_domain::Actor;
use mcpgate_domain::model::User;

use crate::flows::register::clean_name;
use crate::flows::{admin, revoke};
use crate::forms::Form;
use crate::pages;
use crate::state::AuthServer;

pub fn router() -> Router<AuthServer> {
    Router::new()
        .route("/clients", get(list).post(create))
        .route("/clients/delete", post(delete))
}

/// Most clients one person may own.
const MAX_OWN_CLIENTS: usize = 50;

pub struct ClientLine {
    pub client_id: String,
    pub name: String,
    pub confidential: bool,
    pub redirect_uris: Vec<String>,
}

pub struct Created {
    pub name: String,
    pub client_id: String,
    pub secret: Option<String>,
}

#[derive(Template)]
#[template(path = "clients.html")]
struct ClientsPage<'a> {
    csrf: &'a str,
    username: &'a str,
    /// Shows the link to the admin pages.
    is_admin: bool,
    clients: Vec<ClientLine>,
    created: Option<Created>,
    error: Option<String>,
}

async fn page(
    s: &AuthServer,
    headers: &HeaderMap,
    user: &User,
    created: Option<Created>,
    error: Option<String>,
) -> Response {
    let clients = match s.auth.store.clients(Some(&user.id)).await {
        Ok(clients) => clients,
        Err(e) => return pages::PageError::from(e).into_response(),
    };
    let clients = clients
        .into_iter()
        .map(|c| ClientLine {
            confidential: !c.is_public(),
            client_id: c.client_id,
            name: c.name,
            redirect_uris: c.redirect_uris,
        })
        .collect();
    let csrf = pages::csrf(s, headers);
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    pages::render(
        &ClientsPage {
            csrf: &csrf.token,
            username: &user.username,
            is_admin: user.is_admin,
            clients,
            created,
            error,
        },
        status,
        csrf.set_cookie,
    )
}

async fn list(State(s): State<AuthServer>, headers: HeaderMap) -> Response {
    let user = match pages::current_user(&s, &headers).await {
        Ok(Some(user)) => user,
        Ok(None) => return pages::see_other("/login?next=/clients"),
        Err(e) => return e.into_response(),
    };
    page(&s, &headers, &user, None, None).await
}

async fn create(State(s): State<AuthServer>, headers: HeaderMap, Form(f): Form) -> Response {
    if !pages::csrf_ok(&s, &headers, &f) {
        return pages::csrf_failure();
    }
    let user = match pages::current_user(&s, &headers).await {
        Ok(Some(user)) => user,
        Ok(None) => return pages::see_other("/login?next=/clients"),
        Err(e) => return e.into_response(),
    };
    let name = match clean_name(f.get("name")) {
        Ok(n) => n,
        Err(e) => return page(&s, &headers, &user, None, Some(e.description.into_owned())).await,
    };
    let uris = admin::uri_lines(f.get("redirect_uris"));
    if s.auth
        .store
        .clients(Some(&user.id))
        .await
        .map(|c| c.len())
        .unwrap_or(0)
        >= MAX_OWN_CLIENTS
    {
        return page(
            &s,
            &headers,
            &user,
            None,
            Some(format!("You can own at most {MAX_OWN_CLIENTS} clients.")),
        )
        .await;
    }
    let new = admin::NewClient {
        name: name.clone(),
        redirect_uris: uris,
        confidential: f.get("kind") != Some("public"),
        introspection: false,
        owner: Some(user.id.clone()),
    };
    let by = Actor::Person(user.id.clone());
    let (client, secret) = match admin::create_client(&s.auth, new, &by).await {
        Ok(c) => c,
        Err(e) if e.code != ErrorCode::ServerError => {
            return page(&s, &headers, &user, None, Some(e.description.into_owned())).await;
        }
        Err(e) => {
            tracing::error!(error = ?e, "creating a client failed");
            return pages::error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Error",
                "The client could not be saved. Try again.",
            );
        }
    };
    let created = Created {
        name,
        client_id: client.client_id,
        secret: secret.map(|s| s.expose().to_owned()),
    };
    page(&s, &headers, &user, Some(created), None).await
}

async fn delete(State(s): State<AuthServer>, headers: HeaderMap, Form(f): Form) -> Response {
    if !pages::csrf_ok(&s, &headers, &f) {
        return pages::csrf_failure();
    }
    let user = match pages::current_user(&s, &headers).await {
        Ok(Some(user)) => user,
        Ok(None) => return pages::see_other("/login?next=/clients"),
        Err(e) => return e.into_response(),
    };
    if let Some(id) = f.get("client_id")
        && let Err(e) =
            revoke::delete_client(&s.auth, id, Some(&user.id), &Actor::Person(user.id.clone()))
                .await
    {
        tracing::error!(error = ?e, "client deletion failed");
        return pages::error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Deletion failed",
            "Try again.",
        );
    }
    pages::see_other("/clients")
}
