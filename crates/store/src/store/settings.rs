//! Operator settings: scopes with their descriptions and the redirect allow-list.

use sqlx::Row;

use super::{Pool, Result, Store};
use crate::notify::Change;

impl Store {
    pub async fn scopes(&self) -> Result<Vec<(String, String)>> {
        dispatch!(self, pool, {
            let rows = sqlx::query("SELECT name, description FROM scopes ORDER BY name")
                .fetch_all(pool)
                .await?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    pub async fn upsert_scope(&self, name: &str, description: &str) -> Result<()> {
        notifying!(self, Change::Config, pool, {
            sqlx::query("INSERT INTO scopes (name, description) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET description = $2")
                .bind(name).bind(description).execute(pool).await?;
            Ok(())
        })
    }

    // -------------------------------------------------------- redirect allow-list

    pub async fn allowed_redirects(&self) -> Result<Vec<String>> {
        dispatch!(self, pool, {
            let rows = sqlx::query("SELECT entry FROM allowed_redirects ORDER BY entry")
                .fetch_all(pool)
                .await?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    pub async fn allow_redirect(&self, entry: &str, now: i64) -> Result<()> {
        notifying!(self, Change::Config, pool, {
            sqlx::query("INSERT INTO allowed_redirects (entry, created_at) VALUES ($1, $2) ON CONFLICT (entry) DO NOTHING").bind(entry).bind(now).execute(pool).await?;
            Ok(())
        })
    }

    pub async fn disallow_redirect(&self, entry: &str) -> Result<bool> {
        notifying!(self, Change::Config, pool, {
            let r = sqlx::query("DELETE FROM allowed_redirects WHERE entry = $1")
                .bind(entry)
                .execute(pool)
                .await?;
            Ok(r.rows_affected() == 1)
        })
    }
}
