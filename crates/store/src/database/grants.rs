//! Pending authorization requests and the grants (consents) they end in.

use async_trait::async_trait;
use mcpgate_domain::store::{Grants, StoreResult};

use crate::timing::timed;

use mcpgate_core::ScopeSet;
use sqlx::Row;

use super::{Database, Pool};
use crate::model::*;

#[async_trait]
impl Grants for Database {
    async fn insert_auth_request(&self, r: &AuthRequest) -> StoreResult<()> {
        timed("insert_auth_request", async move {
        dispatch!(self, pool, {
            sqlx::query("INSERT INTO auth_requests (id_hash, client_id, redirect_uri, scope, state, code_challenge, resource, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
                .bind(&r.id_hash).bind(&r.client_id).bind(&r.redirect_uri).bind(r.scope.to_string()).bind(&r.state)
                .bind(&r.code_challenge).bind(&r.resource).bind(r.created_at).bind(r.expires_at)
                .execute(pool).await?;
            Ok(())
        })
    })
        .await
    }

    async fn auth_request(&self, id_hash: &str, now: i64) -> StoreResult<Option<AuthRequest>> {
        timed("auth_request", async move {
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
        })
        .await
    }

    async fn take_auth_request(&self, id_hash: &str) -> StoreResult<bool> {
        timed("take_auth_request", async move {
            dispatch!(self, pool, {
                let r = sqlx::query("DELETE FROM auth_requests WHERE id_hash = $1")
                    .bind(id_hash)
                    .execute(pool)
                    .await?;
                Ok(r.rows_affected() == 1)
            })
        })
        .await
    }

    async fn live_grant(
        &self,
        user_id: &str,
        client_id: &str,
        resource: &str,
    ) -> StoreResult<Option<Grant>> {
        timed("live_grant", async move {
        dispatch!(self, pool, {
            Ok(sqlx::query_as::<_, GrantRow>("SELECT * FROM grants WHERE user_id = $1 AND client_id = $2 AND resource = $3 AND revoked_at IS NULL")
                .bind(user_id).bind(client_id).bind(resource).fetch_optional(pool).await?.map(Into::into))
        })
    })
        .await
    }

    async fn grant(&self, id: &str) -> StoreResult<Option<Grant>> {
        timed("grant", async move {
            dispatch!(self, pool, {
                Ok(
                    sqlx::query_as::<_, GrantRow>("SELECT * FROM grants WHERE id = $1")
                        .bind(id)
                        .fetch_optional(pool)
                        .await?
                        .map(Into::into),
                )
            })
        })
        .await
    }

    async fn insert_grant(&self, g: &Grant) -> StoreResult<()> {
        timed("insert_grant", async move {
        dispatch!(self, pool, {
            sqlx::query("INSERT INTO grants (id, user_id, client_id, resource, scope, withheld, created_at, last_used_at, revoked_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9)")
                .bind(&g.id).bind(&g.user_id).bind(&g.client_id).bind(&g.resource).bind(g.scope.to_string()).bind(g.withheld.to_string()).bind(g.created_at).bind(g.last_used_at).bind(g.expires_at)
                .execute(pool).await?;
            Ok(())
        })
    })
        .await
    }

    async fn update_grant(
        &self,
        id: &str,
        scope: &ScopeSet,
        withheld: &ScopeSet,
        expires_at: Option<i64>,
    ) -> StoreResult<()> {
        timed("update_grant", async move {
        dispatch!(self, pool, {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE grants SET scope = $1, withheld = $2, expires_at = $3 WHERE id = $4")
                .bind(scope.to_string()).bind(withheld.to_string()).bind(expires_at).bind(id)
                .execute(&mut *tx).await?;
            if let Some(end) = expires_at {
                sqlx::query("UPDATE token_families SET expires_at = $1 WHERE grant_id = $2 AND revoked_at IS NULL AND expires_at > $1")
                    .bind(end).bind(id).execute(&mut *tx).await?;
                sqlx::query("UPDATE refresh_tokens SET expires_at = $1 WHERE expires_at > $1 AND family_id IN (SELECT id FROM token_families WHERE grant_id = $2)")
                    .bind(end).bind(id).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    })
        .await
    }

    async fn narrow_grant(
        &self,
        id: &str,
        scope: &ScopeSet,
        withheld: &ScopeSet,
        families: &[(String, TokenFamily)],
        now: i64,
    ) -> StoreResult<()> {
        timed("narrow_grant", async move {
        dispatch!(self, pool, {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE grants SET scope = $1, withheld = $2 WHERE id = $3")
                .bind(scope.to_string()).bind(withheld.to_string()).bind(id)
                .execute(&mut *tx).await?;
            for (old, f) in families {
                let r = sqlx::query("UPDATE token_families SET revoked_at = $1, revoked_reason = $2 WHERE id = $3 AND revoked_at IS NULL")
                    .bind(now).bind(mcpgate_domain::flows::refresh::NARROWED).bind(old).execute(&mut *tx).await?;
                if r.rows_affected() != 1 {
                    // Revoked meanwhile: nothing of it to carry over.
                    continue;
                }
                sqlx::query("INSERT INTO token_families (id, grant_id, client_id, user_id, scope, resource, created_at, expires_at, revoked_at, revoked_reason, dpop_jkt) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, $9)")
                    .bind(&f.id).bind(&f.grant_id).bind(&f.client_id).bind(&f.user_id).bind(f.scope.to_string()).bind(&f.resource).bind(f.created_at).bind(f.expires_at).bind(&f.dpop_jkt)
                    .execute(&mut *tx).await?;
                // Unspent tokens move; spent ones stay with the old family, so reuse of
                // one is still detected there (and ends the old family, already ended).
                sqlx::query("UPDATE refresh_tokens SET family_id = $1 WHERE family_id = $2 AND rotated_at IS NULL")
                    .bind(&f.id).bind(old).execute(&mut *tx).await?;
                // A replay of the code that started the family must still end it.
                sqlx::query("UPDATE auth_codes SET family_id = $1 WHERE family_id = $2")
                    .bind(&f.id).bind(old).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    })
        .await
    }

    async fn live_families_of_grant(&self, grant_id: &str) -> StoreResult<Vec<TokenFamily>> {
        timed("live_families_of_grant", async move {
            dispatch!(self, pool, {
                Ok(sqlx::query_as::<_, FamilyRow>(
                    "SELECT * FROM token_families WHERE grant_id = $1 AND revoked_at IS NULL",
                )
                .bind(grant_id)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(Into::into)
                .collect())
            })
        })
        .await
    }

    async fn users_with_live_grants(&self) -> StoreResult<Vec<String>> {
        timed("users_with_live_grants", async move {
            dispatch!(self, pool, {
                let rows = sqlx::query(
                    "SELECT DISTINCT user_id FROM grants WHERE revoked_at IS NULL ORDER BY user_id",
                )
                .fetch_all(pool)
                .await?;
                Ok(rows.iter().map(|r| r.get(0)).collect())
            })
        })
        .await
    }

    async fn touch_grant(&self, id: &str, now: i64) -> StoreResult<()> {
        timed("touch_grant", async move {
            dispatch!(self, pool, {
                sqlx::query("UPDATE grants SET last_used_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(id)
                    .execute(pool)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn live_grants_of_client(&self, client_id: &str) -> StoreResult<Vec<String>> {
        timed("live_grants_of_client", async move {
            dispatch!(self, pool, {
                let rows = sqlx::query(
                    "SELECT id FROM grants WHERE client_id = $1 AND revoked_at IS NULL",
                )
                .bind(client_id)
                .fetch_all(pool)
                .await?;
                Ok(rows.iter().map(|r| r.get(0)).collect())
            })
        })
        .await
    }

    async fn live_grants_of_user(&self, user_id: &str) -> StoreResult<Vec<String>> {
        timed("live_grants_of_user", async move {
            dispatch!(self, pool, {
                let rows =
                    sqlx::query("SELECT id FROM grants WHERE user_id = $1 AND revoked_at IS NULL")
                        .bind(user_id)
                        .fetch_all(pool)
                        .await?;
                Ok(rows.iter().map(|r| r.get(0)).collect())
            })
        })
        .await
    }

    async fn revoke_grant(&self, id: &str, now: i64, reason: &str) -> StoreResult<Vec<String>> {
        timed("revoke_grant", async move {
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
    })
        .await
    }
}
