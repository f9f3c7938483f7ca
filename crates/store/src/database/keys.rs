//! Signing keys: the ring the authorization server signs access tokens with.

use async_trait::async_trait;
use mcpgate_domain::store::{Keys, StoreResult};

use crate::timing::timed;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcpgate_core::jwt::StoredKey;
use sqlx::Row;

use super::{Database, Error as StoreError, Pool};
use crate::notify::Change;

/// The associated data a signing key's seed is sealed with: its row.
pub(super) fn signing_key_row(kid: &str) -> String {
    format!("signing_key:{kid}")
}

#[async_trait]
impl Keys for Database {
    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
        timed("signing_keys", async move {
        let rows: Vec<(String, String, i64)> = dispatch!(self, pool, {
            let rows = sqlx::query("SELECT kid, seed, created_at FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at").fetch_all(pool).await?;
            rows.iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect()
        });
        let open = self.opener().await?;
        rows.into_iter()
            .map(|(kid, seed, created_at)| {
                let seed = open.open(&signing_key_row(&kid), &seed)?;
                let seed: [u8; 32] = URL_SAFE_NO_PAD
                    .decode(seed)
                    .ok()
                    .and_then(|s| s.try_into().ok())
                    .ok_or_else(|| {
                        StoreError::Backend(format!("signing key {kid}: not a 32-byte seed").into())
                    })?;
                Ok(StoredKey {
                    kid,
                    seed,
                    created_at,
                })
            })
            .collect()
    })
        .await
    }

    async fn insert_signing_key(&self, key: &StoredKey) -> StoreResult<()> {
        timed("insert_signing_key", async move {
            let (kid, created_at) = (&key.kid, key.created_at);
            let seed = self
                .seal(&signing_key_row(kid), &URL_SAFE_NO_PAD.encode(key.seed))
                .await?;
            notifying!(self, Change::Keys, conn, {
                sqlx::query("INSERT INTO signing_keys (kid, seed, created_at) VALUES ($1, $2, $3)")
                    .bind(kid)
                    .bind(&seed)
                    .bind(created_at)
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn retire_key(&self, kid: &str, now: i64) -> StoreResult<bool> {
        timed("retire_key", async move {
        notifying!(self, Change::Keys, conn, {
            let r = sqlx::query(
                "UPDATE signing_keys SET retired_at = $1 WHERE kid = $2 AND retired_at IS NULL \
                 AND created_at < (SELECT MAX(created_at) FROM signing_keys WHERE retired_at IS NULL)",
            )
            .bind(now)
            .bind(kid)
            .execute(conn)
            .await?;
            Ok(r.rows_affected() == 1)
        })
    })
        .await
    }

    async fn retire_superseded_keys(&self, now: i64, grace: i64) -> StoreResult<()> {
        timed("retire_superseded_keys", async move {
            notifying!(self, Change::Keys, pool, {
                sqlx::query(
                "UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL AND created_at < \
                 (SELECT MAX(created_at) FROM signing_keys WHERE created_at <= $2)",
            )
            .bind(now)
            .bind(now - grace)
            .execute(pool)
            .await?;
                Ok(())
            })
        })
        .await
    }
}
