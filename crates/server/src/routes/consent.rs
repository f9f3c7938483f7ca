//! The consent page: who is asking, for what, and the person's answer. The person may
//! untick scopes and grant fewer than asked; the token response's `scope` says what
//! was granted.
//!
//! The page is skipped only when the client's identity is assured: a confidential
//! client the operator registered, asking for scopes already granted. A public client's
//! id proves nothing (anyone can start a flow with a shared metadata-document id, a
//! de-duplicated registration or a loopback redirect on any port), so skipping consent
//! for it would let an attacker have a signed-in victim's browser finish the attacker's
//! flow (RFC 9700 §4.1, OAuth 2.1 §7.4.2, MCP "Confused Deputy"). The page for a
//! returning person is pre-ticked and marks what was allowed before: one click.
//!
//! The person also chooses how long the consent lasts (`duration`: an hour, a day,
//! thirty days, or until revoked, the default); no token of the grant outlives it.
//!
//! Only the scopes the person may hold are offered ([`authorize::offer`]); the others
//! the client asked for are listed as not available, and the client gets the rest.

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use http::{HeaderValue, StatusCode, header};
use mcpgate_core::ScopeSet;
use mcpgate_core::redirect_uri::is_loopback;
use mcpgate_domain::model::{AuthRequest, Client, User};
use serde::Deserialize;

use super::authorize::respond_error;
use crate::flows::authorize::{self, Lasting};
use crate::pages::{self, FormToken, MaybeSignedIn, PageResult, Posted};
use crate::state::AuthServer;

pub fn router() -> Router<AuthServer> {
    Router::new().route("/consent", get(show).post(decide))
}

#[derive(Deserialize)]
struct RequestQuery {
    request: Option<String>,
}

pub struct ScopeLine {
    pub name: String,
    pub description: String,
    pub already: bool,
    /// The narrower scopes it includes, comma-separated (granted with it).
    pub includes: String,
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    csrf: &'a str,
    request_id: &'a str,
    client_name: &'a str,
    verified: bool,
    /// Who vouches for a client the operator did not register.
    vouched_by: Option<String>,
    redirect_host: String,
    localhost_only: bool,
    username: &'a str,
    scopes: Vec<ScopeLine>,
    /// Asked for, but not available to this person (their groups do not allow it).
    withheld: Vec<ScopeLine>,
}

fn expired() -> Response {
    pages::error_page(
        StatusCode::BAD_REQUEST,
        "This request has expired",
        "This authorization request has expired or was already answered. Go back to your application and connect again.",
    )
}

/// What a person sees of a redirect URI: its host, or its scheme for a native app.
fn redirect_host(uri: &str) -> String {
    url::Url::parse(uri)
        .map(|u| match u.host_str() {
            Some(h) if u.scheme() == "https" || u.scheme() == "http" => h.to_owned(),
            Some(h) => format!("{}://{h}", u.scheme()),
            None => u.scheme().to_owned(),
        })
        .unwrap_or_default()
}

/// The origin (or scheme) the consent form will end up redirecting to, for CSP.
fn form_action_target(uri: &str) -> String {
    url::Url::parse(uri)
        .map(|u| match u.scheme() {
            "http" | "https" => u.origin().ascii_serialization(),
            other => format!("{other}:"),
        })
        .unwrap_or_default()
}

async fn show(
    State(s): State<AuthServer>,
    MaybeSignedIn(user): MaybeSignedIn,
    FormToken(csrf): FormToken,
    Query(q): Query<RequestQuery>,
) -> PageResult {
    let Some(id) = q.request else {
        return Ok(expired());
    };
    let Some((req, client)) = authorize::pending(&s.auth, &id).await? else {
        return Ok(expired());
    };
    let Some(user) = user else {
        let next = format!("/consent?request={id}");
        return Ok(pages::see_other(&format!(
            "/login?next={}",
            url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
        )));
    };
    let offer = authorize::offer(&s.auth, &user, &req).await?;
    if authorize::operator_vouches_for(&client)
        && !client.is_public()
        && !offer.offered.is_empty()
        && offer.withheld.is_empty()
        && offer.granted.is_superset(&offer.offered)
    {
        // An operator-registered confidential client asking for what was granted
        // before: its identity is assured at the token endpoint, so no need to ask.
        return Ok(
            match authorize::approve(&s.auth, &id, &req, &user, &offer.offered, None).await {
                Ok(location) => pages::see_other(&location),
                Err(e) => respond_error(&s, e),
            },
        );
    }
    page(&s, csrf, &id, &req, &client, &user, &offer).await
}

async fn page(
    s: &AuthServer,
    csrf: pages::Csrf,
    id: &str,
    req: &AuthRequest,
    client: &Client,
    user: &User,
    offer: &authorize::Offer,
) -> PageResult {
    let descriptions: std::collections::HashMap<String, String> =
        s.auth.store.scopes().await?.into_iter().collect();
    let hierarchy = crate::flows::hierarchy::Hierarchy::load(&s.auth).await?;
    let line = |name: &str| ScopeLine {
        name: name.to_owned(),
        description: descriptions
            .get(name)
            .cloned()
            .unwrap_or_else(|| format!("Use the scope {name}")),
        already: offer.granted.contains(name),
        includes: hierarchy
            .includes(name)
            .map(|n| n.iter().map(String::as_str).collect::<Vec<_>>().join(", "))
            .unwrap_or_default(),
    };
    let scopes = offer.offered.iter().map(line).collect();
    let withheld = offer.withheld.iter().map(line).collect();
    let localhost_only = client
        .redirect_uris
        .iter()
        .all(|u| url::Url::parse(u).is_ok_and(|u| is_loopback(&u)));
    let mut resp = pages::render(
        &ConsentPage {
            csrf: &csrf.token,
            request_id: id,
            client_name: &client.name,
            verified: authorize::operator_vouches_for(client),
            vouched_by: authorize::voucher_text(&s.auth, client).await?,
            redirect_host: redirect_host(&req.redirect_uri),
            localhost_only,
            username: &user.username,
            scopes,
            withheld,
        },
        StatusCode::OK,
        csrf.set_cookie,
    );
    if let Ok(v) = HeaderValue::from_str(&pages::csp(&form_action_target(&req.redirect_uri))) {
        resp.headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, v);
    }
    Ok(resp)
}

async fn decide(
    State(s): State<AuthServer>,
    Posted {
        who: MaybeSignedIn(user),
        form: f,
    }: Posted<MaybeSignedIn>,
) -> PageResult {
    let Some(user) = user else {
        return Ok(pages::error_page(
            StatusCode::UNAUTHORIZED,
            "Signed out",
            "Your session ended. Go back to your application and connect again.",
        ));
    };
    let Some(id) = f.get("request") else {
        return Ok(expired());
    };
    let Some((req, _client)) = authorize::pending(&s.auth, id).await? else {
        return Ok(expired());
    };
    let requested = req.scope.clone();
    // How long the consent lasts: one of the page's choices (absent: until revoked).
    let lasting = match f.get("duration") {
        None => Some(Lasting::UntilRevoked),
        Some(v) => match v.parse().ok().and_then(Lasting::from_secs) {
            Some(l) => Some(l),
            None => {
                return Ok(pages::error_page(
                    StatusCode::BAD_REQUEST,
                    "Bad request",
                    "The chosen duration is not one this page offers.",
                ));
            }
        },
    };
    let outcome = match f.get("decision") {
        Some("approve") => {
            let chosen = ScopeSet::from_tokens(f.all("scope_choice").iter().cloned());
            // Only scopes that were asked for can be granted, whatever the form says.
            let approved = chosen.intersection(&requested);
            // Nothing ticked of what was asked is a no; a request for no scope at all (a
            // resource that has none) is approved as asked.
            if approved.is_empty() && !requested.is_empty() {
                authorize::deny(&s.auth, id, &req, &user).await
            } else {
                authorize::approve(&s.auth, id, &req, &user, &approved, lasting).await
            }
        }
        _ => authorize::deny(&s.auth, id, &req, &user).await,
    };
    Ok(match outcome {
        Ok(location) => pages::see_other(&location),
        Err(e) => respond_error(&s, e),
    })
}
