//! Token revocation (RFC 7009) and grant revocation (the connected-apps page).
//!
//! Revoking a refresh token ends its family: the refresh token and every access token
//! minted in it. Revoking an access token ends that token. Both take effect at once in
//! this process's guard and introspection, and on every other instance as soon as the
//! change notification arrives (within one sync period at worst).

use mcpgate_core::secret::hash_token;
use mcpgate_store::Client;
use serde_json::json;

use crate::error::ApiResult;
use crate::state::AuthServer;

/// RFC 7009 §2.2: the answer is 200 whether or not the token was known; a token of
/// another client is left alone.
pub async fn revoke_token(s: &AuthServer, client: &Client, token: &str) -> ApiResult<()> {
    metrics::counter!("mcpgate_revocations_total", "kind" => "token").increment(1);
    let now = s.now();
    if let Some(row) = s.store.refresh(&hash_token(token)).await? {
        if let Some(f) = s.store.family(&row.family_id).await?
            && f.client_id == client.client_id
        {
            s.store
                .revoke_family(&f.id, now, "revoked_by_client")
                .await?;
            s.revoke_handles(std::slice::from_ref(&f.id)).await?;
            s.audit(
                "token_revoked",
                Some(&f.user_id),
                Some(&client.client_id),
                json!({"kind": "refresh_token"}),
            )
            .await;
        }
        return Ok(());
    }
    if let Ok(claims) = s.keys.verify(token, &s.cfg.expectations(), now)
        && claims.client_id == client.client_id
    {
        s.revoke_handles(std::slice::from_ref(&claims.jti)).await?;
        s.audit(
            "token_revoked",
            Some(&claims.sub),
            Some(&client.client_id),
            json!({"kind": "access_token"}),
        )
        .await;
    }
    Ok(())
}

/// Revokes a person's grant (consent) and every token issued under it.
pub async fn revoke_grant(s: &AuthServer, grant_id: &str, by: &str) -> ApiResult<bool> {
    let Some(grant) = s.store.grant(grant_id).await? else {
        return Ok(false);
    };
    if grant.revoked_at.is_some() {
        return Ok(false);
    }
    let families = s.store.revoke_grant(grant_id, s.now(), by).await?;
    let mut handles = families;
    handles.push(grant.id.clone());
    s.revoke_handles(&handles).await?;
    metrics::counter!("mcpgate_revocations_total", "kind" => "grant").increment(1);
    s.audit(
        "grant_revoked",
        Some(&grant.user_id),
        Some(&grant.client_id),
        json!({"grant": grant.id, "by": by}),
    )
    .await;
    Ok(true)
}

/// Deletes a client and revokes every grant made to it, so that none of its tokens
/// outlive it. `owner` restricts the deletion to a person's own clients.
pub async fn delete_client(
    s: &AuthServer,
    client_id: &str,
    owner: Option<&str>,
    by: &str,
) -> ApiResult<bool> {
    let Some(client) = s.store.client(client_id).await? else {
        return Ok(false);
    };
    if owner.is_some() && client.owner_user_id.as_deref() != owner {
        return Ok(false);
    }
    for grant in s.store.live_grants_of_client(client_id).await? {
        revoke_grant(s, &grant, by).await?;
    }
    let deleted = s.store.delete_client(client_id, owner).await?;
    if deleted {
        s.audit("client_deleted", owner, Some(client_id), json!({"by": by}))
            .await;
    }
    Ok(deleted)
}

/// Retires a signing key at once: it stops verifying on every instance, and tokens it
/// signed are refused even where they were already verified. The key that signs is
/// never retired this way (rotate first). False when `kid` is not a retirable key.
pub async fn retire_key(s: &AuthServer, kid: &str, by: &str) -> ApiResult<bool> {
    if !s.store.retire_key(kid, s.now()).await? {
        return Ok(false);
    }
    // The handle as a revocation too: a process that polls (rather than listens)
    // learns of it with the revocations, and every instance keeps it as long as
    // its own tokens live.
    s.revoke_handles(&[mcpgate_core::jwt::key_handle(kid)])
        .await?;
    s.sync_keys().await?;
    s.audit("key_retired", None, None, json!({"kid": kid, "by": by}))
        .await;
    Ok(true)
}
