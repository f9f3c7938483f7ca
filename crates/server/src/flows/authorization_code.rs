//! The authorization-code grant at the token endpoint (OAuth 2.1 §4.1.3).
//!
//! The code is spent by the first redemption attempt, whatever its outcome; it is
//! bound to the client, the redirect URI, the PKCE challenge and the resource. A
//! replayed code fails and, when presented by the code's own (authenticated) client,
//! revokes the tokens it issued (RFC 9700 §4.2.4).

use mcpgate_core::secret::{hash_token, random_id};
use mcpgate_core::{ErrorCode, OAuthError, ScopeSet, pkce, resource};
use mcpgate_store::{Client, Redeem, TokenFamily};
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
    let row = match mcpgate_store::step("redeem_code", s.store.redeem_code(&hash_token(code), now))
        .await?
    {
        Redeem::Redeemed(row) => row,
        Redeem::NotFound => {
            return Err(OAuthError::invalid_grant("the authorization code is invalid").into());
        }
        Redeem::Spent(row) => {
            // Only the code's own client may set off the revocation: anyone else
            // holding a used code must not be able to end a victim's tokens with it.
            if row.used_at.is_some() && row.client_id == client.client_id {
                // A second use: someone else may hold the code. Revoke what it issued.
                if let Some(fam) = &row.family_id {
                    mcpgate_store::step(
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
                return Err(
                    OAuthError::invalid_grant("the authorization code was already used").into(),
                );
            }
            return Err(OAuthError::invalid_grant("the authorization code has expired").into());
        }
    };
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
    if let Some(r) = form.get("resource")
        && resource::indicator(r).as_deref() != Some(row.resource.as_str())
    {
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "resource does not match the authorization request",
        )
        .into());
    }
    let grant = mcpgate_store::step("grant", s.store.grant(&row.grant_id)).await?;
    if grant.is_none_or(|g| g.revoked_at.is_some()) {
        return Err(OAuthError::invalid_grant("the grant was revoked").into());
    }
    if !super::accounts::user_active(s, &row.user_id).await? {
        return Err(OAuthError::invalid_grant("the account is disabled").into());
    }
    let scope = ScopeSet::parse(&row.scope).unwrap_or_default();
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
    mcpgate_store::step("insert_family", s.store.insert_family(&family)).await?;
    mcpgate_store::step(
        "set_code_family",
        s.store.set_code_family(&row.code_hash, &family.id),
    )
    .await?;
    let username = tokens::username_of(s, &row.user_id).await;
    let access = tokens::access_token(s, &family, &scope, username);
    let refresh = tokens::refresh_token(s, &family).await?;
    mcpgate_store::step("touch_client", s.store.touch_client(&client.client_id, now)).await?;
    mcpgate_store::step("touch_grant", s.store.touch_grant(&row.grant_id, now)).await?;
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
