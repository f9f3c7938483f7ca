//! The authorization-code grant at the token endpoint (OAuth 2.1 §4.1.3).
//!
//! The code is spent by the first redemption attempt, whatever its outcome; it is
//! bound to the client, the redirect URI, the PKCE challenge and the resource. A
//! replayed code fails and, when presented by the code's own (authenticated) client,
//! revokes the tokens it issued (RFC 9700 §4.2.4).
//!
//! A successful exchange is one store step ([`crate::Store::redeem_code_into_family`]):
//! the code is spent together with the family, grant link and first refresh token it
//! issues, so a failure leaves either an unspent code or everything issued, and a
//! racing replay always finds the family to revoke.

use mcpgate_core::secret::{hash_token, random_id};
use mcpgate_core::{ErrorCode, OAuthError, pkce, resource};

use super::entitlements;
use super::tokens::{self, TokenResponse};
use crate::audit::Event;
use crate::model::{AuthCode, Client, Exchange, Grant, Outcome, StepKind, TokenFamily};
use crate::{Authority, OAuthResult};

/// A token request with `grant_type=authorization_code` (OAuth 2.1 §4.1.3).
#[derive(Debug, Clone, Copy)]
pub struct CodeExchange<'a> {
    pub code: &'a str,
    pub redirect_uri: &'a str,
    pub code_verifier: &'a str,
    /// RFC 8707 §2.2: when present, it must be the resource the code was issued for.
    pub resource: Option<&'a str>,
    /// The thumbprint of the key of a valid DPoP proof sent with the request (RFC 9449
    /// §5): the tokens are bound to it.
    pub dpop_jkt: Option<&'a str>,
}

/// Exchanges a code; the outcome is noted for the connection doctor.
pub async fn exchange(
    s: &Authority,
    client: &Client,
    req: CodeExchange<'_>,
) -> OAuthResult<TokenResponse> {
    let result = redeem(s, client, req).await;
    match &result {
        Ok(t) => s.note(
            &client.client_id,
            StepKind::Token,
            Outcome::Ok,
            format!("code exchanged for {}", t.scope),
        ),
        Err(e) => s.note(
            &client.client_id,
            StepKind::Token,
            Outcome::Refused,
            format!("{}: {}", e.code.as_str(), e.description),
        ),
    }
    result
}

async fn redeem(
    s: &Authority,
    client: &Client,
    req: CodeExchange<'_>,
) -> OAuthResult<TokenResponse> {
    let now = s.now();
    let code_hash = hash_token(req.code);
    let Some(row) = s.store.code(&code_hash).await? else {
        return Err(OAuthError::invalid_grant(
            "the authorization code is invalid",
        ));
    };
    if row.used_at.is_some() || row.expires_at <= now {
        return Err(spent(s, client, &row, now).await?);
    }
    let grant = match check(s, client, &row, &req).await {
        Ok(g) => g,
        Err(e) => {
            // Single use whatever the outcome: a failed attempt spends the code too, so
            // a wrong verifier cannot be retried (OAuth 2.1 §4.1.3).
            s.store.redeem_code(&code_hash, now).await?;
            return Err(e);
        }
    };
    // The person may have lost a scope since consenting (they left a group): the
    // token carries only what they may hold now.
    let scope = entitlements::entitled(s, &row.user_id, &row.scope)
        .await?
        .held;
    let mut family = TokenFamily {
        id: random_id(),
        grant_id: row.grant_id.clone(),
        client_id: row.client_id.clone(),
        user_id: row.user_id.clone(),
        scope: scope.clone(),
        resource: row.resource.clone(),
        created_at: now,
        // No token outlives the grant's end, as its person chose it.
        expires_at: grant
            .expires_at
            .map_or(now + s.cfg.refresh_ttl_secs, |end| {
                end.min(now + s.cfg.refresh_ttl_secs)
            }),
        revoked_at: None,
        revoked_reason: None,
        dpop_jkt: req.dpop_jkt.map(str::to_owned),
    };
    let (refresh, first) = tokens::refresh_token(&family, now);
    match s
        .store
        .redeem_code_into_family(&code_hash, now, &family, &first)
        .await?
    {
        // The grant's end as the store found it, should a consent have shortened it
        // since `check`: the first access token ends with the family.
        Exchange::Issued { ends } => family.expires_at = ends,
        Exchange::CodeSpent => {
            // Another request spent the code between our read and our write: this
            // one is the replay, and the winner's family is already linked to the code.
            let row = s.store.code(&code_hash).await?.unwrap_or(row);
            return Err(spent(s, client, &row, now).await?);
        }
        Exchange::GrantRevoked => {
            // Revoked since `check`: spent like any failed attempt.
            s.store.redeem_code(&code_hash, now).await?;
            return Err(OAuthError::invalid_grant("the grant was revoked"));
        }
    }
    let username = tokens::username_of(s, &row.user_id).await;
    let (access, expires_in) = tokens::access_token(s, &family, &scope, username);
    super::register::mark_used(s, client, now).await?;
    s.audit(
        Event::TokenIssued {
            grant: "authorization_code",
            scope: scope.clone(),
        },
        Some(&row.user_id),
        Some(&client.client_id),
    )
    .await;
    Ok(TokenResponse {
        access_token: access,
        token_type: tokens::token_type(family.dpop_jkt.is_some()).into(),
        expires_in,
        refresh_token: Some(refresh.expose().to_owned()),
        scope: scope.to_string(),
        issued_token_type: None,
    })
}

/// The code's bindings (OAuth 2.1 §4.1.3, RFC 7636 §4.6, RFC 8707 §2.2), and that its
/// grant and person are still live.
async fn check(
    s: &Authority,
    client: &Client,
    row: &AuthCode,
    req: &CodeExchange<'_>,
) -> OAuthResult<Grant> {
    if row.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    // OAuth 2.1 §4.1.3: redirect_uri must be identical to the authorization request's.
    if row.redirect_uri != req.redirect_uri {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    pkce::verify(req.code_verifier, &row.code_challenge)
        .map_err(|e| OAuthError::invalid_grant(e.to_string()))?;
    if let Some(r) = req.resource
        && resource::indicator(r).as_deref() != Some(row.resource.as_str())
    {
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "resource does not match the authorization request",
        ));
    }
    let Some(grant) = s
        .store
        .grant(&row.grant_id)
        .await?
        .filter(|g| g.revoked_at.is_none())
    else {
        return Err(OAuthError::invalid_grant("the grant was revoked"));
    };
    if !grant.is_live(s.now()) {
        return Err(OAuthError::invalid_grant("the grant has ended"));
    }
    if !super::accounts::user_active(s, &row.user_id).await? {
        return Err(OAuthError::invalid_grant("the account is disabled"));
    }
    Ok(grant)
}

/// A code already spent or expired. A second use by the code's own client means
/// someone else may hold it: what it issued is revoked. Only that client may set this
/// off: anyone else holding a used code must not be able to end a victim's tokens.
async fn spent(
    s: &Authority,
    client: &Client,
    row: &AuthCode,
    now: i64,
) -> OAuthResult<OAuthError> {
    if row.used_at.is_none() {
        return Ok(OAuthError::invalid_grant(
            "the authorization code has expired",
        ));
    }
    if row.client_id == client.client_id {
        if let Some(fam) = &row.family_id {
            s.store.revoke_family(fam, now, "code_replay").await?;
            s.revoke_handles(std::slice::from_ref(fam)).await?;
        }
        s.audit(
            Event::CodeReplay {
                family: row.family_id.clone(),
            },
            Some(&row.user_id),
            Some(&row.client_id),
        )
        .await;
        return Ok(OAuthError::invalid_grant(
            "the authorization code was already used",
        ));
    }
    Ok(OAuthError::invalid_grant(
        "the authorization code has expired",
    ))
}
