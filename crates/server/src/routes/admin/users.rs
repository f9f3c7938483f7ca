//! `/admin/users`: list and search users; create one, disable or enable one, set a
//! new password. Disabling and a new password end the person's grants, tokens and
//! sessions at once ([`crate::flows::accounts`]).

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode};
use mcpgate_core::secret::hash_token;

use super::{Admin, Filters, LIST_LIMIT, by, db_error};
use crate::flows::accounts::{self, AccountOutcome};
use crate::flows::admin::{self, NewUser};
use crate::pages;
use crate::pages::{Administrator, Posted};
use crate::state::AuthServer;
use mcpgate_domain::model::User;

pub fn router() -> Router<AuthServer> {
    Router::new()
        .route("/admin/users", get(list).post(create))
        .route("/admin/users/{act}", post(act))
}

pub struct UserLine {
    pub username: String,
    pub email: Option<String>,
    pub is_admin: bool,
    pub disabled: bool,
    pub created: String,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage<'a> {
    csrf: &'a str,
    username: &'a str,
    search: &'a str,
    users: Vec<UserLine>,
    notice: Option<String>,
}

async fn list(State(s): State<AuthServer>, a: Admin, q: Filters) -> Response {
    let search = q.get("q").unwrap_or("");
    // A fixed text per act, so that a crafted link cannot put words on the page.
    let notice = q
        .get("done")
        .and_then(|d| DONE.iter().find(|(k, _)| *k == d))
        .map(|(_, text)| format!("{search}: {text}"));
    let users = match s.auth.store.search_users(search, LIST_LIMIT).await {
        Ok(u) => u,
        Err(e) => return db_error(e),
    };
    let users = users
        .into_iter()
        .map(|u| UserLine {
            created: pages::when(Some(u.created_at)),
            username: u.username,
            email: u.email,
            is_admin: u.is_admin,
            disabled: u.disabled,
        })
        .collect();
    pages::render(
        &UsersPage {
            csrf: &a.csrf,
            username: &a.user.username,
            search,
            users,
            notice,
        },
        StatusCode::OK,
        a.set_cookie,
    )
}

/// What the list says after an act.
const DONE: &[(&str, &str)] = &[
    ("created", "created"),
    (
        "disable",
        "disabled; their grants, tokens and sessions are ended",
    ),
    ("enable", "enabled"),
    (
        "password",
        "password changed; their grants and sessions are ended",
    ),
];

/// Back to the list, narrowed to `name`, saying what was done.
fn done(name: &str, what: &str) -> Response {
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("q", name)
        .append_pair("done", what)
        .finish();
    pages::see_other(&format!("/admin/users?{q}"))
}

async fn create(
    State(s): State<AuthServer>,
    Posted {
        who: Administrator(me),
        form: f,
    }: Posted<Administrator>,
) -> Response {
    let new = NewUser {
        username: f.get("username").unwrap_or("").trim().to_owned(),
        email: f.get("email").map(|e| e.trim().to_owned()),
        admin: f.get("admin") == Some("yes"),
        password: f.get("password").map(String::from),
    };
    match admin::create_user(&s.auth, new, &by(&me)).await {
        Ok(u) => done(&u.username, "created"),
        Err(e) => super::act_error(e),
    }
}

/// One account act on the user named in the form.
async fn account(
    s: &AuthServer,
    session: Option<String>,
    me: User,
    f: &crate::forms::Params,
    act: &str,
) -> Response {
    let Some(name) = f.get("username") else {
        return super::not_found("user");
    };
    let by = by(&me);
    let outcome = match act {
        "disable" if name == me.username => {
            return pages::error_page(
                StatusCode::BAD_REQUEST,
                "Not done",
                "You cannot disable your own account here: another administrator, or the command line, can.",
            );
        }
        "disable" => accounts::disable_user(&s.auth, name, &by).await,
        "enable" => accounts::enable_user(&s.auth, name, &by).await,
        _ => {
            let password = f.get("password").unwrap_or("").to_owned();
            // One's own new password keeps the session that set it.
            let own = (name == me.username)
                .then_some(session)
                .flatten()
                .map(|id| hash_token(&id));
            admin::reset_password(&s.auth, name, password, own.as_deref(), &by).await
        }
    };
    match outcome {
        Ok(AccountOutcome::Done) => done(name, act),
        Ok(AccountOutcome::NoSuchUser) => super::not_found("user"),
        Err(e) => super::act_error(e),
    }
}

/// `/admin/users/disable`, `/enable` and `/password`: one account act on the user the
/// form names.
async fn act(
    State(s): State<AuthServer>,
    Path(act): Path<String>,
    headers: HeaderMap,
    Posted {
        who: Administrator(me),
        form: f,
    }: Posted<Administrator>,
) -> Response {
    if !matches!(act.as_str(), "disable" | "enable" | "password") {
        return super::not_found("action");
    }
    let session = pages::Jar::Session.read(&s.cfg, &headers);
    account(&s, session, me, &f, &act).await
}
