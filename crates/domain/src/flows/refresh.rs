//! The refresh-token grant with rotation (OAuth 2.1 §4.3; MCP "Token Theft": public
//! clients' refresh tokens MUST rotate).
//!
//! - Every use rotates: the presented token is spent and a new one issued.
//! - Reuse of a spent token revokes the whole family (RFC 9700 §4.14.2), except within
//!   a short grace period, when the duplicate gets the same answer as the first
//!   request (racing or retried requests must not break the client).
//! - Scopes can only narrow; asking for more is `invalid_scope`. A scope the person
//!   may no longer hold ([`super::entitlements`]) is left out of the answer.
//! - A `resource` must be the family's own (RFC 8707 §2.2), else `invalid_target`.
//! - Rotation is one store step: the presented token is spent together with the
//!   writing of its successor, so a failure leaves the old token usable and no new one.

use super::entitlements;
use super::tokens::{self, TokenResponse};
use crate::audit::Event;
use crate::model::{Client, Outcome, RefreshToken, StepKind, TokenFamily};
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
    /// The key of a valid DPoP proof sent with the request (RFC 9449 §5).
    pub dpop_jkt: Option<&'a str>,
}

/// The reason a family is revoked when its grant narrows and a narrowed family takes
/// its unspent refresh tokens ([`crate::store::Grants::narrow_grant`]).
pub const NARROWED: &str = "scope_withdrawn";

/// How many times a refresh starts over when its token moved to a narrowed family
/// while it ran (a person lost a scope mid-request): once is the rule, twice the
/// bound.
const ATTEMPTS: usize = 3;

/// Refreshes; the outcome is noted for the connection doctor.
pub async fn refresh(
    s: &Authority,
    client: &Client,
    req: RefreshRequest<'_>,
) -> OAuthResult<TokenResponse> {
    let result = rotate(s, client, req).await;
    match &result {
        Ok(t) => s.note(
            &client.client_id,
            StepKind::Refresh,
            Outcome::Ok,
            format!("refreshed for {}", t.scope),
        ),
        Err(e) => s.note(
            &client.client_id,
            StepKind::Refresh,
            Outcome::Refused,
            format!("{}: {}", e.code.as_str(), e.description),
        ),
    }
    result
}

async fn rotate(
    s: &Authority,
    client: &Client,
    req: RefreshRequest<'_>,
) -> OAuthResult<TokenResponse> {
    for _ in 1..ATTEMPTS {
        if let Some(answer) = attempt(s, client, req).await? {
            return Ok(answer);
        }
    }
    attempt(s, client, req).await?.ok_or_else(|| {
        OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            "the grant is changing; try again",
        )
    })
}

/// One refresh; `None` when the token moved to a narrowed family meanwhile (read
/// again and start over).
async fn attempt(
    s: &Authority,
    client: &Client,
    req: RefreshRequest<'_>,
) -> OAuthResult<Option<TokenResponse>> {
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
    if family.revoked_at.is_some()
        && family.revoked_reason.as_deref() == Some(NARROWED)
        && s.store
            .refresh(&hash)
            .await?
            .is_some_and(|r| r.family_id != family.id)
    {
        // The token moved to a narrowed family between our two reads (its person lost
        // a scope): start over from the new family.
        return Ok(None);
    }
    if family.client_id != client.client_id || family.revoked_at.is_some() || row.expires_at <= now
    {
        return Err(invalid());
    }
    if !super::accounts::user_active(s, &family.user_id).await? {
        return Err(invalid());
    }
    if row.rotated_at.is_some() {
        return replay(s, presented, &row, &family.id, now).await.map(Some);
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
    // Never a scope the person may no longer hold (RFC 6749 §6 lets the answer be
    // narrower than asked; the `scope` member says what was issued).
    let scope = entitlements::entitled(s, &family.user_id, &scope)
        .await?
        .held;
    // RFC 9449 §5: a family bound to a key is refreshed with a proof of that key only;
    // an unbound one may get bound access tokens when the client now sends a proof.
    let family = match (&family.dpop_jkt, req.dpop_jkt) {
        (Some(bound), Some(shown)) if bound == shown => family,
        (Some(_), _) => {
            return Err(OAuthError::new(
                ErrorCode::InvalidDpopProof,
                "the refresh token is bound to a DPoP key: send a proof of that key",
            ));
        }
        (None, shown) => TokenFamily {
            dpop_jkt: shown.map(str::to_owned),
            ..family
        },
    };
    let username = tokens::username_of(s, &family.user_id).await;
    let (next, next_row) = tokens::refresh_token(&family, now);
    let (access_token, expires_in) = tokens::access_token(s, &family, &scope, username);
    let answer = TokenResponse {
        access_token,
        token_type: tokens::token_type(family.dpop_jkt.is_some()).into(),
        expires_in,
        refresh_token: Some(next.expose().to_owned()),
        scope: scope.to_string(),
        issued_token_type: None,
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
        // Nothing of ours was written. Either another request rotated this token
        // first (answer as a duplicate), or the token moved to a narrowed family
        // (start over, from the new family).
        let row = s.store.refresh(&hash).await?.ok_or_else(invalid)?;
        if row.rotated_at.is_none() && row.family_id != family.id {
            return Ok(None);
        }
        return replay(s, presented, &row, &family.id, now).await.map(Some);
    }
    // Apart from the rotation: inside it, the grant's row lock would be taken after the
    // token's, the reverse of a consent's order (grant, then its tokens).
    s.store.touch_grant(&family.grant_id, now).await?;
    s.audit(
        Event::TokenRefreshed { scope },
        Some(&family.user_id),
        Some(&client.client_id),
    )
    .await;
    Ok(Some(answer))
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
