//! The authorization-code grant at the token endpoint (OAuth 2.1 §4.1.3).
//!
//! The code is spent by the first redemption attempt, whatever its outcome; it is
//! bound to the client, the redirect URI, the PKCE challenge and the resource. A
//! replayed code fails and, when presented by the code's own (authenticated) client,
//! revokes the tokens it issued (RFC 9700 §4.2.4).
//!
//! A successful exchange is one store step ([`mcpgate_store::Store::redeem_code_into_family`]):
//! the code is spent together with the family, grant link and first refresh token it
//! issues, so a failure leaves either an unspent code or everything issued, and a
//! racing replay always finds the family to revoke.

use mcpgate_core::secret::{hash_token, random_id};
use mcpgate_core::{ErrorCode, OAuthError, ScopeSet, pkce, resource};
use mcpgate_store::{AuthCode, Client, Exchange, TokenFamily, step};
use serde_json::json;

use super::tokens::{self, TokenResponse};
use crate::error::{ApiError, ApiResult};
use crate::forms::Params;
use crate::state::AuthServer;

pub async fn exchange(s: &AuthServer, client: &Client, form: &Params) -> ApiResult<TokenResponse> {
    let code = form.require("code")?;
    let redirect_uri = form.require("redirect_uri")?;
    let verifier = form.require("code_verifier")?;
    let now = s.now();
    let code_hash = hash_token(code);
    let Some(row) = step("code", s.store.code(&code_hash)).await? else {
        return Err(OAuthError::invalid_grant("the authorization code is invalid").into());
    };
    if row.used_at.is_some() || row.expires_at <= now {
        return Err(spent(s, client, &row, now).await?);
    }
    if let Err(e) = check(
        s,
        client,
        &row,
        redirect_uri,
        verifier,
        form.get("resource"),
    )
    .await
    {
        // Single use whatever the outcome: a failed attempt spends the code too, so a
        // wrong verifier cannot be retried (OAuth 2.1 §4.1.3).
        step("redeem_code", s.store.redeem_code(&code_hash, now)).await?;
        return Err(e);
    }
    let family = TokenFamily {
        id: random_id(),
        grant_id: row.grant_id.clone(),
        client_id: row.client_id.clone(),
        user_id: row.user_id.clone(),
        scope: row.scope.clone(),
        resource: row.resource.clone(),
        created_at: now,
        expires_at: now + s.cfg.refresh_ttl_secs,
        revoked_at: None,
        revoked_reason: None,
    };
    let (refresh, first) = tokens::refresh_token(&family, now);
    match step(
        "redeem_code_into_family",
        s.store
            .redeem_code_into_family(&code_hash, now, &family, &first),
    )
    .await?
    {
        Exchange::Issued => {}
        Exchange::CodeSpent => {
            // Another request spent the code between our read and our write: this
            // one is the replay, and the winner's family is already linked to the code.
            let row = step("code", s.store.code(&code_hash)).await?.unwrap_or(row);
            return Err(spent(s, client, &row, now).await?);
        }
        Exchange::GrantRevoked => {
            // Revoked since `check`: spent like any failed attempt.
            step("redeem_code", s.store.redeem_code(&code_hash, now)).await?;
            return Err(OAuthError::invalid_grant("the grant was revoked").into());
        }
    }
    let scope = ScopeSet::parse(&row.scope).unwrap_or_default();
    let username = tokens::username_of(s, &row.user_id).await;
    let access = tokens::access_token(s, &family, &scope, username);
    step("touch_client", s.store.touch_client(&client.client_id, now)).await?;
    step("touch_grant", s.store.touch_grant(&row.grant_id, now)).await?;
    s.audit(
        "token_issued",
        Some(&row.user_id),
        Some(&client.client_id),
        json!({"grant": "authorization_code", "scope": row.scope}),
    )
    .await;
    Ok(TokenResponse {
        access_token: access,
        token_type: "Bearer".into(),
        expires_in: s.cfg.access_ttl_secs,
        refresh_token: Some(refresh.expose().to_owned()),
        scope: scope.to_string(),
    })
}

/// The code's bindings (OAuth 2.1 §4.1.3, RFC 7636 §4.6, RFC 8707 §2.2), and that its
/// grant and person are still live.
async fn check(
    s: &AuthServer,
    client: &Client,
    row: &AuthCode,
    redirect_uri: &str,
    verifier: &str,
    resource: Option<&str>,
) -> ApiResult<()> {
    if row.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the authorization code was issued to another client",
        )
        .into());
    }
    // OAuth 2.1 §4.1.3: redirect_uri must be identical to the authorization request's.
    if row.redirect_uri != redirect_uri {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        )
        .into());
    }
    pkce::verify(verifier, &row.code_challenge)
        .map_err(|e| ApiError::from(OAuthError::invalid_grant(e.to_string())))?;
    if let Some(r) = resource
        && resource::indicator(r).as_deref() != Some(row.resource.as_str())
    {
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "resource does not match the authorization request",
        )
        .into());
    }
    let grant = step("grant", s.store.grant(&row.grant_id)).await?;
    if grant.is_none_or(|g| g.revoked_at.is_some()) {
        return Err(OAuthError::invalid_grant("the grant was revoked").into());
    }
    if !super::accounts::user_active(s, &row.user_id).await? {
        return Err(OAuthError::invalid_grant("the account is disabled").into());
    }
    Ok(())
}

/// A code already spent or expired. A second use by the code's own client means
/// someone else may hold it: what it issued is revoked. Only that client may set this
/// off: anyone else holding a used code must not be able to end a victim's tokens.
async fn spent(s: &AuthServer, client: &Client, row: &AuthCode, now: i64) -> ApiResult<ApiError> {
    if row.used_at.is_none() {
        return Ok(OAuthError::invalid_grant("the authorization code has expired").into());
    }
    if row.client_id == client.client_id {
        if let Some(fam) = &row.family_id {
            step(
                "revoke_family",
                s.store.revoke_family(fam, now, "code_replay"),
            )
            .await?;
            s.revoke_handles(std::slice::from_ref(fam)).await?;
        }
        s.audit(
            "code_replay",
            Some(&row.user_id),
            Some(&row.client_id),
            json!({"family": row.family_id}),
        )
        .await;
        return Ok(OAuthError::invalid_grant("the authorization code was already used").into());
    }
    Ok(OAuthError::invalid_grant("the authorization code has expired").into())
}
