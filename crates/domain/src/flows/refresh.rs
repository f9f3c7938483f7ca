//! The refresh-token grant with rotation (OAuth 2.1 §4.3; MCP "Token Theft": public
//! clients' refresh tokens MUST rotate).
//!
//! - Every use rotates: the presented token is spent and a new one issued.
//! - Reuse of a spent token revokes the whole family (RFC 9700 §4.14.2), except within
//!   a short grace period, when the duplicate gets the same answer as the first
//!   request (racing or retried requests must not break the client).
//! - Scopes can only narrow; asking for more is `invalid_scope`.
//! - A `resource` must be the family's own (RFC 8707 §2.2), else `invalid_target`.
//! - Rotation is one store step: the presented token is spent together with the
//!   writing of its successor, so a failure leaves the old token usable and no new one.

use super::tokens::{self, TokenResponse};
use crate::audit::Event;
use crate::model::{Client, RefreshToken};
use crate::{Authority, OAuthResult};
use mcpgate_core::secret::hash_token;
use mcpgate_core::{ErrorCode, OAuthError, ScopeSet, grace, resource};

/// A token request with `grant_type=refresh_token` (OAuth 2.1 §4.3.1).
#[derive(Debug, Clone, Copy)]
pub struct RefreshRequest<'a> {
    pub refresh_token: &'a str,
    /// Narrower scopes than the grant's, or `None` for all of them.
    pub scope: Option<&'a str>,
    pub resource: Option<&'a str>,
}

pub async fn refresh(
    s: &Authority,
    client: &Client,
    req: RefreshRequest<'_>,
) -> OAuthResult<TokenResponse> {
    let presented = req.refresh_token;
    let invalid = || OAuthError::invalid_grant("the refresh token is invalid, expired or revoked");
    let now = s.now();
    let hash = hash_token(presented);
    let Some(row) = s.store.refresh(&hash).await? else {
        return Err(invalid());
    };
    let Some(family) = s.store.family(&row.family_id).await? else {
        return Err(invalid());
    };
    if family.client_id != client.client_id || family.revoked_at.is_some() || row.expires_at <= now
    {
        return Err(invalid());
    }
    if !super::accounts::user_active(s, &family.user_id).await? {
        return Err(invalid());
    }
    if row.rotated_at.is_some() {
        return replay(s, presented, &row, &family.id, now).await;
    }
    // RFC 8707 §2.2: a resource on a refresh request must be one the grant covers.
    if let Some(r) = req.resource
        && resource::indicator(r).as_deref() != Some(family.resource.as_str())
    {
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "the refresh token was not issued for this resource",
        ));
    }
    let family_scope = family.scope.clone();
    let scope = match req.scope {
        None => family_scope.clone(),
        Some(req) => {
            let req = ScopeSet::parse(req).map_err(|e| OAuthError::invalid_scope(e.to_string()))?;
            if !family_scope.is_superset(&req) {
                // Sends the client back through the browser for the missing consent.
                return Err(OAuthError::invalid_scope(
                    "the refresh token was not granted all of the requested scopes",
                ));
            }
            req
        }
    };
    let username = tokens::username_of(s, &family.user_id).await;
    let (next, next_row) = tokens::refresh_token(&family, now);
    let answer = TokenResponse {
        access_token: tokens::access_token(s, &family, &scope, username),
        token_type: "Bearer".into(),
        expires_in: s.cfg.access_ttl_secs,
        refresh_token: Some(next.expose().to_owned()),
        scope: scope.to_string(),
    };
    let sealed = grace::seal(
        presented,
        &serde_json::to_string(&answer).expect("serializes"),
    );
    if !s
        .store
        .rotate_refresh(
            &hash,
            now,
            &sealed,
            now + s.cfg.refresh_grace_secs,
            &next_row,
        )
        .await?
    {
        // Another request rotated this token first (nothing of ours was written):
        // answer as a duplicate.
        let row = s.store.refresh(&hash).await?.ok_or_else(invalid)?;
        return replay(s, presented, &row, &family.id, now).await;
    }
    s.store.touch_grant(&family.grant_id, now).await?;
    s.audit(
        Event::TokenRefreshed { scope },
        Some(&family.user_id),
        Some(&client.client_id),
    )
    .await;
    Ok(answer)
}

/// A spent token presented again: the grace answer, or reuse detection.
async fn replay(
    s: &Authority,
    presented: &str,
    row: &RefreshToken,
    family_id: &str,
    now: i64,
) -> OAuthResult<TokenResponse> {
    if row.grace_until.is_some_and(|u| u > now)
        && let Some(answer) = row
            .grace_answer
            .as_deref()
            .and_then(|a| grace::open(presented, a))
        && let Ok(answer) = serde_json::from_str::<TokenResponse>(&answer)
    {
        return Ok(answer);
    }
    // Reuse of a rotated token: it (or its successor) may be stolen. End the family.
    s.store
        .revoke_family(family_id, now, "refresh_reuse")
        .await?;
    s.revoke_handles(&[family_id.to_owned()]).await?;
    s.audit(
        Event::RefreshReuse {
            family: family_id.to_owned(),
        },
        None,
        None,
    )
    .await;
    Err(OAuthError::invalid_grant(
        "the refresh token was already used; the grant's tokens are revoked",
    ))
}
