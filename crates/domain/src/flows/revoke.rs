//! Token revocation (RFC 7009) and grant revocation (the connected-apps page).
//!
//! Revoking a refresh token ends its family: the refresh token and every access token
//! minted in it. Revoking an access token ends that token. Both take effect at once in
//! this process's guard and introspection, and on every other instance as soon as the
//! change notification arrives (within one sync period at worst).

use crate::Actor;
use crate::audit::Event;
use crate::model::Client;
use crate::{Authority, OAuthResult};
use mcpgate_core::secret::hash_token;

/// RFC 7009 §2.2: the answer is 200 whether or not the token was known; a token of
/// another client is left alone.
pub async fn revoke_token(s: &Authority, client: &Client, token: &str) -> OAuthResult<()> {
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
                Event::TokenRevoked {
                    kind: "refresh_token",
                },
                Some(&f.user_id),
                Some(&client.client_id),
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
            Event::TokenRevoked {
                kind: "access_token",
            },
            Some(&claims.sub),
            Some(&client.client_id),
        )
        .await;
    }
    Ok(())
}

/// Revokes a person's grant (consent) and every token issued under it.
pub async fn revoke_grant(s: &Authority, grant_id: &str, by: &Actor) -> OAuthResult<bool> {
    revoke_grant_of(s, grant_id, None, by).await
}

/// [`revoke_grant`], when the grant is `owner`'s (a person on their own page); false
/// for anyone else's, as for one that does not exist.
pub async fn revoke_grant_of(
    s: &Authority,
    grant_id: &str,
    owner: Option<&str>,
    by: &Actor,
) -> OAuthResult<bool> {
    let Some(grant) = s.store.grant(grant_id).await? else {
        return Ok(false);
    };
    if grant.revoked_at.is_some() || owner.is_some_and(|o| o != grant.user_id) {
        return Ok(false);
    }
    let families = s
        .store
        .revoke_grant(grant_id, s.now(), &by.to_string())
        .await?;
    let mut handles = families;
    handles.push(grant.id.clone());
    s.revoke_handles(&handles).await?;
    metrics::counter!("mcpgate_revocations_total", "kind" => "grant").increment(1);
    s.audit(
        Event::GrantRevoked {
            grant: grant.id.clone(),
            by: by.clone(),
        },
        Some(&grant.user_id),
        Some(&grant.client_id),
    )
    .await;
    Ok(true)
}

/// Deletes a client and revokes every grant made to it, so that none of its tokens
/// outlive it. `owner` restricts the deletion to a person's own clients.
pub async fn delete_client(
    s: &Authority,
    client_id: &str,
    owner: Option<&str>,
    by: &Actor,
) -> OAuthResult<bool> {
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
    if deleted && client.machine.is_some() {
        // A machine's tokens belong to no grant: they end with this handle.
        s.revoke_handles(&[super::client_credentials::handle(client_id)])
            .await?;
    }
    if deleted {
        s.audit(
            Event::ClientDeleted { by: by.clone() },
            owner,
            Some(client_id),
        )
        .await;
    }
    Ok(deleted)
}
