//! The store: one code path over SQLite (the embedded default) and PostgreSQL
//! (several instances sharing one database). Each method's body is compiled once per
//! backend by [`dispatch!`]; the SQL is the same, with `$N` placeholders both accept.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::model::*;
use crate::notify::{Announce, Change};

/// Storage failures. sqlx types stay inside this crate.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                StoreError::Conflict(d.message().to_owned())
            }
            _ => StoreError::Backend(Box::new(e)),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Backend(Box::new(e))
    }
}

type Result<T> = std::result::Result<T, StoreError>;

#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the backend's pool: the body is compiled for
/// each backend, so one query text serves both.
macro_rules! dispatch {
    ($self:ident, $pool:ident, $body:block) => {
        match &$self.pool {
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

/// Runs `$body` (with `$conn` an executor) and announces `$change` to every other
/// process: on PostgreSQL inside one transaction with `pg_notify`, so listeners hear
/// of the change exactly when it commits; on SQLite by a datagram after it.
macro_rules! notifying {
    ($self:ident, $change:expr, $conn:ident, $body:block) => {
        match &$self.pool {
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let out = {
                    let $conn = &mut *tx;
                    $body
                };
                crate::notify::pg_notify(&mut *tx, &$change).await?;
                tx.commit().await?;
                out
            }
            Pool::Sqlite(pool) => {
                let out = {
                    let $conn = pool;
                    $body
                };
                $self.announce_local(&$change);
                out
            }
        }
    };
}
mod idp;

/// A handle on the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
    pub(crate) announce: Announce,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// A client row as stored; lists are JSON text.
#[derive(sqlx::FromRow)]
struct ClientRow {
    client_id: String,
    secret_hash: Option<String>,
    name: String,
    redirect_uris: String,
    kind: String,
    auth_method: String,
    can_introspect: bool,
    owner_user_id: Option<String>,
    registration_hash: Option<String>,
    metadata: String,
    created_at: i64,
    last_used_at: Option<i64>,
}

impl From<ClientRow> for Client {
    fn from(r: ClientRow) -> Self {
        Client {
            client_id: r.client_id,
            secret_hash: r.secret_hash,
            name: r.name,
            redirect_uris: serde_json::from_str(&r.redirect_uris).unwrap_or_default(),
            kind: ClientKind::parse(&r.kind),
            auth_method: r.auth_method,
            can_introspect: r.can_introspect,
            owner_user_id: r.owner_user_id,
            registration_hash: r.registration_hash,
            metadata: serde_json::from_str(&r.metadata).unwrap_or_default(),
            created_at: r.created_at,
            last_used_at: r.last_used_at,
        }
    }
}

/// Page cache of each pooled SQLite connection, in KiB.
const SQLITE_CACHE_KIB: u32 = 512;

/// How long failed sign-ins of a name are remembered after the last one or the end of
/// its lock.
pub const LOGIN_THROTTLE_MEMORY_SECS: i64 = 86_400;

impl Store {
    /// Opens (creating if needed) `mcpgate.db` in `dir` and applies migrations.
    pub async fn open_dir(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Backend(Box::new(e)))?;
        restrict_permissions(dir);
        let mut store =
            Self::open(&format!("sqlite://{}", dir.join("mcpgate.db").display())).await?;
        store.announce = Announce::Socket(dir.join(crate::notify::LOCAL_SOCKET));
        Ok(store)
    }

    /// Opens a database URL — `sqlite://path` or `postgres://…` — and applies the
    /// backend's migrations.
    pub async fn open(url: &str) -> Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            POSTGRES_MIGRATIONS.run(&pool).await?;
            // The listening connection is separate from the pool, opened on demand,
            // and named so that an operator can find it.
            let listen_opts = PgConnectOptions::from_str(url)?.application_name(&format!(
                "{}-{}",
                crate::notify::LISTENER_APP_NAME,
                std::process::id()
            ));
            let listen_pool = PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(10))
                .connect_lazy_with(listen_opts);
            return Ok(Self {
                pool: Pool::Postgres(pool),
                announce: Announce::Postgres { listen_pool },
            });
        }
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            // WAL lets the CLI write while the server runs; busy_timeout makes the
            // rare writer collision wait instead of failing.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true)
            // Each pooled connection has its own page cache, 2 MB by default: eight of
            // them fill up as the database grows, 16 MB a long-running server gains
            // for pages the OS caches anyway. 512 KiB each bounds them at 4 MB.
            .pragma("cache_size", format!("-{SQLITE_CACHE_KIB}"));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(opts)
            .await?;
        SQLITE_MIGRATIONS.run(&pool).await?;
        Ok(Self {
            pool: Pool::Sqlite(pool),
            announce: Announce::Nobody,
        })
    }

    /// SQLite: copies the write-ahead log into the database and truncates it. Under
    /// steady load some reader always holds a snapshot, so SQLite's own (passive)
    /// checkpoints never reach the end of the log, and it is never restarted: it grows
    /// without bound ("checkpoint starvation", sqlite.org/wal.html §6). A TRUNCATE
    /// checkpoint waits (busy_timeout) for the readers of the moment, which are short.
    /// PostgreSQL: nothing to do.
    pub async fn checkpoint(&self) -> Result<()> {
        if let Pool::Sqlite(pool) = &self.pool {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    /// The backend's name, for messages.
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    // ---------------------------------------------------------------- users

    pub async fn create_user(&self, u: &User) -> Result<()> {
        dispatch!(self, pool, {
            sqlx::query("INSERT INTO users (id, username, email, password_hash, is_admin, disabled, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(&u.id).bind(&u.username).bind(&u.email).bind(&u.password_hash)
                .bind(u.is_admin).bind(u.disabled).bind(u.created_at)
                .execute(pool).await?;
            Ok(())
        })
    }

    pub async fn user_by_name(&self, username: &str) -> Result<Option<User>> {
        dispatch!(self, pool, {
            Ok(
                sqlx::query_as::<_, User>("SELECT * FROM users WHERE username = $1")
                    .bind(username)
                    .fetch_optional(pool)
                    .await?,
            )
        })
    }

    pub async fn user(&self, id: &str) -> Result<Option<User>> {
        dispatch!(self, pool, {
            Ok(
                sqlx::query_as::<_, User>("SELECT * FROM users WHERE id = $1")
                    .bind(id)
                    .fetch_optional(pool)
                    .await?,
            )
        })
    }

    pub async fn users(&self) -> Result<Vec<User>> {
        dispatch!(self, pool, {
            Ok(
                sqlx::query_as::<_, User>("SELECT * FROM users ORDER BY username")
                    .fetch_all(pool)
                    .await?,
            )
        })
    }

    pub async fn count_users(&self) -> Result<i64> {
        dispatch!(self, pool, {
            Ok(sqlx::query("SELECT COUNT(*) FROM users")
                .fetch_one(pool)
                .await?
                .get(0))
        })
    }

    pub async fn set_user_disabled(&self, username: &str, disabled: bool) -> Result<bool> {
        notifying!(self, Change::Config, conn, {
            let r = sqlx::query("UPDATE users SET disabled = $1 WHERE username = $2")
                .bind(disabled)
                .bind(username)
                .execute(conn)
                .await?;
            Ok(r.rows_affected() == 1)
        })
    }

    pub async fn set_password(&self, username: &str, hash: &str) -> Result<bool> {
        dispatch!(self, pool, {
            let r = sqlx::query("UPDATE users SET password_hash = $1 WHERE username = $2")
                .bind(hash)
                .bind(username)
                .execute(pool)
                .await?;
            Ok(r.rows_affected() == 1)
        })
    }

    // -------------------------------------------------------------- clients

    pub async fn insert_client(&self, c: &Client) -> Result<()> {
        dispatch!(self, pool, {
            sqlx::query("INSERT INTO clients (client_id, secret_hash, name, redirect_uris, kind, auth_method, can_introspect, owner_user_id, registration_hash, metadata, created_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")
                .bind(&c.client_id).bind(&c.secret_hash).bind(&c.name)
                .bind(serde_json::to_string(&c.redirect_uris).unwrap_or_default())
                .bind(c.kind.as_str()).bind(&c.auth_method).bind(c.can_introspect).bind(&c.owner_user_id)
                .bind(&c.registration_hash).bind(c.metadata.to_string()).bind(c.created_at).bind(c.last_used_at)
                .execute(pool).await?;
            Ok(())
        })
    }

    /// Inserts or replaces a client known by its metadata document (refetched documents
    /// may change).
    pub async fn upsert_document_client(&self, c: &Client) -> Result<()> {
        dispatch!(self, pool, {
            sqlx::query("DELETE FROM clients WHERE client_id = $1 AND kind = 'metadata_document'")
                .bind(&c.client_id)
                .execute(pool)
                .await?;
            self.insert_client(c).await
        })
    }

    pub async fn client(&self, client_id: &str) -> Result<Option<Client>> {
        dispatch!(self, pool, {
            let row = sqlx::query_as::<_, ClientRow>("SELECT * FROM clients WHERE client_id = $1")
                .bind(client_id)
                .fetch_optional(pool)
                .await?;
            Ok(row.map(Client::from))
        })
    }

    pub async fn client_by_registration_hash(&self, hash: &str) -> Result<Option<Client>> {
        dispatch!(self, pool, {
            let row = sqlx::query_as::<_, ClientRow>(
                "SELECT * FROM clients WHERE registration_hash = $1 AND kind = 'dynamic' LIMIT 1",
            )
            .bind(hash)
            .fetch_optional(pool)
            .await?;
            Ok(row.map(Client::from))
        })
    }

    pub async fn clients(&self, owner: Option<&str>) -> Result<Vec<Client>> {
        dispatch!(self, pool, {
            let rows = match owner {
                Some(o) => {
                    sqlx::query_as::<_, ClientRow>(
                        "SELECT * FROM clients WHERE owner_user_id = $1 ORDER BY created_at",
                    )
                    .bind(o)
                    .fetch_all(pool)
                    .await?
                }
                None => {
                    sqlx::query_as::<_, ClientRow>("SELECT * FROM clients ORDER BY created_at")
                        .fetch_all(pool)
                        .await?
                }
            };
            Ok(rows.into_iter().map(Client::from).collect())
        })
    }

    pub async fn count_dynamic_clients(&self) -> Result<i64> {
        dispatch!(self, pool, {
            Ok(
                sqlx::query("SELECT COUNT(*) FROM clients WHERE kind = 'dynamic'")
                    .fetch_one(pool)
                    .await?
                    .get(0),
            )
        })
    }

    pub async fn delete_client(&self, client_id: &str, owner: Option<&str>) -> Result<bool> {
        notifying!(self, Change::Config, conn, {
            let r = match owner {
                Some(o) => {
                    sqlx::query("DELETE FROM clients WHERE client_id = $1 AND owner_user_id = $2")
                        .bind(client_id)
                        .bind(o)
                        .execute(conn)
                        .await?
                }
                None => {
                    sqlx::query("DELETE FROM clients WHERE client_id = $1")
                        .bind(client_id)
                        .execute(conn)
                        .await?
                }
            };
            Ok(r.rows_affected() == 1)
        })
    }

    pub async fn touch_client(&self, client_id: &str, now: i64) -> Result<()> {
        dispatch!(self, pool, {
            sqlx::query("UPDATE clients SET last_used_at = $1 WHERE client_id = $2")
                .bind(now)
                .bind(client_id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Deletes dynamic registrations that were never used by `before` (RFC 7591 leaves
    /// their lifetime to the server; unused ones are spam or abandoned attempts).
    pub async fn sweep_unused_dynamic_clients(&self, before: i64) -> Result<u64> {
        dispatch!(self, pool, {
            let r = sqlx::query("DELETE FROM clients WHERE kind = 'dynamic' AND last_used_at IS NULL AND created_at < $1").bind(before).execute(pool).await?;
            Ok(r.rows_affected())
        })
    }

    // --------------------------------------------------------- signing keys

    /// Keys not retired, as (kid, base64url seed, created_at).
    pub async fn signing_keys(&self) -> Result<Vec<(String, String, i64)>> {
        dispatch!(self, pool, {
            let rows = sqlx::query("SELECT kid, seed, created_at FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at").fetch_all(pool).await?;
            Ok(rows
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect())
        })
    }

    pub async fn insert_signing_key(&self, kid: &str, seed: &str, created_at: i64) -> Result<()> {
        notifying!(self, Change::Keys, conn, {
            sqlx::query("INSERT INTO signing_keys (kid, seed, created_at) VALUES ($1, $2, $3)")
                .bind(kid)
                .bind(seed)
                .bind(created_at)
                .execute(conn)
                .await?;
            Ok(())
        })
    }

    /// Retires one key at once (it leaked, or must stop verifying): every token it
    /// signed is refused from then on. The newest live key, which signs, is never
    /// retired this way (rotate first); false if `kid` is not a retirable live key.
    pub async fn retire_key(&self, kid: &str, now: i64) -> Result<bool> {
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
    }

    /// Retires keys superseded for at least `grace` seconds: every key older than the
    /// newest key that is itself at least `grace` old. With `grace` longer than any
    /// token's life, no key that signed a still-valid token is ever retired, however
    /// many keys were made (instances racing on first start, rotations in a row).
    pub async fn retire_superseded_keys(&self, now: i64, grace: i64) -> Result<()> {
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
    }

    // ------------------------------------------------------- auth requests

    pub async fn insert_auth_request(&self, r: &AuthRequest) -> Result<()> {
        dispatch!(self, pool, {
            sqlx::query("INSERT INTO auth_requests (id_hash, client_id, redirect_uri, scope, state, code_challenge, resource, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
                .bind(&r.id_hash).bind(&r.client_id).bind(&r.redirect_uri).bind(&r.scope).bind(&r.state)
                .bind(&r.code_challenge).bind(&r.resource).bind(r.created_at).bind(r.expires_at)
                .execute(pool).await?;
            Ok(())
        })
    }

    pub async fn auth_request(&self, id_hash: &str, now: i64) -> Result<Option<AuthRequest>> {
        dispatch!(self, pool, {
            Ok(sqlx::query_as::<_, AuthRequest>(
                "SELECT * FROM auth_requests WHERE id_hash = $1 AND expires_at > $2",
            )
            .bind(id_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?)
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
            Ok(sqlx::query_as::<_, Grant>("SELECT * FROM grants WHERE user_id = $1 AND client_id = $2 AND resource = $3 AND revoked_at IS NULL")
                .bind(user_id).bind(client_id).bind(resource).fetch_optional(pool).await?)
        })
    }

    pub async fn grant(&self, id: &str) -> Result<Option<Grant>> {
        dispatch!(self, pool, {
            Ok(
                sqlx::query_as::<_, Grant>("SELECT * FROM grants WHERE id = $1")
                    .bind(id)
                    .fetch_optional(pool)
                    .await?,
            )
        })
    }

    pub async fn insert_grant(&self, g: &Grant) -> Result<()> {
        dispatch!(self, pool, {
            sqlx::query("INSERT INTO grants (id, user_id, client_id, resource, scope, created_at, last_used_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)")
                .bind(&g.id).bind(&g.user_id).bind(&g.client_id).bind(&g.resource).bind(&g.scope).bind(g.created_at).bind(g.last_used_at)
                .execute(pool).await?;
            Ok(())
        })
    }

    pub async fn set_grant_scope(&self, id: &str, scope: &str) -> Result<()> {
        dispatch!(self, pool, {
            sqlx::query("UPDATE grants SET scope = $1 WHERE id = $2")
                .bind(scope)
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
                    "SELECT g.id, g.client_id, COALESCE(c.name, g.client_id) AS client_name, COALESCE(c.kind, 'unknown') AS client_kind, \
                     g.resource, g.scope, g.created_at, g.last_used_at FROM grants g LEFT JOIN clients c ON c.client_id = g.client_id \
                     WHERE g.revoked_at IS NULL AND g.user_id = $1 ORDER BY g.created_at DESC",
                )
                .bind(u)
                .fetch_all(pool)
                .await?,
                None => sqlx::query_as::<_, GrantView>(
                    "SELECT g.id, g.client_id, COALESCE(c.name, g.client_id) AS client_name, COALESCE(c.kind, 'unknown') AS client_kind, \
                     g.resource, g.scope, g.created_at, g.last_used_at FROM grants g LEFT JOIN clients c ON c.client_id = g.client_id \
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

    // ----------------------------------------------------------------- codes

    pub async fn insert_code(&self, c: &AuthCode) -> Result<()> {
        dispatch!(self, pool, {
            sqlx::query("INSERT INTO auth_codes (code_hash, client_id, user_id, grant_id, redirect_uri, scope, resource, code_challenge, created_at, expires_at, used_at, family_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL)")
                .bind(&c.code_hash).bind(&c.client_id).bind(&c.user_id).bind(&c.grant_id).bind(&c.redirect_uri)
                .bind(&c.scope).bind(&c.resource).bind(&c.code_challenge).bind(c.created_at).bind(c.expires_at)
                .execute(pool).await?;
            Ok(())
        })
    }

    /// Spends a code: exactly one caller, across every process sharing the database,
    /// gets `Redeemed` (OAuth 2.1 §4.1.2: codes are single-use).
    pub async fn redeem_code(&self, code_hash: &str, now: i64) -> Result<Redeem> {
        dispatch!(self, pool, {
            let r = sqlx::query("UPDATE auth_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL AND expires_at > $1")
                .bind(now).bind(code_hash).execute(pool).await?;
            let row =
                sqlx::query_as::<_, AuthCode>("SELECT * FROM auth_codes WHERE code_hash = $1")
                    .bind(code_hash)
                    .fetch_optional(pool)
                    .await?;
            Ok(match (r.rows_affected(), row) {
                (1, Some(c)) => Redeem::Redeemed(c),
                (_, Some(c)) => Redeem::Spent(c),
                (_, None) => Redeem::NotFound,
            })
        })
    }

    pub async fn set_code_family(&self, code_hash: &str, family_id: &str) -> Result<()> {
        dispatch!(self, pool, {
            sqlx::query("UPDATE auth_codes SET family_id = $1 WHERE code_hash = $2")
                .bind(family_id)
                .bind(code_hash)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Deletes what has expired. A revocation row is kept until its `until` and also
    /// for `revocation_cover` seconds after it was made (the longest an access token
    /// of the caller lives), so a revocation written by a process that guessed a
    /// shorter lifetime (the CLI) still outlives the tokens it covers.
    pub async fn delete_expired(&self, now: i64, revocation_cover: i64) -> Result<()> {
        dispatch!(self, pool, {
            // Spent codes are kept past expiry for a while, so a late replay is still
            // recognised as one (and revokes what the code issued).
            sqlx::query("DELETE FROM auth_codes WHERE expires_at < $1")
                .bind(now - 3600)
                .execute(pool)
                .await?;
            sqlx::query("DELETE FROM auth_requests WHERE expires_at < $1")
                .bind(now)
                .execute(pool)
                .await?;
            sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
                .bind(now)
                .execute(pool)
                .await?;
            sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < $1")
                .bind(now)
                .execute(pool)
                .await?;
            sqlx::query("DELETE FROM revocations WHERE until_at < $1 AND created_at < $2")
                .bind(now)
                .bind(now - revocation_cover)
                .execute(pool)
                .await?;
            sqlx::query("DELETE FROM idp_logins WHERE expires_at <= $1")
                .bind(now)
                .execute(pool)
                .await?;
            // A name's failed sign-ins are forgotten after a quiet day (`locked_until`
            // is the last failure, or the end of its lock): strangers' names tried
            // once must not pile up.
            sqlx::query("DELETE FROM login_throttle WHERE locked_until < $1")
                .bind(now - LOGIN_THROTTLE_MEMORY_SECS)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    // ------------------------------------------------------- token families

    pub async fn insert_family(&self, f: &TokenFamily) -> Result<()> {
        dispatch!(self, pool, {
            sqlx::query("INSERT INTO token_families (id, grant_id, client_id, user_id, scope, resource, created_at, expires_at, revoked_at, revoked_reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL)")
                .bind(&f.id).bind(&f.grant_id).bind(&f.client_id).bind(&f.user_id).bind(&f.scope).bind(&f.resource).bind(f.created_at).bind(f.expires_at)
                .execute(pool).await?;
            Ok(())
        })
    }

    pub async fn family(&self, id: &str) -> Result<Option<TokenFamily>> {
        dispatch!(self, pool, {
            Ok(
                sqlx::query_as::<_, TokenFamily>("SELECT * FROM token_families WHERE id = $1")
                    .bind(id)
                    .fetch_optional(pool)
                    .await?,
            )
        })
    }

    /// Revokes one family; true if it was live.
    pub async fn revoke_family(&self, id: &str, now: i64, reason: &str) -> Result<bool> {
        dispatch!(self, pool, {
            let r = sqlx::query("UPDATE token_families SET revoked_at = $1, revoked_reason = $2 WHERE id = $3 AND revoked_at IS NULL")
                .bind(now).bind(reason).bind(id).execute(pool).await?;
            Ok(r.rows_affected() == 1)
        })
    }

    // -------------------------------------------------------- refresh tokens

    pub async fn insert_refresh(&self, t: &RefreshToken) -> Result<()> {
        dispatch!(self, pool, {
            sqlx::query("INSERT INTO refresh_tokens (token_hash, family_id, created_at, expires_at, rotated_at, grace_answer, grace_until) VALUES ($1, $2, $3, $4, NULL, NULL, NULL)")
                .bind(&t.token_hash).bind(&t.family_id).bind(t.created_at).bind(t.expires_at)
                .execute(pool).await?;
            Ok(())
        })
    }

    pub async fn refresh(&self, token_hash: &str) -> Result<Option<RefreshToken>> {
        dispatch!(self, pool, {
            Ok(sqlx::query_as::<_, RefreshToken>(
                "SELECT * FROM refresh_tokens WHERE token_hash = $1",
            )
            .bind(token_hash)
            .fetch_optional(pool)
            .await?)
        })
    }

    pub async fn delete_refresh(&self, token_hash: &str) -> Result<()> {
        dispatch!(self, pool, {
            sqlx::query("DELETE FROM refresh_tokens WHERE token_hash = $1")
                .bind(token_hash)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Marks a refresh token rotated and keeps the (encrypted) answer for the grace
    /// period. True for exactly one caller per token.
    pub async fn rotate_refresh(
        &self,
        token_hash: &str,
        now: i64,
        grace_answer: &str,
        grace_until: i64,
    ) -> Result<bool> {
        dispatch!(self, pool, {
            let r = sqlx::query("UPDATE refresh_tokens SET rotated_at = $1, grace_answer = $2, grace_until = $3 WHERE token_hash = $4 AND rotated_at IS NULL")
                .bind(now).bind(grace_answer).bind(grace_until).bind(token_hash).execute(pool).await?;
            Ok(r.rows_affected() == 1)
        })
    }

    // ------------------------------------------------------------ revocations

    /// Records a revocation and announces it (see [`crate::notify`]).
    pub async fn insert_revocation(&self, handle: &str, until: i64, now: i64) -> Result<()> {
        let change = Change::Revoked {
            handle: handle.to_owned(),
            until,
            created_at: now,
        };
        notifying!(self, change, conn, {
            sqlx::query(
                "INSERT INTO revocations (handle, until_at, created_at) VALUES ($1, $2, $3)",
            )
            .bind(handle)
            .bind(until)
            .bind(now)
            .execute(conn)
            .await?;
            Ok(())
        })
    }

    /// Revocations after sequence number `after`: (seq, handle, until, created_at).
    /// On PostgreSQL sequence values are taken before commit, so a row may appear
    /// after rows with higher numbers: callers read again from a point some time back
    /// (see the server's sync), never only from the highest number seen.
    pub async fn revocations_since(&self, after: i64) -> Result<Vec<RevocationRow>> {
        dispatch!(self, pool, {
            let rows = sqlx::query(
                "SELECT seq, handle, until_at, created_at FROM revocations WHERE seq > $1 ORDER BY seq",
            )
            .bind(after)
            .fetch_all(pool)
            .await?;
            Ok(rows
                .iter()
                .map(|r| RevocationRow {
                    seq: r.get(0),
                    handle: r.get(1),
                    until: r.get(2),
                    created_at: r.get(3),
                })
                .collect())
        })
    }

    /// Whether the database answers (for readiness).
    pub async fn ping(&self) -> Result<()> {
        dispatch!(self, pool, {
            sqlx::query("SELECT 1").execute(pool).await?;
            Ok(())
        })
    }

    // --------------------------------------------------------------- sessions

    pub async fn insert_session(
        &self,
        id_hash: &str,
        user_id: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        dispatch!(self, pool, {
            sqlx::query("INSERT INTO sessions (id_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)").bind(id_hash).bind(user_id).bind(now).bind(expires_at).execute(pool).await?;
            Ok(())
        })
    }

    /// The live, enabled user of a session.
    pub async fn session_user(&self, id_hash: &str, now: i64) -> Result<Option<User>> {
        dispatch!(self, pool, {
            Ok(sqlx::query_as::<_, User>("SELECT u.* FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = $1 AND s.expires_at > $2 AND NOT u.disabled")
                .bind(id_hash).bind(now).fetch_optional(pool).await?)
        })
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<()> {
        dispatch!(self, pool, {
            sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
                .bind(id_hash)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    // ---------------------------------------------------------- login throttle

    /// (failures, locked_until) for a username (known or not).
    pub async fn login_throttle(&self, username: &str) -> Result<(i64, i64)> {
        dispatch!(self, pool, {
            let row = sqlx::query(
                "SELECT failures, locked_until FROM login_throttle WHERE username = $1",
            )
            .bind(username)
            .fetch_optional(pool)
            .await?;
            Ok(row.map(|r| (r.get(0), r.get(1))).unwrap_or((0, 0)))
        })
    }

    pub async fn set_login_throttle(
        &self,
        username: &str,
        failures: i64,
        locked_until: i64,
    ) -> Result<()> {
        dispatch!(self, pool, {
            sqlx::query("INSERT INTO login_throttle (username, failures, locked_until) VALUES ($1, $2, $3) ON CONFLICT (username) DO UPDATE SET failures = $2, locked_until = $3")
                .bind(username).bind(failures).bind(locked_until).execute(pool).await?;
            Ok(())
        })
    }

    pub async fn clear_login_throttle(&self, username: &str) -> Result<()> {
        dispatch!(self, pool, {
            sqlx::query("DELETE FROM login_throttle WHERE username = $1")
                .bind(username)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    // ----------------------------------------------------------------- scopes

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

    // ------------------------------------------------------------------ audit

    pub async fn audit(
        &self,
        at: i64,
        event: &str,
        user_id: Option<&str>,
        client_id: Option<&str>,
        detail: &serde_json::Value,
    ) -> Result<()> {
        dispatch!(self, pool, {
            sqlx::query("INSERT INTO audit_events (at, event, user_id, client_id, detail) VALUES ($1, $2, $3, $4, $5)")
                .bind(at).bind(event).bind(user_id).bind(client_id).bind(detail.to_string()).execute(pool).await?;
            Ok(())
        })
    }

    /// Writes many events with one multi-row INSERT per 200 rows:
    /// (at, event, user, client, detail).
    pub async fn audit_batch(&self, events: &[AuditRow]) -> Result<()> {
        for chunk in events.chunks(200) {
            let placeholders: Vec<String> = (0..chunk.len())
                .map(|i| {
                    format!(
                        "(${}, ${}, ${}, ${}, ${})",
                        i * 5 + 1,
                        i * 5 + 2,
                        i * 5 + 3,
                        i * 5 + 4,
                        i * 5 + 5
                    )
                })
                .collect();
            // Only generated placeholders are interpolated; every value is bound.
            let sql = format!(
                "INSERT INTO audit_events (at, event, user_id, client_id, detail) VALUES {}",
                placeholders.join(", ")
            );
            dispatch!(self, pool, {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
                for (at, event, user, client, detail) in chunk {
                    q = q
                        .bind(at)
                        .bind(event)
                        .bind(user)
                        .bind(client)
                        .bind(detail.to_string());
                }
                q.execute(pool).await?;
            });
        }
        Ok(())
    }

    pub async fn audit_events(&self, limit: i64) -> Result<Vec<AuditEvent>> {
        dispatch!(self, pool, {
            Ok(sqlx::query_as::<_, AuditEvent>(
                "SELECT * FROM audit_events ORDER BY seq DESC LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?)
        })
    }
}

/// The data directory holds keys and hashes: keep it private to the service user.
fn restrict_permissions(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
}

mod hardening;
pub use hardening::Reservation;
