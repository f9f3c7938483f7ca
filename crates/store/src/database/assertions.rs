//! JWT ids already presented, and the issuers trusted for ID-JAGs.

use async_trait::async_trait;
use mcpgate_domain::store::{Assertions, StoreResult};
use sqlx::Row;

use super::{Database, Pool};
use crate::model::*;
use crate::timing::timed;

#[async_trait]
impl Assertions for Database {
    async fn remember_jti(
        &self,
        kind: &str,
        issuer: &str,
        jti: &str,
        expires_at: i64,
    ) -> StoreResult<bool> {
        timed("remember_jti", async move {
            dispatch!(self, pool, {
                let r = sqlx::query(
                    "INSERT INTO seen_jtis (kind, issuer, jti, expires_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(kind)
                .bind(issuer)
                .bind(jti)
                .bind(expires_at)
                .execute(pool)
                .await?;
                Ok(r.rows_affected() == 1)
            })
        })
        .await
    }

    async fn trusted_issuers(&self) -> StoreResult<Vec<TrustedIssuer>> {
        timed("trusted_issuers", async move {
            dispatch!(self, pool, {
                let rows = sqlx::query(
                    "SELECT name, issuer, jwks_uri, allowed_domains, auto_create, created_at, exchange_audiences, exchange_clients \
                     FROM trusted_issuers ORDER BY name",
                )
                .fetch_all(pool)
                .await?;
                Ok(rows
                    .iter()
                    .map(|r| trusted((r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6), r.get(7))))
                    .collect())
            })
        })
        .await
    }

    async fn trusted_issuer(&self, issuer: &str) -> StoreResult<Option<TrustedIssuer>> {
        timed("trusted_issuer", async move {
            dispatch!(self, pool, {
                let row = sqlx::query(
                    "SELECT name, issuer, jwks_uri, allowed_domains, auto_create, created_at, exchange_audiences, exchange_clients \
                     FROM trusted_issuers WHERE issuer = $1",
                )
                .bind(issuer)
                .fetch_optional(pool)
                .await?;
                Ok(
                    row.map(|r| {
                        trusted((r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6), r.get(7)))
                    }),
                )
            })
        })
        .await
    }

    async fn upsert_trusted_issuer(&self, t: &TrustedIssuer) -> StoreResult<()> {
        timed("upsert_trusted_issuer", async move {
            dispatch!(self, pool, {
                sqlx::query(
                    "INSERT INTO trusted_issuers (name, issuer, jwks_uri, allowed_domains, auto_create, created_at, exchange_audiences, exchange_clients) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (name) DO UPDATE SET issuer = $2, \
                     jwks_uri = $3, allowed_domains = $4, auto_create = $5, exchange_audiences = $7, exchange_clients = $8",
                )
                .bind(&t.name)
                .bind(&t.issuer)
                .bind(&t.jwks_uri)
                .bind(serde_json::to_string(&t.allowed_domains).unwrap_or_default())
                .bind(t.auto_create)
                .bind(t.created_at)
                .bind(serde_json::to_string(&t.exchange_audiences).unwrap_or_default())
                .bind(serde_json::to_string(&t.exchange_clients).unwrap_or_default())
                .execute(pool)
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn delete_trusted_issuer(&self, name: &str) -> StoreResult<bool> {
        timed("delete_trusted_issuer", async move {
            dispatch!(self, pool, {
                let r = sqlx::query("DELETE FROM trusted_issuers WHERE name = $1")
                    .bind(name)
                    .execute(pool)
                    .await?;
                Ok(r.rows_affected() == 1)
            })
        })
        .await
    }
}

/// A row's columns, in the order the queries above read them.
type TrustedRow = (String, String, String, String, bool, i64, String, String);

fn trusted(c: TrustedRow) -> TrustedIssuer {
    let list = |s: &str| serde_json::from_str(s).unwrap_or_default();
    TrustedIssuer {
        name: c.0,
        issuer: c.1,
        jwks_uri: c.2,
        allowed_domains: list(&c.3),
        auto_create: c.4,
        created_at: c.5,
        exchange_audiences: list(&c.6),
        exchange_clients: list(&c.7),
    }
}
