//! Token exchange (RFC 8693): a person's access token from an issuer the operator
//! trusts for it, presented by a confidential client, gets a token of ours for the
//! same person at one of our resources, with no browser. This is how a second mcpgate
//! in front of this one (`credentials = "token_exchange"` on its upstream) reaches it as
//! each of its people: the trust is the operator's (`mcpgate idp trust NAME --issuer …
//! --jwks-uri … --exchange-audience <the front's resource>`), and the person is the one
//! linked to that issuer's subject (`mcpgate idp link`), or admitted by a verified email
//! as a sign-in through that provider would be.
//!
//! What is checked:
//! - the client is confidential and authenticated (RFC 8693 §2.1 leaves client
//!   authentication to the server; a public client could be anyone);
//! - `subject_token_type` is an access token or a JWT; no `actor_token` (delegation is
//!   not offered); `requested_token_type`, when given, is an access token;
//! - the subject token is a JWT of a trusted issuer, signed by one of its keys
//!   (algorithms pinned per key), unexpired, issued at most a day ago, whose `aud` is one
//!   of the audiences the operator allowed for that issuer: a token meant for some
//!   other service cannot be laundered here;
//! - a token bound to a key (`cnf`, DPoP) is refused: whoever presents it here is not
//!   proving that key;
//! - the resource is one we protect; the scopes are the ones asked for (or our
//!   defaults), narrowed to what the person may hold.
//!
//! Every failure of the subject token is `invalid_grant`; of the request's form,
//! `invalid_request` (RFC 8693 §2.2.2).

use mcpgate_core::jose;
use mcpgate_core::jwt::LEEWAY_SECS;
use mcpgate_core::{ErrorCode, OAuthError, resource};
use serde::Deserialize;
use serde_json::Value;

use super::admission::Vouched;
use super::id_jag::{self, refused};
use super::keysets::{self, Origin};
use super::tokens::TokenResponse;
use crate::audit::Event;
use crate::model::Client;
use crate::{Authority, OAuthResult};

/// The grant type (RFC 8693 §2.1).
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// Token type identifiers (RFC 8693 §3).
pub const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
/// The oldest subject token accepted: access tokens live minutes.
pub const MAX_AGE_SECS: i64 = 24 * 3600;

/// A token request with `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExchangeRequest<'a> {
    pub subject_token: &'a str,
    pub subject_token_type: &'a str,
    pub requested_token_type: Option<&'a str>,
    pub actor_token: Option<&'a str>,
    pub resource: Option<&'a str>,
    pub scope: Option<&'a str>,
    pub dpop_jkt: Option<&'a str>,
}

/// The claims read from a subject token.
#[derive(Deserialize)]
struct Subject {
    sub: String,
    exp: i64,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    cnf: Option<Value>,
    #[serde(default)]
    nonce: Option<Value>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<bool>,
    #[serde(default)]
    username: Option<String>,
}

pub async fn grant(
    s: &Authority,
    client: &Client,
    req: ExchangeRequest<'_>,
) -> OAuthResult<TokenResponse> {
    id_jag::noted(s, client, "token exchange", exchange(s, client, req).await)
}

async fn exchange(
    s: &Authority,
    client: &Client,
    req: ExchangeRequest<'_>,
) -> OAuthResult<TokenResponse> {
    // A client the operator named for this issuer (below), and confidential: any
    // other app holding a person's token must not turn it into one of ours.
    if client.is_public() {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "token exchange is for confidential clients",
        ));
    }
    if req.subject_token_type != ACCESS_TOKEN && req.subject_token_type != JWT {
        return Err(OAuthError::invalid_request(
            "subject_token_type must be an access token or a JWT",
        ));
    }
    if req.actor_token.is_some() {
        return Err(OAuthError::invalid_request(
            "actor tokens (delegation) are not accepted",
        ));
    }
    if req.requested_token_type.is_some_and(|t| t != ACCESS_TOKEN) {
        return Err(OAuthError::invalid_request(
            "only access tokens are issued (requested_token_type)",
        ));
    }
    let header = jose::header(req.subject_token).map_err(|_| refused("not a JWT"))?;
    // An access token, not an assertion of another grant (an ID-JAG is single-use
    // there) nor an ID token (it carries a `nonce`, checked below).
    if header
        .typ
        .as_deref()
        .is_some_and(|t| t.to_ascii_lowercase().contains("id-jag"))
    {
        return Err(refused("an ID-JAG is not a subject token"));
    }
    let claimed_iss = jose::unverified_claims(req.subject_token)
        .and_then(|c| c.get("iss").and_then(Value::as_str).map(str::to_owned))
        .ok_or_else(|| refused("the subject token names no issuer"))?;
    let provider = match s.store.trusted_issuer(&claimed_iss).await? {
        Some(p) if p.exchange_clients.contains(&client.client_id) => p,
        _ => {
            return Err(refused(format!(
                "{} is not an issuer whose tokens this client may exchange here",
                claimed_iss.chars().take(200).collect::<String>()
            )));
        }
    };
    let keys = keysets::at(
        s,
        &provider.jwks_uri,
        Origin::Operator,
        header.kid.as_deref(),
        refused,
    )
    .await?;
    let audiences: Vec<&str> = provider
        .exchange_audiences
        .iter()
        .map(String::as_str)
        .collect();
    let subject: Subject = jose::verify(req.subject_token, &keys, |v| {
        v.set_issuer(&[&provider.issuer]);
        v.validate_aud = true;
        v.set_audience(&audiences);
        v.set_required_spec_claims(&["iss", "sub", "aud", "exp"]);
    })
    .map_err(|e| refused(format!("the subject token does not verify: {e}")))?;
    let now = s.now();
    if subject.exp + LEEWAY_SECS <= now {
        return Err(refused("the subject token has expired"));
    }
    if subject
        .iat
        .is_some_and(|iat| iat > now + LEEWAY_SECS || iat < now - MAX_AGE_SECS)
    {
        return Err(refused("the subject token's age is not acceptable"));
    }
    if subject.nonce.is_some() {
        return Err(refused("an ID token is not a subject token"));
    }
    if subject.cnf.is_some() {
        return Err(refused(
            "the subject token is bound to a key (DPoP); it cannot be exchanged",
        ));
    }
    let served = s.cfg.resources();
    let target = match req.resource.map(resource::indicator) {
        None => s.cfg.resource.clone(),
        Some(Some(r)) if served.contains(&r) => r,
        Some(_) => {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                format!(
                    "the resource must be one this server protects ({})",
                    served.join(", ")
                ),
            ));
        }
    };
    let vouched = Vouched {
        subject: subject.sub.clone(),
        email: subject.email.clone(),
        email_verified: subject.email_verified == Some(true),
        hosted_domain: None,
        preferred_username: subject.username.clone(),
        groups: None,
    };
    let (user, scope) = id_jag::person_and_scope(s, &provider, &vouched, req.scope, None).await?;
    let what = format!("token exchange of {}", provider.name);
    let (mut answer, grant) =
        id_jag::issue_without_browser(s, client, &user, &target, &scope, req.dpop_jkt, &what)
            .await?;
    answer.issued_token_type = Some(ACCESS_TOKEN.to_owned());
    s.audit(
        Event::TokenExchanged {
            provider: provider.name.clone(),
            subject: subject.sub,
            scope: scope.clone(),
            grant,
        },
        Some(&user.id),
        Some(&client.client_id),
    )
    .await;
    Ok(answer)
}
