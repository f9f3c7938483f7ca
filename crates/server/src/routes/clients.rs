//! "My OAuth clients": a signed-in person creates clients for AI clients that take a
//! manual client id and secret. The secret is shown once and stored as a hash.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::StatusCode;
use mcpgate_core::ErrorCode;
use mcpgate_domain::Actor;
use mcpgate_domain::model::User;

use crate::flows::register::clean_name;
use crate::flows::{admin, revoke};
use crate::pages::{self, FormToken, Posted, SignedIn};
use crate::state::AuthServer;

pub fn router() -> Router<AuthServer> {
    Router::new()
        .route("/clients", get(list).post(create))
        .route("/clients/delete", post(delete))
}

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
    csrf: pages::Csrf,
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

async fn list(
    State(s): State<AuthServer>,
    SignedIn(user): SignedIn,
    FormToken(csrf): FormToken,
) -> Response {
    page(&s, csrf, &user, None, None).await
}

async fn create(
    State(s): State<AuthServer>,
    FormToken(csrf): FormToken,
    Posted {
        who: SignedIn(user),
        form: f,
    }: Posted<SignedIn>,
) -> Response {
    let name = match clean_name(f.get("name")) {
        Ok(n) => n,
        Err(e) => return page(&s, csrf, &user, None, Some(e.description.into_owned())).await,
    };
    let uris = admin::uri_lines(f.get("redirect_uris"));
    let new = admin::NewClient {
        name: name.clone(),
        redirect_uris: uris,
        confidential: f.get("kind") != Some("public"),
        introspection: false,
        owner: Some(user.id.clone()),
        machine: None,
        keys: None,
        secret_in_body: false,
    };
    let by = Actor::Person(user.id.clone());
    let (client, secret) = match admin::create_client(&s.auth, new, &by).await {
        Ok(c) => c,
        Err(e) if e.code != ErrorCode::ServerError => {
            return page(&s, csrf, &user, None, Some(e.description.into_owned())).await;
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
    page(&s, csrf, &user, Some(created), None).await
}

async fn delete(
    State(s): State<AuthServer>,
    Posted {
        who: SignedIn(user),
        form: f,
    }: Posted<SignedIn>,
) -> Response {
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
