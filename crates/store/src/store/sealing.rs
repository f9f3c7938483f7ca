//! Secrets sealed at rest: signing-key seeds and identity-provider client secrets are
//! written sealed under a key-encryption key that is not in the database
//! ([`mcpgate_core::sealed`]), and [`Store::seal_at_rest`] seals rows written before
//! (in clear, or under a previous key) on start.

use std::sync::Arc;

use mcpgate_core::sealed::{Sealer, open_with};
use sqlx::Row;

use super::idp::idp_secret_row;
use super::keys::signing_key_row;
use super::{Pool, Result, Store};

impl Store {
    /// This store, sealing and opening secrets with `sealer`.
    pub fn with_sealer(mut self, sealer: Sealer) -> Self {
        self.sealer = Some(Arc::new(sealer));
        self
    }

    /// Whether secrets are sealed at rest.
    pub fn seals(&self) -> bool {
        self.sealer.is_some()
    }

    pub(super) fn seal(&self, what: &str, plain: &str) -> String {
        match &self.sealer {
            Some(s) => s.seal(what, plain),
            None => plain.to_owned(),
        }
    }

    pub(super) fn unseal(&self, what: &str, stored: &str) -> Result<String> {
        Ok(open_with(self.sealer.as_deref(), what, stored)?)
    }

    /// Seals every secret stored in clear or under a previous key-encryption key
    /// (retired signing keys too); returns how many rows changed. Each row is
    /// replaced only if it still holds the value read, so instances starting together
    /// cannot undo each other. Fails, naming the key, if a row is sealed under a key
    /// that is not configured.
    pub async fn seal_at_rest(&self) -> Result<u64> {
        let Some(sealer) = self.sealer.clone() else {
            return Ok(0);
        };
        let keys = self
            .reseal(
                &sealer,
                "SELECT kid, seed FROM signing_keys",
                "UPDATE signing_keys SET seed = $1 WHERE kid = $2 AND seed = $3",
                signing_key_row,
            )
            .await?;
        let secrets = self
            .reseal(
                &sealer,
                "SELECT name, client_secret FROM identity_providers",
                "UPDATE identity_providers SET client_secret = $1 WHERE name = $2 AND client_secret = $3",
                idp_secret_row,
            )
            .await?;
        Ok(keys + secrets)
    }

    /// Seals the (id, value) rows `select` reads that need it, with `update`
    /// (binding the sealed value, the id and the value read); `row` names a row for
    /// the associated data.
    async fn reseal(
        &self,
        sealer: &Sealer,
        select: &'static str,
        update: &'static str,
        row: fn(&str) -> String,
    ) -> Result<u64> {
        let rows: Vec<(String, String)> = dispatch!(self, pool, {
            sqlx::query(select)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect()
        });
        let mut changed = 0;
        for (id, stored) in rows.iter().filter(|(_, v)| sealer.needs_sealing(v)) {
            let what = row(id);
            let sealed = sealer.seal(&what, &sealer.open(&what, stored)?);
            changed += dispatch!(self, pool, {
                sqlx::query(update)
                    .bind(&sealed)
                    .bind(id)
                    .bind(stored)
                    .execute(pool)
                    .await?
                    .rows_affected()
            });
        }
        Ok(changed)
    }
}
