//! Secrets sealed at rest: signing-key seeds and identity-provider client secrets are
//! written sealed under a key-encryption key that is not in the database
//! ([`mcpgate_core::sealed`]), and [`Database::seal_at_rest`] seals rows written before
//! (in clear, or under a previous key) on start.
//!
//! Sealing clear rows is a migration, done once: the first start with a key
//! records that the database is sealed (the `secrets_sealed` step), and from then on
//! a clear secret is refused, whether read or met by a later start. Otherwise
//! someone who can write the database but not read the key could plant a clear
//! signing key of their own and have tokens signed with it.

use std::sync::Arc;

use mcpgate_core::clock::{Clock, SystemClock};
use mcpgate_core::sealed::{Sealer, is_sealed, open_with};
use mcpgate_domain::store::Catalog;
use sqlx::Row;

use super::identities::idp_secret_row;
use super::keys::signing_key_row;
use super::{Database, Error as StoreError, Pool, Result};

/// The first-run step recorded once the database's secrets are sealed.
const SEALED_STEP: &str = "secrets_sealed";

/// A secret stored in clear in a database whose secrets are sealed: written by a
/// process without the key-encryption key, or planted by someone who can write the
/// database. It is refused, never used.
#[derive(Debug, thiserror::Error)]
#[error(
    "{what} is stored in clear, but the secrets of this database are sealed: it is refused \
     (written without the key-encryption key, or planted by someone who can write the \
     database); delete that row, or write it again with the key-encryption key configured"
)]
pub struct ClearSecret {
    /// The row, e.g. `signing_key:<kid>`.
    pub what: String,
}

impl From<ClearSecret> for StoreError {
    fn from(e: ClearSecret) -> Self {
        StoreError::Backend(Box::new(e))
    }
}

/// A secret a process without the key-encryption key would write in clear into a
/// sealed database: refused before it is written, since every process would then
/// refuse the row ([`ClearSecret`]).
#[derive(Debug, thiserror::Error)]
#[error(
    "{what} cannot be written: the secrets of this database are sealed and this process \
     has no key-encryption key (give it the server's: --key-encryption-key-file or \
     MCPGATE_KEY_ENCRYPTION_KEY)"
)]
pub struct NoKey {
    /// The row, e.g. `identity_provider:<name>`.
    pub what: String,
}

impl From<NoKey> for StoreError {
    fn from(e: NoKey) -> Self {
        StoreError::Backend(Box::new(e))
    }
}

/// Opens the secrets of rows read from the database (see [`Database::opener`]).
pub(super) struct Opener<'a> {
    sealer: Option<&'a Sealer>,
    /// The database is sealed: a clear value is refused.
    refuse_clear: bool,
}

impl Opener<'_> {
    /// The secret of row `what` stored as `stored`.
    pub(super) fn open(&self, what: &str, stored: &str) -> Result<String> {
        if self.refuse_clear && !is_sealed(stored) {
            return Err(ClearSecret {
                what: what.to_owned(),
            }
            .into());
        }
        Ok(open_with(self.sealer, what, stored)?)
    }
}

impl Database {
    /// This store, sealing and opening secrets with `sealer`.
    pub fn with_sealer(mut self, sealer: Sealer) -> Self {
        self.sealer = Some(Arc::new(sealer));
        self
    }

    /// Whether secrets are sealed at rest.
    pub fn seals(&self) -> bool {
        self.sealer.is_some()
    }

    /// The secret of row `what` as it is written: sealed with the key, or in clear
    /// in a database never sealed; refused ([`NoKey`]) in a sealed database when this
    /// process has no key.
    pub(super) async fn seal(&self, what: &str, plain: &str) -> Result<String> {
        match &self.sealer {
            Some(s) => Ok(s.seal(what, plain)),
            None if self.is_sealed_at_rest().await? => Err(NoKey {
                what: what.to_owned(),
            }
            .into()),
            None => Ok(plain.to_owned()),
        }
    }

    /// Opens secrets read now: with the configured keys, and refusing clear values
    /// once the database is sealed (asked of the database at each read, so every
    /// process holds the rule, including one started without a key).
    pub(super) async fn opener(&self) -> Result<Opener<'_>> {
        Ok(Opener {
            sealer: self.sealer.as_deref(),
            refuse_clear: self.is_sealed_at_rest().await?,
        })
    }

    /// Whether a start with a key-encryption key has sealed this database's secrets.
    pub async fn is_sealed_at_rest(&self) -> mcpgate_domain::store::StoreResult<bool> {
        crate::timing::timed("is_sealed_at_rest", async move {
            dispatch!(self, pool, {
                Ok(sqlx::query("SELECT 1 FROM seeded WHERE step = $1")
                    .bind(SEALED_STEP)
                    .fetch_optional(pool)
                    .await?
                    .is_some())
            })
        })
        .await
    }

    /// Seals every secret stored under a previous key-encryption key, and on the
    /// first start with a key every secret stored in clear (retired signing keys
    /// too), then records that the database is sealed; returns how many rows
    /// changed. Each row is replaced only if it still holds the value read, so
    /// instances starting together cannot undo each other. Fails, naming the row, if
    /// a row is sealed under a key that is not configured, or is clear in a database
    /// already sealed ([`ClearSecret`]).
    pub async fn seal_at_rest(&self) -> mcpgate_domain::store::StoreResult<u64> {
        crate::timing::timed("seal_at_rest", async move {
        let Some(sealer) = self.sealer.clone() else {
            return Ok(0);
        };
        let refuse_clear = self.is_sealed_at_rest().await?;
        let keys = self
            .reseal(
                &sealer,
                refuse_clear,
                "SELECT kid, seed FROM signing_keys",
                "UPDATE signing_keys SET seed = $1 WHERE kid = $2 AND seed = $3",
                signing_key_row,
            )
            .await?;
        let secrets = self
            .reseal(
                &sealer,
                refuse_clear,
                "SELECT name, client_secret FROM identity_providers",
                "UPDATE identity_providers SET client_secret = $1 WHERE name = $2 AND client_secret = $3",
                idp_secret_row,
            )
            .await?;
        // Only after every clear row is sealed: a start that failed half way seals
        // the rest next time.
        self.mark_seeded(SEALED_STEP, SystemClock.now()).await?;
        Ok(keys + secrets)
    })
        .await
    }

    /// Seals the (id, value) rows `select` reads that need it, with `update`
    /// (binding the sealed value, the id and the value read); `row` names a row for
    /// the associated data. With `refuse_clear`, a clear row is an error.
    async fn reseal(
        &self,
        sealer: &Sealer,
        refuse_clear: bool,
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
            if refuse_clear && !is_sealed(stored) {
                return Err(ClearSecret { what }.into());
            }
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

#[cfg(test)]
mod tests {
    use mcpgate_core::sealed::WrappingKey;

    use super::*;
    use mcpgate_domain::store::prelude::*;

    /// Two handles on a fresh SQLite database: without a key-encryption key, with one.
    async fn stores() -> (Database, Database, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "mcpgate-seal-{}",
            mcpgate_core::secret::random_id()
        ));
        let clear = Database::open_dir(&dir).await.unwrap();
        let key = Sealer::new(WrappingKey::from_bytes(&[1; 32]), vec![]);
        (clear.clone(), clear.with_sealer(key), dir)
    }

    #[tokio::test]
    async fn clear_secrets_are_sealed_on_the_first_start_only_then_refused() {
        let (clear, sealed, dir) = stores().await;
        let key = |kid: &str, seed: u8, created_at| mcpgate_core::jwt::StoredKey {
            kid: kid.into(),
            seed: [seed; 32],
            created_at,
        };
        clear
            .insert_signing_key(&key("legacy", 7, 1))
            .await
            .unwrap();
        assert!(!sealed.is_sealed_at_rest().await.unwrap());
        // the first start with a key: the migration
        assert_eq!(sealed.seal_at_rest().await.unwrap(), 1);
        assert!(sealed.is_sealed_at_rest().await.unwrap());
        assert_eq!(sealed.signing_keys().await.unwrap()[0].seed, [7; 32]);
        // a process without the key cannot write one in clear any more ...
        let err = clear
            .insert_signing_key(&key("written", 9, 2))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("signing_key:written cannot be written"),
            "{err}"
        );
        // ... and one planted by writing the database: refused when read, and by the
        // next start, which does not seal it
        dispatch!(clear, pool, {
            sqlx::query(
                "INSERT INTO signing_keys (kid, seed, created_at) VALUES ('planted', 'CQkJ', 2)",
            )
            .execute(pool)
            .await
            .unwrap();
        });
        let err = sealed.signing_keys().await.unwrap_err().to_string();
        assert!(err.contains("signing_key:planted"), "{err}");
        let err = sealed.seal_at_rest().await.unwrap_err().to_string();
        assert!(err.contains("signing_key:planted"), "{err}");
        let err = sealed.signing_keys().await.unwrap_err().to_string();
        assert!(err.contains("stored in clear"), "{err}");
        // nor is it accepted by a process without the key
        let err = clear.signing_keys().await.unwrap_err().to_string();
        assert!(
            err.contains("not configured") || err.contains("stored in clear"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
