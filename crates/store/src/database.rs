//! The store: one code path over SQLite (the embedded default) and PostgreSQL
//! (several instances sharing one database). Each method's body is compiled once per
//! backend by [`dispatch!`]; the SQL is the same, with `$N` placeholders both accept.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use async_trait::async_trait;
use mcpgate_domain::store::{ChangeListener, Store, StoreError, StoreResult};

use crate::notify::Announce;
use crate::timing::timed;

/// What a database step can fail with, inside this crate: sqlx's errors and sealing's,
/// folded into the domain's one [`StoreError`] at the edge of each step
/// ([`crate::timing::timed`]). sqlx types never leave this crate.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A sealed secret cannot be opened with the configured key-encryption keys.
    #[error(transparent)]
    Sealed(#[from] mcpgate_core::sealed::SealError),
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => Error::NotFound,
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                Error::Conflict(d.message().to_owned())
            }
            _ => Error::Backend(Box::new(e)),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Error::Backend(Box::new(e))
    }
}

impl From<Error> for StoreError {
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound => Self::NotFound,
            Error::Conflict(m) => Self::Conflict(m),
            Error::Backend(e) => Self::Backend(e),
            Error::Sealed(e) => Self::Backend(Box::new(e)),
        }
    }
}

/// A step that calls another step (through its trait) gets its error back.
impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound,
            StoreError::Conflict(m) => Self::Conflict(m),
            StoreError::Backend(e) => Self::Backend(e),
        }
    }
}

pub(crate) type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, Clone)]
pub(crate) enum Pool {
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
/// of the change exactly when it commits; on SQLite by a datagram after it. This
/// process forgets what the change makes stale ([`Database::committed`]) as the step
/// ends, however it ends: a step cancelled while committing may have committed.
macro_rules! notifying {
    ($self:ident, $change:expr, $conn:ident, $body:block) => {{
        let _forget = $crate::database::Committed($self, $change);
        match &$self.pool {
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let out = {
                    let $conn = &mut *tx;
                    $body
                };
                crate::notify::pg_notify(&mut *tx, $change).await?;
                tx.commit().await?;
                out
            }
            Pool::Sqlite(pool) => {
                let out = {
                    let $conn = pool;
                    $body
                };
                $self.announce_local($change);
                out
            }
        }
    }};
}

/// Calls [`Database::committed`] when dropped: at the end of a `notifying!` step,
/// whether it committed, failed or was cancelled (forgetting costs only a read).
pub(crate) struct Committed<'a>(pub &'a Database, pub mcpgate_domain::store::Change);

impl Drop for Committed<'_> {
    fn drop(&mut self) {
        self.0.committed(self.1);
    }
}
mod assertions;
mod audit;
mod catalog;
pub(crate) mod clients;
mod connections;
mod diagnostics;
mod grants;
mod groups;
mod identities;
mod keys;
mod reports;
mod sealing;
mod sessions;
mod throttles;
mod tokens;
mod users;

/// The database mcpgate keeps its records in, SQLite or PostgreSQL: the one
/// implementation of [`Store`]. A handle; cheap to clone.
#[derive(Debug, Clone)]
pub struct Database {
    pub(crate) pool: Pool,
    pub(crate) announce: Announce,
    /// Seals signing keys and identity-provider secrets at rest (see
    /// [`mcpgate_core::sealed`]); without one they are written in clear.
    sealer: Option<std::sync::Arc<mcpgate_core::sealed::Sealer>>,
    /// The scope catalogue, clients and people, remembered between changes (see
    /// [`crate::remembered`]).
    pub(crate) remembered: std::sync::Arc<crate::remembered::Remembered>,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Page cache of the SQLite connection, in KiB (SQLite's default).
const SQLITE_CACHE_KIB: u32 = 2048;

/// How long failed sign-ins of a name are remembered after the last one or the end of
/// its lock.
pub const LOGIN_THROTTLE_MEMORY_SECS: i64 = 86_400;

impl Database {
    /// Opens (creating if needed) `mcpgate.db` in `dir` and applies migrations.
    pub async fn open_dir(dir: &Path) -> StoreResult<Self> {
        Ok(Self::open_dir_(dir).await?)
    }

    async fn open_dir_(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::Backend(Box::new(e)))?;
        restrict_permissions(dir);
        let mut store =
            Self::open_(&format!("sqlite://{}", dir.join("mcpgate.db").display())).await?;
        store.announce = Announce::Socket(dir.join(crate::notify::LOCAL_SOCKET));
        Ok(store)
    }

    /// Opens a database URL — `sqlite://path` or `postgres://…` — and applies the
    /// backend's migrations.
    pub async fn open(url: &str) -> StoreResult<Self> {
        Ok(Self::open_(url).await?)
    }

    async fn open_(url: &str) -> Result<Self> {
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
                sealer: None,
                remembered: Default::default(),
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
            // The one connection's page cache: SQLite's default 2 MB (the OS caches
            // the file too).
            .pragma("cache_size", format!("-{SQLITE_CACHE_KIB}"));
        // One connection: SQLite lets one writer in at a time, and a second pooled
        // connection that finds the lock taken waits in SQLite's busy handler, which
        // sleeps in steps of milliseconds. Under concurrent token requests that sleep
        // was most of a code exchange's time (546/s with eight connections, 2,232/s
        // with one, on the benchmark's 2-core machine); a queue for one connection
        // waits without sleeping. Other processes (the command line) still meet the
        // lock through busy_timeout, rarely.
        //
        // No test before acquire: the pool already pings a connection as it returns
        // (sqlx does so on every release), and the one connection is in this process,
        // so a second ping as it leaves the pool finds nothing new. Each ping is a
        // round trip to the connection's worker thread, two thread switches: with it,
        // every query cost three round trips instead of two.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(opts)
            .await?;
        SQLITE_MIGRATIONS.run(&pool).await?;
        Ok(Self {
            pool: Pool::Sqlite(pool),
            announce: Announce::Nobody,
            sealer: None,
            remembered: Default::default(),
        })
    }

    /// What this process does once a change of its own committed: a change of the
    /// configuration makes what the store remembers stale (the scope catalogue,
    /// clients, people).
    pub(crate) fn committed(&self, change: mcpgate_domain::store::Change) {
        if change == mcpgate_domain::store::Change::Config {
            self.remembered.forget();
        }
    }

    /// Remembers what it remembers for `age` instead of [`crate::REMEMBERED_AT_MOST`]:
    /// for tests that show a change is followed because it was heard, not because
    /// time passed.
    #[doc(hidden)]
    pub fn remembering_for(mut self, age: std::time::Duration) -> Self {
        self.remembered = std::sync::Arc::new(crate::remembered::Remembered::new(age));
        self
    }

    /// (open, idle) connections of the pool, for the `mcpgate_db_pool_connections` gauge.
    pub fn pool_stats(&self) -> (u32, u32) {
        dispatch!(self, pool, { (pool.size(), pool.num_idle() as u32) })
    }

    /// The backend's name, for messages.
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
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

#[async_trait]
impl Store for Database {
    async fn ping(&self) -> StoreResult<()> {
        timed("ping", async move {
            dispatch!(self, pool, {
                sqlx::query("SELECT 1").execute(pool).await?;
                Ok(())
            })
        })
        .await
    }

    // SQLite: copies the write-ahead log into the database and truncates it. Under
    // steady load some reader always holds a snapshot, so SQLite's own (passive)
    // checkpoints never reach the end of the log, and it is never restarted: it grows
    // without bound ("checkpoint starvation", sqlite.org/wal.html §6). A TRUNCATE
    // checkpoint waits (busy_timeout) for the readers of the moment, which are short.
    // PostgreSQL: nothing to do.
    async fn checkpoint(&self) -> StoreResult<()> {
        timed("checkpoint", async move {
            if let Pool::Sqlite(pool) = &self.pool {
                sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                    .execute(pool)
                    .await?;
            }
            Ok(())
        })
        .await
    }

    async fn listen(&self) -> StoreResult<Option<Box<dyn ChangeListener>>> {
        timed("listen", async move {
            Ok(self
                .open_listener()
                .await?
                .map(|l| Box::new(l) as Box<dyn ChangeListener>))
        })
        .await
    }
}
