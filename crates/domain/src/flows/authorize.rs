//! The authorization endpoint's rules (OAuth 2.1 §4.1.1, RFC 8707, RFC 9207).
//!
//! Until `client_id` and `redirect_uri` are verified, an error is shown on a page and
//! never redirected (OAuth 2.1 §4.1.2.1: no open redirector). After that, errors go
//! back to the client with `error`, `state` and `iss`.

use mcpgate_core::secret::{Secret, hash_token, random_id};
use mcpgate_core::{ErrorCode, OAuthError, ScopeSet, pkce, redirect_uri, resource};
use url::Url;

use crate::Authority;
use crate::audit::Event;
use crate::flows::entitlements;
use crate::model::{AuthCode, AuthRequest, Client, ClientKind, Grant, Outcome, StepKind, User};
use crate::ports::DocumentError;
use crate::store::StoreError;

/// The authorization request's parameters (OAuth 2.1 §4.1.1, RFC 8707 §2), as the
/// client sent them: each is checked here, in an order that decides where an error
/// may be sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuthorizeRequest<'a> {
    pub client_id: Option<&'a str>,
    pub redirect_uri: Option<&'a str>,
    pub response_type: Option<&'a str>,
    pub state: Option<&'a str>,
    pub code_challenge: Option<&'a str>,
    pub code_challenge_method: Option<&'a str>,
    pub resource: Option<&'a str>,
    pub scope: Option<&'a str>,
}

/// Why an authorization request failed.
#[derive(Debug)]
pub enum AuthorizeError {
    /// Shown to the person; never redirected.
    Page(String),
    /// Sent back to the verified redirect URI.
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: OAuthError,
    },
}

impl From<StoreError> for AuthorizeError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store error during authorization");
        AuthorizeError::Page("The server could not process this request. Try again later.".into())
    }
}

/// The redirect URL carrying an error back to the client, with `iss` (RFC 9207 §2).
pub fn error_redirect(issuer: &str, redirect: &str, state: Option<&str>, e: &OAuthError) -> String {
    let mut pairs = vec![
        ("error", e.code.as_str()),
        ("error_description", e.description.as_ref()),
    ];
    if let Some(st) = state {
        pairs.push(("state", st));
    }
    pairs.push(("iss", issuer));
    with_query(redirect, &pairs)
}

fn with_query(redirect: &str, pairs: &[(&str, &str)]) -> String {
    let mut url = Url::parse(redirect).expect("registered redirect URIs parse");
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
    }
    url.to_string()
}

/// Validates an authorization request and stores it pending consent; returns the
/// pending request's handle. The outcome is noted for the connection doctor once the
/// client is known (an unknown client id is nobody's step).
pub async fn validate(s: &Authority, p: &AuthorizeRequest<'_>) -> Result<String, AuthorizeError> {
    let result = check_request(s, p).await;
    if let Some(client_id) = p.client_id {
        match &result {
            Ok(_) => s.note(
                client_id,
                StepKind::Authorize,
                Outcome::Ok,
                format!(
                    "accepted for resource {}",
                    p.resource.unwrap_or(s.cfg.resource.as_str())
                ),
            ),
            Err(AuthorizeError::Redirect { error, .. }) => s.note(
                client_id,
                StepKind::Authorize,
                Outcome::Refused,
                format!("{}: {}", error.code.as_str(), error.description),
            ),
            Err(AuthorizeError::Page(msg)) if msg.starts_with(REDIRECT_MISMATCH) => s.note(
                client_id,
                StepKind::Authorize,
                Outcome::Refused,
                format!(
                    "redirect_uri {} is not one the client registered",
                    p.redirect_uri.unwrap_or("(none)")
                ),
            ),
            Err(_) => {}
        }
    }
    result
}

/// The page's words when a redirect URI is not the client's.
const REDIRECT_MISMATCH: &str =
    "The application asked to return to an address it did not register.";

async fn check_request(s: &Authority, p: &AuthorizeRequest<'_>) -> Result<String, AuthorizeError> {
    let client_id = p.client_id.ok_or_else(|| {
        AuthorizeError::Page("The request names no client (client_id is missing).".into())
    })?;
    let client = if super::metadata_document::is_document_url(client_id) {
        super::metadata_document::client_for(s, client_id)
            .await
            .map_err(|e| match e {
                // Logged, and a generic page: the store's words are not the person's.
                DocumentError::Store(e) => AuthorizeError::from(e),
                e => AuthorizeError::Page(e.to_string()),
            })?
    } else {
        s.store.client(client_id).await?.ok_or_else(|| {
            AuthorizeError::Page(
                "The application that sent you here is not registered with this server.".into(),
            )
        })?
    };
    let redirect = match p.redirect_uri {
        Some(r)
            if client
                .redirect_uris
                .iter()
                .any(|reg| redirect_uri::matches(reg, r)) =>
        {
            r.to_owned()
        }
        Some(_) => {
            return Err(AuthorizeError::Page(format!(
                "{REDIRECT_MISMATCH} For your safety, you were not sent there."
            )));
        }
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => {
            return Err(AuthorizeError::Page(
                "The request names no redirect_uri.".into(),
            ));
        }
    };
    let state = p.state.map(str::to_owned);
    if state.as_ref().is_some_and(|s| s.len() > 1024) {
        return Err(AuthorizeError::Page(
            "The request's state parameter is too long.".into(),
        ));
    }
    let fail = |code: ErrorCode, d: String| AuthorizeError::Redirect {
        redirect_uri: redirect.clone(),
        state: state.clone(),
        error: OAuthError::new(code, d),
    };
    match p.response_type {
        Some("code") => {}
        None => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "response_type is required".into(),
            ));
        }
        Some(_) => {
            return Err(fail(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported".into(),
            ));
        }
    }
    let challenge = pkce::validate_challenge(p.code_challenge, p.code_challenge_method)
        .map_err(|e| fail(ErrorCode::InvalidRequest, e.to_string()))?;
    let target = match p.resource {
        None => s.cfg.resource.clone(),
        Some(r) => match resource::indicator(r) {
            Some(c) if s.cfg.resources().contains(&c) => c,
            _ => {
                return Err(fail(
                    ErrorCode::InvalidTarget,
                    format!(
                        "unknown resource; this server issues tokens for {}",
                        s.cfg.resource
                    ),
                ));
            }
        },
    };
    let scope = requested_scope(s, p.scope)
        .await?
        .map_err(|e| fail(ErrorCode::InvalidScope, e))?;
    let id = Secret::generate();
    let now = s.now();
    s.store
        .insert_auth_request(&AuthRequest {
            id_hash: id.hash(),
            client_id: client.client_id,
            redirect_uri: redirect,
            scope,
            state,
            code_challenge: challenge,
            resource: target,
            created_at: now,
            expires_at: now + s.cfg.request_ttl_secs,
        })
        .await?;
    Ok(id.expose().to_owned())
}

/// The scopes to ask for: the known ones of the request, or the defaults when it
/// names none (RFC 6749 §3.3). Unknown scopes are dropped rather than refused, since
/// clients send their own defaults (`openid`, `profile`, …) that mean nothing here.
/// The outer error is the store's; the inner one, a malformed `scope`.
async fn requested_scope(
    s: &Authority,
    raw: Option<&str>,
) -> Result<Result<ScopeSet, String>, StoreError> {
    let asked = match raw {
        None => return Ok(Ok(s.cfg.default_scopes.clone())),
        Some(r) => match ScopeSet::parse(r) {
            Ok(a) => a,
            Err(e) => return Ok(Err(e.to_string())),
        },
    };
    let known = known_scopes(s).await?;
    let kept = asked.intersection(&known);
    Ok(Ok(if kept.is_empty() {
        s.cfg.default_scopes.clone()
    } else {
        kept
    }))
}

/// The scopes this server knows: the operator's and the defaults.
pub async fn known_scopes(s: &Authority) -> Result<ScopeSet, StoreError> {
    let stored = s.store.scopes().await?;
    Ok(ScopeSet::from_tokens(stored.into_iter().map(|(n, _)| n)).union(&s.cfg.default_scopes))
}

/// True when the operator registered this client (from the command line or the
/// administrator's pages): the only clients shown as verified, and, when confidential,
/// the only ones whose repeated requests may skip the consent page.
pub fn operator_vouches_for(client: &Client) -> bool {
    client.kind == ClientKind::Preregistered && client.owner_user_id.is_none()
}

/// Who vouches for a client: only the operator's word makes it "verified"; a
/// metadata document is vouched for by the origin that publishes it, a self-service
/// client by the person who created it, a dynamic registration by nobody.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Voucher {
    Operator,
    /// The origin serving the client's metadata document.
    Origin(String),
    /// The user id of the person who created the client on the "my clients" page.
    User(String),
    Nobody,
}

pub fn vouched_by(client: &Client) -> Voucher {
    match (client.kind, &client.owner_user_id) {
        (ClientKind::MetadataDocument, _) => Voucher::Origin(
            url::Url::parse(&client.client_id)
                .map(|u| u.origin().ascii_serialization())
                .unwrap_or_default(),
        ),
        (ClientKind::Dynamic, _) => Voucher::Nobody,
        (ClientKind::Preregistered, Some(owner)) => Voucher::User(owner.clone()),
        (ClientKind::Preregistered, None) => Voucher::Operator,
    }
}

/// The sentence a page shows about who vouches for a client (`None`: the operator).
pub async fn voucher_text(s: &Authority, client: &Client) -> Result<Option<String>, StoreError> {
    Ok(match vouched_by(client) {
        Voucher::Operator => None,
        Voucher::Origin(o) => Some(format!(
            "Described by a document published at {o}: that site vouches for it, not this server's operator."
        )),
        Voucher::User(id) => {
            let who = s
                .store
                .user(&id)
                .await?
                .map(|u| u.username)
                .unwrap_or_else(|| "a former user".into());
            Some(format!(
                "Created by {who}, a user of this server: not verified by its operator."
            ))
        }
        Voucher::Nobody => Some(
            "This application registered itself. mcpgate cannot confirm who made it: its name is what it claims."
                .into(),
        ),
    })
}

/// A pending request and its client, if still valid.
pub async fn pending(s: &Authority, id: &str) -> Result<Option<(AuthRequest, Client)>, StoreError> {
    if id.len() > 128 {
        return Ok(None);
    }
    let Some(req) = s.store.auth_request(&hash_token(id), s.now()).await? else {
        return Ok(None);
    };
    Ok(s.store.client(&req.client_id).await?.map(|c| (req, c)))
}

/// How long a consent lasts, as the person chose it on the consent page. No token of the
/// grant outlives its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lasting {
    /// Until the person (or an administrator) revokes it.
    #[default]
    UntilRevoked,
    /// For this many seconds from the consent.
    For(i64),
}

impl Lasting {
    /// The consent page's choices, in seconds: an hour, a day, thirty days, and 0 for
    /// "until I revoke it" (the default).
    pub const CHOICES: [i64; 4] = [3600, 86_400, 2_592_000, 0];

    /// One of [`Lasting::CHOICES`]; anything else is not a choice the page offered.
    pub fn from_secs(secs: i64) -> Option<Self> {
        match secs {
            0 => Some(Lasting::UntilRevoked),
            s if Self::CHOICES.contains(&s) => Some(Lasting::For(s)),
            _ => None,
        }
    }

    /// When a grant consented to at `now` ends.
    pub fn end(self, now: i64) -> Option<i64> {
        match self {
            Lasting::UntilRevoked => None,
            Lasting::For(s) => Some(now + s),
        }
    }
}

/// What the consent page offers a person for a pending request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Offer {
    /// Asked for, and the person may hold: the page's checkboxes.
    pub offered: ScopeSet,
    /// Asked for, but restricted to groups the person is not in: shown, not offered
    /// (the client gets the rest, as OAuth allows: RFC 6749 §3.3).
    pub withheld: ScopeSet,
    /// Granted to this client before (pre-ticked, marked "already allowed").
    pub granted: ScopeSet,
}

/// The consent page's offer to `user` for `req` ([`entitlements::entitled`]).
pub async fn offer(s: &Authority, user: &User, req: &AuthRequest) -> Result<Offer, StoreError> {
    let e = entitlements::entitled(s, &user.id, &req.scope).await?;
    s.note(
        &req.client_id,
        StepKind::Consent,
        Outcome::Pending,
        "the consent page was shown",
    );
    Ok(Offer {
        offered: e.held,
        withheld: e.withheld,
        granted: granted(s, user, req).await?,
    })
}

/// The scopes the person already granted this client for this resource.
pub async fn granted(
    s: &Authority,
    user: &User,
    req: &AuthRequest,
) -> Result<ScopeSet, StoreError> {
    Ok(s.store
        .live_grant(&user.id, &req.client_id, &req.resource)
        .await?
        .filter(|g| g.is_live(s.now()))
        .map(|g| g.scope)
        .unwrap_or_default())
}

/// Records consent for `approved`, narrowed to what the person may hold, lasting as
/// chosen (`None`: as the grant already lasts, when consent was not asked again), and
/// returns the redirect carrying a fresh code (or `access_denied` when nothing remains).
/// The request is consumed: a second approval of the same request fails.
pub async fn approve(
    s: &Authority,
    id: &str,
    req: &AuthRequest,
    user: &User,
    approved: &ScopeSet,
    lasting: Option<Lasting>,
) -> Result<String, AuthorizeError> {
    if !s.store.take_auth_request(&hash_token(id)).await? {
        return Err(AuthorizeError::Page(
            "This authorization request was already answered.".into(),
        ));
    }
    // Whatever the form said, only what the person may hold is granted.
    let asked = entitlements::entitled(s, &user.id, &req.scope).await?;
    let approved = &approved.intersection(&asked.held);
    if approved.is_empty() && !req.scope.is_empty() {
        s.note(
            &req.client_id,
            StepKind::Consent,
            Outcome::Refused,
            "none of the requested scopes is available to this person",
        );
        return Ok(error_redirect(
            &s.cfg.issuer,
            &req.redirect_uri,
            req.state.as_deref(),
            &OAuthError::new(
                ErrorCode::AccessDenied,
                "none of the requested scopes is available to this person",
            ),
        ));
    }
    let now = s.now();
    let mut existing = s
        .store
        .live_grant(&user.id, &req.client_id, &req.resource)
        .await?;
    if let Some(g) = existing.take_if(|g| !g.is_live(now)) {
        // Ended as its person chose: this consent starts a new grant.
        s.store.revoke_grant(&g.id, now, "grant_ended").await?;
    }
    let (grant, ends) = match existing {
        Some(g) => {
            let merged = g.scope.union(approved);
            let withheld = g.withheld.union(&asked.withheld).difference(&merged);
            // A new consent says how long it lasts from now: it may extend the grant or
            // end it sooner.
            let ends = lasting.map_or(g.expires_at, |l| l.end(now));
            // A repeated consent that changes nothing (the consent page skipped for
            // what was granted before) writes nothing: a transaction less per code.
            if merged != g.scope || withheld != g.withheld || ends != g.expires_at {
                s.store
                    .update_grant(&g.id, &merged, &withheld, ends)
                    .await?;
            }
            (g, ends)
        }
        None => {
            let g = Grant {
                id: random_id(),
                user_id: user.id.clone(),
                client_id: req.client_id.clone(),
                resource: req.resource.clone(),
                scope: approved.clone(),
                withheld: asked.withheld.clone(),
                expires_at: lasting.unwrap_or_default().end(now),
                created_at: now,
                last_used_at: None,
                revoked_at: None,
            };
            s.store.insert_grant(&g).await?;
            let ends = g.expires_at;
            (g, ends)
        }
    };
    let code = Secret::generate();
    s.store
        .insert_code(&AuthCode {
            code_hash: code.hash(),
            client_id: req.client_id.clone(),
            user_id: user.id.clone(),
            grant_id: grant.id.clone(),
            redirect_uri: req.redirect_uri.clone(),
            scope: approved.clone(),
            resource: req.resource.clone(),
            code_challenge: req.code_challenge.clone(),
            created_at: now,
            expires_at: now + s.cfg.code_ttl_secs,
            used_at: None,
            family_id: None,
        })
        .await?;
    // The client is "used" from its first code on: never evicted at the registration
    // cap (see flows::register).
    if let Some(client) = s.store.client(&req.client_id).await? {
        super::register::mark_used(s, &client, now).await?;
    }
    s.audit(
        Event::ConsentGranted {
            scope: approved.clone(),
            grant: grant.id.clone(),
            ends_at: ends,
        },
        Some(&user.id),
        Some(&req.client_id),
    )
    .await;
    s.note(
        &req.client_id,
        StepKind::Consent,
        Outcome::Ok,
        format!("given for {approved}"),
    );
    let mut pairs = vec![("code", code.expose())];
    if let Some(st) = req.state.as_deref() {
        pairs.push(("state", st));
    }
    pairs.push(("iss", s.cfg.issuer.as_str()));
    Ok(with_query(&req.redirect_uri, &pairs))
}

/// The person said no: the request is consumed and the client told `access_denied`.
pub async fn deny(
    s: &Authority,
    id: &str,
    req: &AuthRequest,
    user: &User,
) -> Result<String, AuthorizeError> {
    s.store.take_auth_request(&hash_token(id)).await?;
    s.audit(
        Event::ConsentDenied {},
        Some(&user.id),
        Some(&req.client_id),
    )
    .await;
    s.note(
        &req.client_id,
        StepKind::Consent,
        Outcome::Refused,
        "the person denied the request",
    );
    Ok(error_redirect(
        &s.cfg.issuer,
        &req.redirect_uri,
        req.state.as_deref(),
        &OAuthError::new(ErrorCode::AccessDenied, "the person denied the request"),
    ))
}
