//! Pending authorization requests and the grants (consents) they end in.

use mcpgate_core::ScopeSet;
use sqlx::Row;

use super::{Pool, Result, Store};
use crate::model::*;

impl Store {
    pub async fn insert_auth_request(&self, r: &AuthRequest) -> Result<()> {
        dispatch!(self, pool, {
            sqlx::query("INSERT INTO auth_requests (id_hash, client_id, redirect_uri, scope, state, code_challenge, resource, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
                .bind(&r.id_hash).bind(&r.client_id).bind(&r.redirect_uri).bind(r.scope.to_string()).bind(&r.state)
                .bind(&r.code_challenge).bind(&r.resource).bind(r.created_at).bind(r.expires_at)
                .execute(pool).await?;
            Ok(())
        })
    }

    pub async fn auth_request(&self, id_hash: &str, now: i64) -> Result<Option<AuthRequest>> {
        dispatch!(self, pool, {
            Ok(sqlx::query_as::<_, AuthRequestRow>(
                "SELECT * FROM auth_requests WHERE id_hash = $1 AND expires_at > $2",
            )
            .bind(id_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?
            .map(Into::into))
        })
    }

    /// Deletes a pending request; true if this call deleted it (so it is used once).
    pub async fn take_auth_request(&self, id_hash: &str) -> Result<bool> {
        dispatch!(self, pool, {
            let r = sqlx::query("DELETE FROM auth_requests WHERE id_hash = $1")
                .bind(id_hash)
                .execute(pool)
                .await?;
            Ok(r.rows_affected() == 1)
        })
    }

    // ---------------------------------------------------------------- grants

    pub async fn live_grant(
        &self,
        user_id: &str,
        client_id: &str,
        resource: &str,
    ) -> Result<Option<Grant>> {
        dispatch!(self, pool, {
            Ok(sqlx::query_as::<_, GrantRow>("SELECT * FROM grants WHERE user_id = $1 AND client_id = $2 AND resource = $3 AND revoked_at IS NULL")
                .bind(user_id).bind(client_id).bind(resource).fetch_optional(pool).await?.map(Into::into))
        })
    }

    pub async fn grant(&self, id: &str) -> Result<Option<Grant>> {
        dispatch!(self, pool, {
            Ok(
                sqlx::query_as::<_, GrantRow>("SELECT * FROM grants WHERE id = $1")
                    .bind(id)
                    .fetch_optional(pool)
                    .await?
                    .map(Into::into),
            )
        })
    }

    pub async fn insert_grant(&self, g: &Grant) -> Result<()> {
        dispatch!(self, pool, {
            sqlx::query("INSERT INTO grants (id, user_id, client_id, resource, scope, created_at, last_used_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)")
                .bind(&g.id).bind(&g.user_id).bind(&g.client_id).bind(&g.resource).bind(g.scope.to_string()).bind(g.created_at).bind(g.last_used_at)
                .execute(pool).await?;
            Ok(())
        })
    }

    pub async fn set_grant_scope(&self, id: &str, scope: &ScopeSet) -> Result<()> {
        dispatch!(self, pool, {
            sqlx::query("UPDATE grants SET scope = $1 WHERE id = $2")
                .bind(scope.to_string())
                .bind(id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    pub async fn touch_grant(&self, id: &str, now: i64) -> Result<()> {
        dispatch!(self, pool, {
            sqlx::query("UPDATE grants SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Live grants of a person (or of everyone), with client names.
    pub async fn grant_views(&self, user_id: Option<&str>) -> Result<Vec<GrantView>> {
        dispatch!(self, pool, {
            Ok(match user_id {
                Some(u) => sqlx::query_as::<_, GrantView>(
                    "SELECT g.id, COALESCE(u.username, g.user_id) AS username, g.client_id, COALESCE(c.name, g.client_id) AS client_name, \
                     COALESCE(c.kind, 'unknown') AS client_kind, g.resource, g.scope, g.created_at, g.last_used_at \
                     FROM grants g LEFT JOIN clients c ON c.client_id = g.client_id LEFT JOIN users u ON u.id = g.user_id \
                     WHERE g.revoked_at IS NULL AND g.user_id = $1 ORDER BY g.created_at DESC",
                )
                .bind(u)
                .fetch_all(pool)
                .await?,
                None => sqlx::query_as::<_, GrantView>(
                    "SELECT g.id, COALESCE(u.username, g.user_id) AS username, g.client_id, COALESCE(c.name, g.client_id) AS client_name, \
                     COALESCE(c.kind, 'unknown') AS client_kind, g.resource, g.scope, g.created_at, g.last_used_at \
                     FROM grants g LEFT JOIN clients c ON c.client_id = g.client_id LEFT JOIN users u ON u.id = g.user_id \
                     WHERE g.revoked_at IS NULL ORDER BY g.created_at DESC",
                )
                .fetch_all(pool)
                .await?,
            })
        })
    }

    /// Ids of the live grants made to a client.
    pub async fn live_grants_of_client(&self, client_id: &str) -> Result<Vec<String>> {
        dispatch!(self, pool, {
            let rows =
                sqlx::query("SELECT id FROM grants WHERE client_id = $1 AND revoked_at IS NULL")
                    .bind(client_id)
                    .fetch_all(pool)
                    .await?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    /// Revokes a grant and every token family under it; returns the families' ids
    /// (the handles access tokens carry) and their latest expiry.
    pub async fn revoke_grant(&self, id: &str, now: i64, reason: &str) -> Result<Vec<String>> {
        dispatch!(self, pool, {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE grants SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let fams: Vec<String> = sqlx::query(
                "SELECT id FROM token_families WHERE grant_id = $1 AND revoked_at IS NULL",
            )
            .bind(id)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
            sqlx::query("UPDATE token_families SET revoked_at = $1, revoked_reason = $2 WHERE grant_id = $3 AND revoked_at IS NULL").bind(now).bind(reason).bind(id).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(fams)
        })
    }
}
