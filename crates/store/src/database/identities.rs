//! Identity providers, the identities linked through them, and sign-ins under way.

use async_trait::async_trait;
use mcpgate_domain::store::{Identities, StoreResult};

use crate::timing::timed;

use super::users::insert_user;
use super::{Database, Pool};
use crate::model::*;

/// The associated data a provider's client secret is sealed with: its row.
pub(super) fn idp_secret_row(name: &str) -> String {
    format!("identity_provider:{name}")
}

/// Writes a link to a provider's identity with `$conn` (a pool or a transaction).
macro_rules! insert_identity {
    ($conn:expr, $i:expr) => {{
        let i: &UserIdentity = $i;
        sqlx::query("INSERT INTO user_identities (provider, subject, user_id, email, created_at, last_login_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&i.provider).bind(&i.subject).bind(&i.user_id).bind(&i.email)
            .bind(i.created_at).bind(i.last_login_at).execute($conn).await?;
    }};
}

#[async_trait]
impl Identities for Database {
    async fn upsert_identity_provider(&self, p: &IdentityProviderRow) -> StoreResult<()> {
        timed("upsert_identity_provider", async move {
        let secret = self
            .seal(&idp_secret_row(&p.name), &p.client_secret)
            .await?;
        dispatch!(self, pool, {
            sqlx::query("INSERT INTO identity_providers (name, display_name, kind, issuer, client_id, client_secret, allowed_domains, auto_create, created_at, groups_claim, groups_scope) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (name) DO UPDATE SET display_name = $2, kind = $3, issuer = $4, client_id = $5, client_secret = $6, allowed_domains = $7, auto_create = $8, groups_claim = $10, groups_scope = $11")
                .bind(&p.name).bind(&p.display_name).bind(&p.kind).bind(&p.issuer).bind(&p.client_id)
                .bind(&secret).bind(&p.allowed_domains).bind(p.auto_create).bind(p.created_at).bind(&p.groups_claim).bind(&p.groups_scope)
                .execute(pool).await?;
            Ok(())
        })
    })
        .await
    }

    async fn identity_providers(&self) -> StoreResult<Vec<IdentityProviderRow>> {
        timed("identity_providers", async move {
            let rows: Vec<ProviderRow> = dispatch!(self, pool, {
                sqlx::query_as::<_, ProviderRow>("SELECT * FROM identity_providers ORDER BY name")
                    .fetch_all(pool)
                    .await?
            });
            let open = self.opener().await?;
            rows.into_iter()
                .map(IdentityProviderRow::from)
                .map(|mut p| {
                    p.client_secret = open.open(&idp_secret_row(&p.name), &p.client_secret)?;
                    Ok(p)
                })
                .collect()
        })
        .await
    }

    async fn delete_identity_provider(&self, name: &str) -> StoreResult<bool> {
        timed("delete_identity_provider", async move {
            dispatch!(self, pool, {
                let r = sqlx::query("DELETE FROM identity_providers WHERE name = $1")
                    .bind(name)
                    .execute(pool)
                    .await?;
                Ok(r.rows_affected() == 1)
            })
        })
        .await
    }

    async fn user_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> StoreResult<Option<UserIdentity>> {
        timed("user_identity", async move {
            dispatch!(self, pool, {
                Ok(sqlx::query_as::<_, UserIdentityRow>(
                    "SELECT * FROM user_identities WHERE provider = $1 AND subject = $2",
                )
                .bind(provider)
                .bind(subject)
                .fetch_optional(pool)
                .await?
                .map(Into::into))
            })
        })
        .await
    }

    async fn link_identity(&self, i: &UserIdentity) -> StoreResult<()> {
        timed("link_identity", async move {
            dispatch!(self, pool, {
                insert_identity!(pool, i);
                Ok(())
            })
        })
        .await
    }

    async fn create_user_with_identity(&self, u: &User, i: &UserIdentity) -> StoreResult<()> {
        timed("create_user_with_identity", async move {
            dispatch!(self, pool, {
                let mut tx = pool.begin().await?;
                insert_user!(&mut *tx, u);
                insert_identity!(&mut *tx, i);
                tx.commit().await?;
                Ok(())
            })
        })
        .await
    }

    async fn touch_identity(
        &self,
        provider: &str,
        subject: &str,
        email: Option<&str>,
        now: i64,
    ) -> StoreResult<()> {
        timed("touch_identity", async move {
        dispatch!(self, pool, {
            sqlx::query("UPDATE user_identities SET last_login_at = $1, email = COALESCE($2, email) WHERE provider = $3 AND subject = $4")
                .bind(now).bind(email).bind(provider).bind(subject).execute(pool).await?;
            Ok(())
        })
    })
        .await
    }

    async fn insert_idp_login(&self, l: &IdpLogin) -> StoreResult<()> {
        timed("insert_idp_login", async move {
        dispatch!(self, pool, {
            sqlx::query("INSERT INTO idp_logins (state_hash, provider, browser_hash, nonce, pkce_verifier, next, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(&l.state_hash).bind(&l.provider).bind(&l.browser_hash).bind(&l.nonce)
                .bind(&l.pkce_verifier).bind(&l.next).bind(l.created_at).bind(l.expires_at)
                .execute(pool).await?;
            Ok(())
        })
    })
        .await
    }

    async fn take_idp_login(&self, state_hash: &str, now: i64) -> StoreResult<Option<IdpLogin>> {
        timed("take_idp_login", async move {
            dispatch!(self, pool, {
                let l = sqlx::query_as::<_, IdpLoginRow>(
                    "DELETE FROM idp_logins WHERE state_hash = $1 RETURNING *",
                )
                .bind(state_hash)
                .fetch_optional(pool)
                .await?;
                Ok(l.map(IdpLogin::from).filter(|l| l.expires_at > now))
            })
        })
        .await
    }
}
