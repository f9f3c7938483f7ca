//! The connected-apps page: every grant the signed-in person made, when it ends (as
//! chosen at consent), what the app did with it (tool calls per day over thirty days,
//! allowed and refused), and a revoke button that ends the grant's tokens at once; then
//! the person's own accounts at upstreams that want them (connected accounts), each
//! with when it was last used, to connect or disconnect.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use http::StatusCode;
use mcpgate_domain::Actor;

use crate::flows::{activity, authorize, connections, revoke};
use crate::pages::chart::{self, Chart};
use crate::pages::{self, FormToken, PageResult, Posted, SignedIn};
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
    /// Asked for, but withheld: the person may not hold them (their groups).
    pub withheld: Vec<String>,
    pub granted: String,
    pub last_used: String,
    /// "ends in …" when the person chose an end at consent.
    pub ends: Option<String>,
    /// Its tool calls per day over the last thirty days, allowed and refused.
    pub chart: Chart,
}

/// An upstream that wants the person's own account, and whether they connected it.
pub struct AccountLine {
    pub upstream: String,
    pub label: String,
    /// When it was connected; `None`: not connected.
    pub since: Option<String>,
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
    accounts: Vec<AccountLine>,
}

async fn list(
    State(s): State<AuthServer>,
    SignedIn(user): SignedIn,
    FormToken(csrf): FormToken,
) -> PageResult {
    let now = s.auth.now();
    let activity = activity::by_app(&s.auth, Some(&user.id)).await?;
    let from = activity::window_start(now);
    let mut grants = Vec::new();
    for g in s.auth.store.grant_views(Some(&user.id)).await? {
        if g.expires_at.is_some_and(|e| e <= now) {
            // Ended as the person chose: no longer connected.
            continue;
        }
        let calls = activity
            .get(&(user.id.clone(), g.client_id.clone()))
            .cloned()
            .unwrap_or_default();
        let client = s.auth.store.client(&g.client_id).await?;
        let (unverified, vouched_by) = match &client {
            Some(c) => (
                !authorize::operator_vouches_for(c),
                authorize::voucher_text(&s.auth, c).await?,
            ),
            None => (true, None),
        };
        grants.push(GrantLine {
            unverified,
            vouched_by,
            scopes: g.scope.split_whitespace().map(String::from).collect(),
            withheld: g.withheld.split_whitespace().map(String::from).collect(),
            granted: pages::when(Some(g.created_at)),
            last_used: pages::when(g.last_used_at),
            ends: g.expires_at.map(|e| pages::until(now, e)),
            chart: chart::pairs_chart(
                chart::SMALL,
                from,
                86_400,
                &calls.days,
                chart::ALLOWED_AND_REFUSED,
            ),
            id: g.id,
            client_id: g.client_id,
            client_name: g.client_name,
        });
    }
    let connected = connections::of(&s.auth, &user.id).await?;
    let accounts = s
        .auth
        .cfg
        .connectable
        .iter()
        .map(|(upstream, how)| {
            let c = connected.iter().find(|c| &c.upstream == upstream);
            AccountLine {
                upstream: upstream.clone(),
                label: how.label.clone(),
                since: c.map(|c| pages::when(Some(c.created_at))),
                last_used: pages::when(c.and_then(|c| c.last_used_at)),
            }
        })
        .collect();
    Ok(pages::render(
        &AppsPage {
            csrf: &csrf.token,
            username: &user.username,
            is_admin: user.is_admin,
            grants,
            accounts,
        },
        StatusCode::OK,
        csrf.set_cookie,
    ))
}

async fn revoke_grant(
    State(s): State<AuthServer>,
    Posted {
        who: SignedIn(user),
        form: f,
    }: Posted<SignedIn>,
) -> PageResult {
    let Some(id) = f.get("grant") else {
        return Ok(pages::see_other("/apps"));
    };
    let by = Actor::Person(user.id.clone());
    if revoke::revoke_grant_of(&s.auth, id, Some(&user.id), &by).await? {
        return Ok(pages::see_other("/apps"));
    }
    // Nothing revoked: the person's own grant was revoked already (a second click), or
    // the grant is someone else's, which looks the same as none.
    Ok(match s.auth.store.grant(id).await? {
        Some(g) if g.user_id == user.id => pages::see_other("/apps"),
        _ => pages::error_page(
            StatusCode::NOT_FOUND,
            "Not found",
            "That grant does not exist.",
        ),
    })
}
