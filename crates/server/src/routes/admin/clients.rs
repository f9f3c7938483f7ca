//! `/admin/clients`: every client (registered, dynamic, metadata-document, a
//! person's own), searched, inspected, created and removed. Removing one revokes its
//! grants first ([`crate::flows::revoke::delete_client`]).

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use http::StatusCode;
use mcpgate_domain::model::Client;

use super::{Admin, Filters, LIST_LIMIT, by, db_error};
use crate::flows::admin::{self, NewClient};
use crate::flows::revoke;
use crate::pages;
use crate::pages::{Administrator, FormToken, Posted};
use crate::state::AuthServer;

pub fn router() -> Router<AuthServer> {
    Router::new()
        .route("/admin/clients", get(list).post(create))
        .route("/admin/clients/show", get(show))
        .route("/admin/clients/remove", post(remove))
}

pub struct ClientLine {
    pub client_id: String,
    pub name: String,
    pub kind: &'static str,
    pub confidential: bool,
    pub introspect: bool,
    pub redirect_uris: Vec<String>,
    pub created: String,
    pub last_used: String,
}

impl From<&Client> for ClientLine {
    fn from(c: &Client) -> Self {
        Self {
            client_id: c.client_id.clone(),
            name: c.name.clone(),
            kind: c.kind.as_str(),
            confidential: !c.is_public(),
            introspect: c.can_introspect,
            redirect_uris: c.redirect_uris.clone(),
            created: pages::when(Some(c.created_at)),
            last_used: pages::when(c.last_used_at),
        }
    }
}

#[derive(Template)]
#[template(path = "admin/clients.html")]
struct ClientsPage<'a> {
    csrf: &'a str,
    username: &'a str,
    search: &'a str,
    clients: Vec<ClientLine>,
}

#[derive(Template)]
#[template(path = "admin/client.html")]
struct ClientPage<'a> {
    csrf: &'a str,
    username: &'a str,
    c: ClientLine,
    owner: String,
    metadata: String,
    secret: Option<String>,
}

async fn list(State(s): State<AuthServer>, a: Admin, q: Filters) -> Response {
    let search = q.get("q").unwrap_or("").to_owned();
    let clients = match s.auth.store.search_clients(&search, LIST_LIMIT).await {
        Ok(c) => c,
        Err(e) => return db_error(e),
    };
    pages::render(
        &ClientsPage {
            csrf: &a.csrf,
            username: &a.user.username,
            search: &search,
            clients: clients.iter().map(ClientLine::from).collect(),
        },
        StatusCode::OK,
        a.set_cookie,
    )
}

/// The page of one client; `secret` is shown once, right after creation.
async fn client_page(s: &AuthServer, a: Admin, c: &Client, secret: Option<String>) -> Response {
    let owner = match &c.owner_user_id {
        None => "the operator".to_owned(),
        Some(id) => match s.auth.store.user(id).await {
            Ok(Some(u)) => u.username,
            Ok(None) => id.clone(),
            Err(e) => return db_error(e),
        },
    };
    pages::render(
        &ClientPage {
            csrf: &a.csrf,
            username: &a.user.username,
            c: ClientLine::from(c),
            owner,
            metadata: c.metadata.to_string(),
            secret,
        },
        StatusCode::OK,
        a.set_cookie,
    )
}

async fn show(State(s): State<AuthServer>, a: Admin, q: Filters) -> Response {
    let Some(id) = q.get("client_id").map(String::from) else {
        return super::not_found("client");
    };
    match s.auth.store.client(&id).await {
        Ok(Some(c)) => client_page(&s, a, &c, None).await,
        Ok(None) => super::not_found("client"),
        Err(e) => db_error(e),
    }
}

async fn create(
    State(s): State<AuthServer>,
    FormToken(csrf): FormToken,
    Posted {
        who: Administrator(me),
        form: f,
    }: Posted<Administrator>,
) -> Response {
    let kind = f.get("kind").unwrap_or("public");
    let new = NewClient {
        name: f.get("name").unwrap_or("").to_owned(),
        redirect_uris: admin::uri_lines(f.get("redirect_uris")),
        confidential: kind != "public",
        introspection: kind == "introspection",
        owner: None,
        machine: None,
        keys: None,
        secret_in_body: false,
    };
    let (client, secret) = match admin::create_client(&s.auth, new, &by(&me)).await {
        Ok(c) => c,
        Err(e) => return super::act_error(e),
    };
    // The page renders right here (not after a redirect) so the secret is never in
    // a URL and is shown exactly once.
    let a = Admin {
        user: me,
        csrf: csrf.token,
        set_cookie: csrf.set_cookie,
    };
    let secret = secret.map(|s| s.expose().to_owned());
    client_page(&s, a, &client, secret).await
}

async fn remove(
    State(s): State<AuthServer>,
    Posted {
        who: Administrator(me),
        form: f,
    }: Posted<Administrator>,
) -> Response {
    let Some(id) = f.get("client_id") else {
        return super::not_found("client");
    };
    match revoke::delete_client(&s.auth, id, None, &by(&me)).await {
        Ok(true) => pages::see_other("/admin/clients"),
        Ok(false) => super::not_found("client"),
        Err(e) => super::act_error(e),
    }
}
