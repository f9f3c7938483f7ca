//! Enterprise-managed authorization: the Identity Assertion JWT Authorization Grant
//! (ID-JAG, draft-ietf-oauth-identity-assertion-authz-grant §4.4; MCP extension
//! `io.modelcontextprotocol/enterprise-managed-authorization`). An organisation's
//! identity provider, which the operator trusts (`mcpgate idp trust`), decides that a
//! person may use a client with a resource here, and says so in a JWT the client
//! presents with `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`
//! (RFC 7523 §2.1). No browser, no consent page: the provider's policy is the consent.
//!
//! What is checked (draft §4.4.1, RFC 7523 §3, and the MCP profile's §7):
//! - the requesting client is confidential and authenticated; the ID-JAG's
//!   `client_id` is that client;
//! - `typ` is `oauth-id-jag+jwt`; the issuer is a trusted provider and its key signed
//!   it (algorithms pinned per key, no `none`, no HMAC);
//! - `aud` is this server's issuer identifier, as its sole value;
//! - `resource` is a resource this server protects (and the one the request names);
//! - `exp` has not passed and is at most an hour away, `iat` is not in the future;
//! - `jti` was never presented before, on any instance (the MCP profile requires it);
//! - the subject is a person here by the same rules as a sign-in through a provider
//!   (admission: a link, a verified email of an allowed domain, or a new account).
//!
//! The token carries the scopes both asked for and asserted (the profile's §7.2.1),
//! narrowed to what the person may hold (their groups). No refresh token (draft
//! §4.4.3): the client gets a fresh ID-JAG instead. The tokens hang on a grant of the
//! person to the client, so the person sees it on the connected-apps page and revoking
//! it ends them. Every failure of the assertion is `invalid_grant` (RFC 7523 §3.1).

use mcpgate_core::jose;
use mcpgate_core::jwt::LEEWAY_SECS;
use mcpgate_core::secret::random_id;
use mcpgate_core::{ErrorCode, OAuthError, ScopeSet, resource};
use serde::Deserialize;
use serde_json::Value;

use super::admission::{self, NotAdmitted, Trust, Vouched};
use super::authorize::known_scopes;
use super::entitlements;
use super::hierarchy::Hierarchy;
use super::keysets::{self, Origin};
use super::tokens::{self, TokenResponse};
use crate::audit::Event;
use crate::model::{Client, Grant, Outcome, StepKind, TokenFamily, TrustedIssuer, User};
use crate::{Authority, OAuthResult};

/// The grant type (RFC 7523 §2.1).
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// What the metadata's `authorization_grant_profiles_supported` lists (draft §7.2).
pub const PROFILE: &str = "urn:ietf:params:oauth:grant-profile:id-jag";
/// The JWT's `typ` (draft §3.1).
pub const TYP: &str = "oauth-id-jag+jwt";
/// The longest an ID-JAG may be valid: providers issue them for minutes.
pub const MAX_LIFETIME_SECS: i64 = 3600;

/// A token request with `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`.
#[derive(Debug, Clone, Copy)]
pub struct JwtBearerRequest<'a> {
    pub assertion: &'a str,
    pub scope: Option<&'a str>,
    pub resource: Option<&'a str>,
    /// The key of a valid DPoP proof sent with the request (RFC 9449 §5).
    pub dpop_jkt: Option<&'a str>,
}

/// The claims of an ID-JAG (draft §3.1).
#[derive(Deserialize)]
struct IdJag {
    sub: String,
    aud: Value,
    client_id: String,
    jti: String,
    exp: i64,
    iat: i64,
    #[serde(default)]
    resource: Option<Value>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<bool>,
}

/// Every failure of an assertion or subject token (RFC 7523 §3.1, RFC 8693 §2.2.2).
pub(super) fn refused(why: impl Into<String>) -> OAuthError {
    OAuthError::invalid_grant(why.into())
}

pub async fn grant(
    s: &Authority,
    client: &Client,
    req: JwtBearerRequest<'_>,
) -> OAuthResult<TokenResponse> {
    noted(s, client, "ID-JAG", exchange(s, client, req).await)
}

/// Notes a refused grant without a browser in the client's record (the doctor's), as
/// `what`; passes the result on.
pub(super) fn noted(
    s: &Authority,
    client: &Client,
    what: &str,
    result: OAuthResult<TokenResponse>,
) -> OAuthResult<TokenResponse> {
    if let Err(e) = &result {
        s.note(
            &client.client_id,
            StepKind::Token,
            Outcome::Refused,
            format!("{what} {}: {}", e.code.as_str(), e.description),
        );
    }
    result
}

/// The person a trusted issuer vouches for, admitted as a sign-in through that
/// provider would be, and the scopes asked for (or asserted) they may hold.
pub(super) async fn person_and_scope(
    s: &Authority,
    provider: &TrustedIssuer,
    vouched: &Vouched,
    asked: Option<&str>,
    asserted: Option<&str>,
) -> OAuthResult<(User, ScopeSet)> {
    let trust = Trust {
        name: &provider.name,
        allowed_domains: &provider.allowed_domains,
        auto_create: provider.auto_create,
        hosted_domains: false,
    };
    let user = match admission::admit(s, &trust, vouched).await {
        Ok(u) => u,
        Err(NotAdmitted::Refused(r)) => {
            return Err(refused(format!(
                "the person is not admitted here: {}",
                r.message(&provider.name).0
            )));
        }
        Err(NotAdmitted::Unavailable(e)) => return Err(e),
    };
    let scope = scope(s, asked, asserted).await?;
    let scope = entitlements::entitled(s, &user.id, &scope).await?.held;
    if scope.is_empty() {
        return Err(OAuthError::invalid_scope(
            "none of the scopes asked for may be granted to this person",
        ));
    }
    Ok((user, scope))
}

async fn exchange(
    s: &Authority,
    client: &Client,
    req: JwtBearerRequest<'_>,
) -> OAuthResult<TokenResponse> {
    // Draft §8.1: for confidential clients; the client authenticated at the edge.
    if client.is_public() {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "an ID-JAG is accepted from a confidential client only",
        ));
    }
    let header = jose::header(req.assertion).map_err(|_| refused("not a JWT"))?;
    let typ_ok = header.typ.as_deref().is_some_and(|t| {
        t.eq_ignore_ascii_case(TYP) || t.eq_ignore_ascii_case(&format!("application/{TYP}"))
    });
    if !typ_ok {
        return Err(refused(format!("the assertion's typ must be {TYP}")));
    }
    let claimed_iss = jose::unverified_claims(req.assertion)
        .and_then(|c| c.get("iss").and_then(Value::as_str).map(str::to_owned))
        .ok_or_else(|| refused("the assertion names no issuer"))?;
    let Some(provider) = s.store.trusted_issuer(&claimed_iss).await? else {
        return Err(refused(format!(
            "{claimed_iss} is not an identity provider this server trusts"
        )));
    };
    let keys = keysets::at(
        s,
        &provider.jwks_uri,
        Origin::Operator,
        header.kid.as_deref(),
        refused,
    )
    .await?;
    let issuer = s.cfg.issuer.as_str();
    let jag: IdJag = jose::verify(req.assertion, &keys, |v| {
        v.set_issuer(&[&provider.issuer]);
        v.validate_aud = true;
        v.set_audience(&[issuer]);
        v.set_required_spec_claims(&["iss", "sub", "aud", "exp"]);
    })
    .map_err(|e| refused(format!("the assertion does not verify: {e}")))?;
    let sole_audience = match &jag.aud {
        Value::String(a) => a == issuer,
        Value::Array(a) => a.len() == 1 && a[0] == issuer,
        _ => false,
    };
    if !sole_audience {
        return Err(refused(
            "the assertion's aud must be this server's issuer alone",
        ));
    }
    let now = s.now();
    if jag.exp + LEEWAY_SECS <= now {
        return Err(refused("the assertion has expired"));
    }
    if jag.exp > now + MAX_LIFETIME_SECS || jag.iat > now + LEEWAY_SECS {
        return Err(refused("the assertion's lifetime is not acceptable"));
    }
    if jag.client_id != client.client_id {
        return Err(refused("the assertion was issued to another client"));
    }
    let target = target(s, jag.resource.as_ref(), req.resource)?;
    if jag.jti.is_empty() || jag.jti.len() > 256 {
        return Err(refused("the assertion has no usable jti"));
    }
    if !s
        .store
        .remember_jti("id_jag", &provider.issuer, &jag.jti, jag.exp + LEEWAY_SECS)
        .await?
    {
        return Err(refused("this assertion was already used"));
    }
    let vouched = Vouched {
        subject: jag.sub.clone(),
        email: jag.email.clone(),
        email_verified: jag.email_verified == Some(true),
        hosted_domain: None,
        preferred_username: None,
        groups: None,
    };
    let (user, scope) =
        person_and_scope(s, &provider, &vouched, req.scope, jag.scope.as_deref()).await?;
    let what = format!("ID-JAG of {}", provider.name);
    let (answer, grant) =
        issue_without_browser(s, client, &user, &target, &scope, req.dpop_jkt, &what).await?;
    s.audit(
        Event::IdJagAccepted {
            provider: provider.name.clone(),
            subject: jag.sub,
            scope: scope.clone(),
            grant,
        },
        Some(&user.id),
        Some(&client.client_id),
    )
    .await;
    Ok(answer)
}

/// Tokens for `user` with `client` at `target`, where another party's word stands for
/// the person's consent (an ID-JAG, an exchanged token): they hang on a grant the person
/// sees on the connected-apps page and can revoke. No refresh token: the client comes
/// back with a fresh assertion. Noted in the client's record as `what`. Returns the
/// answer and the grant's id.
pub(super) async fn issue_without_browser(
    s: &Authority,
    client: &Client,
    user: &User,
    target: &str,
    scope: &ScopeSet,
    dpop_jkt: Option<&str>,
    what: &str,
) -> OAuthResult<(TokenResponse, String)> {
    let now = s.now();
    let target = target.to_owned();
    let scope = scope.clone();
    let grant = match s
        .store
        .live_grant(&user.id, &client.client_id, &target)
        .await?
        .filter(|g| g.is_live(now))
    {
        Some(g) => {
            let merged = g.scope.union(&scope);
            s.store
                .update_grant(
                    &g.id,
                    &merged,
                    &g.withheld.difference(&merged),
                    g.expires_at,
                )
                .await?;
            g
        }
        None => {
            let g = Grant {
                id: random_id(),
                user_id: user.id.clone(),
                client_id: client.client_id.clone(),
                resource: target.clone(),
                scope: scope.clone(),
                withheld: ScopeSet::new(),
                created_at: now,
                last_used_at: None,
                revoked_at: None,
                expires_at: None,
            };
            s.store.insert_grant(&g).await?;
            g
        }
    };
    let family = TokenFamily {
        id: random_id(),
        grant_id: grant.id.clone(),
        client_id: client.client_id.clone(),
        user_id: user.id.clone(),
        scope: scope.clone(),
        resource: target.clone(),
        created_at: now,
        expires_at: now + s.cfg.access_ttl_secs,
        revoked_at: None,
        revoked_reason: None,
        dpop_jkt: dpop_jkt.map(str::to_owned),
    };
    s.store.insert_family(&family).await?;
    let (access_token, expires_in) =
        tokens::access_token(s, &family, &scope, Some(user.username.clone()));
    s.store.touch_grant(&grant.id, now).await?;
    super::register::mark_used(s, client, now).await?;
    s.note(
        &client.client_id,
        StepKind::Token,
        Outcome::Ok,
        format!("{what} for {scope}"),
    );
    Ok((
        TokenResponse {
            access_token,
            token_type: tokens::token_type(family.dpop_jkt.is_some()).into(),
            expires_in,
            refresh_token: None,
            scope: scope.to_string(),
            issued_token_type: None,
        },
        grant.id,
    ))
}

/// The resource the token is for: the ID-JAG's, which must be one this server
/// protects (the MCP profile's §7.6.2) and, when the request names one, that one.
fn target(s: &Authority, claim: Option<&Value>, asked: Option<&str>) -> OAuthResult<String> {
    let claimed: Vec<&str> = match claim {
        Some(Value::String(r)) => vec![r.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let served = s.cfg.resources();
    let ours: Vec<String> = claimed
        .iter()
        .filter_map(|r| resource::indicator(r))
        .filter(|r| served.contains(r))
        .collect();
    if ours.is_empty() || ours.len() != claimed.len() {
        return Err(refused(format!(
            "the assertion's resource must be one this server protects ({})",
            served.join(", ")
        )));
    }
    match asked.map(resource::indicator) {
        None => Ok(ours[0].clone()),
        Some(Some(a)) if ours.contains(&a) => Ok(a),
        Some(_) => Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "the requested resource is not the assertion's",
        )),
    }
}

/// Both asked for and asserted (the MCP profile's §7.2.1); the one given when only one
/// is; the defaults when neither is; and only scopes this server knows.
pub(super) async fn scope(
    s: &Authority,
    asked: Option<&str>,
    asserted: Option<&str>,
) -> OAuthResult<ScopeSet> {
    let parse = |v: Option<&str>| -> OAuthResult<Option<ScopeSet>> {
        v.map(|v| ScopeSet::parse(v).map_err(|e| OAuthError::invalid_scope(e.to_string())))
            .transpose()
    };
    let (asked, asserted) = (parse(asked)?, parse(asserted)?);
    // A narrower scope asked for is within a broader one asserted.
    let hierarchy = Hierarchy::load(s).await?;
    let wanted = match (asked, asserted) {
        (Some(a), Some(b)) => hierarchy.close(&a).intersection(&hierarchy.close(&b)),
        (Some(a), None) => a,
        (None, Some(b)) => b,
        (None, None) => s.cfg.default_scopes.clone(),
    };
    Ok(wanted.intersection(&known_scopes(s).await?))
}
