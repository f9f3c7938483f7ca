//! Change notifications: how every process that holds state in memory (the signing
//! keys, the revocation list, the configuration the store remembers:
//! [`crate::remembered`]) learns of a change the moment it commits.
//!
//! - **PostgreSQL** (several instances): the store method that makes the change also
//!   runs `pg_notify` in the same transaction, so the notification is delivered on
//!   commit and never for a change that rolled back. Each instance keeps one dedicated
//!   connection `LISTEN`ing ([`ChangeListener`]), named `mcpgate-listener-<pid>` in
//!   `pg_stat_activity`.
//! - **SQLite** (one server, and the CLI beside it): a Unix datagram socket,
//!   `notify.sock` in the data directory, which the server binds. After committing, a
//!   writer sends one datagram to it; nothing listening (no server running) is not an
//!   error. A datagram carries no authority: the server only reads the database again,
//!   so a stray one costs a query, nothing more. The data directory is private to the
//!   service user (mode 0700), and so is the socket. Watching the database file was
//!   the other choice; it was not taken because every write (the server's own audit
//!   rows, sessions) touches the WAL, so it would wake the server all the time and say
//!   nothing about what changed.
//!
//! A notification is a hint, never an order: whatever it carries, the receiver only
//! reads the database again (the revocations since its cursor, or the keys). Any
//! PostgreSQL role that can connect may `NOTIFY` any channel (PostgreSQL, "NOTIFY":
//! there is no privilege on channels), so a payload that said *what* was revoked would
//! let such a role revoke every token (`r 0 99999999999 kid:<kid>`, for millennia)
//! without writing a row. As a hint, a forged one costs a re-read and nothing more;
//! what is revoked is only ever what the revocation table holds.
//!
//! Notifications are an accelerator: each process still polls the store on a timer, so
//! a notification lost (connection down, process restarting) delays a change by at
//! most one poll.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sqlx::postgres::{PgListener, PgPool};

pub use mcpgate_domain::store::{Change, ChangeListener, ListenError};

use crate::database::{Database, Error as StoreError};
use crate::remembered::Remembered;

/// The PostgreSQL channel every change is announced on.
pub const CHANNEL: &str = "mcpgate_changes";

/// `application_name` prefix of the listening connection (followed by the process id),
/// so an operator can find it in `pg_stat_activity`.
pub const LISTENER_APP_NAME: &str = "mcpgate-listener";

/// The socket a SQLite server listens on, in its data directory.
pub const LOCAL_SOCKET: &str = "notify.sock";

/// PostgreSQL refuses payloads of 8000 bytes or more; ours are far smaller.
const MAX_PAYLOAD: usize = 1000;

/// How a change is written on the wire: `r`, `k`, `c`.
pub fn encode(change: Change) -> &'static str {
    match change {
        Change::Revocations => "r",
        Change::Keys => "k",
        Change::Config => "c",
    }
}

/// The inverse of [`encode`]; `None` for anything else (a newer version's kind, a
/// stray message). Only the first word counts: earlier versions announced a
/// revocation as `r <created_at> <until> <handle>`, which is read as the same hint,
/// its handle ignored.
pub fn decode(s: &str) -> Option<Change> {
    if s.len() > MAX_PAYLOAD {
        return None;
    }
    match s.split(' ').next()? {
        "r" => Some(Change::Revocations),
        "k" => Some(Change::Keys),
        "c" => Some(Change::Config),
        _ => None,
    }
}

/// How this store announces changes (besides PostgreSQL's in-transaction NOTIFY).
#[derive(Debug, Clone)]
pub(crate) enum Announce {
    /// Nothing to tell (an in-memory or bare-URL SQLite database).
    Nobody,
    /// A datagram to the server's socket after each commit.
    Socket(PathBuf),
    /// `pg_notify` inside the changing transaction; the URL opens the listener.
    Postgres { listen_pool: PgPool },
}

/// Sends `NOTIFY` on the transaction's connection: delivered to listeners on commit.
pub(crate) async fn pg_notify(
    conn: &mut sqlx::PgConnection,
    change: Change,
) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(encode(change))
        .execute(conn)
        .await?;
    Ok(())
}

/// Tells a local server (if one runs) to read the database again. Best effort and
/// non-blocking: a datagram to a Unix socket is queued by the kernel at once.
pub(crate) fn local_notify(socket: &Path, change: Change) {
    #[cfg(unix)]
    {
        if let Ok(s) = std::os::unix::net::UnixDatagram::unbound() {
            let _ = s.set_nonblocking(true);
            let _ = s.send_to(encode(change).as_bytes(), socket);
        }
    }
    #[cfg(not(unix))]
    let _ = (socket, change);
}

/// A subscription to changes made by other processes.
pub(crate) struct Listener {
    from: Source,
    /// Forgotten on every hint that may be of a configuration change (see
    /// [`crate::remembered`]), before the hint is passed on.
    remembered: Arc<Remembered>,
}

enum Source {
    Postgres(PgListener),
    #[cfg(unix)]
    Local(tokio::net::UnixDatagram),
}

impl Database {
    /// Opens a dedicated listening connection (PostgreSQL) or binds the data
    /// directory's socket (SQLite). `None` when this database has no way to be told
    /// (an in-memory database): polling alone then keeps state current.
    pub(crate) async fn open_listener(&self) -> crate::database::Result<Option<Listener>> {
        match &self.announce {
            Announce::Nobody => Ok(None),
            Announce::Postgres { listen_pool } => {
                let mut l = PgListener::connect_with(listen_pool).await?;
                // Reconnecting is ours to do (and to report), not the driver's.
                l.eager_reconnect(false);
                l.listen(CHANNEL).await?;
                Ok(Some(self.listener(Source::Postgres(l))))
            }
            #[cfg(unix)]
            Announce::Socket(path) => {
                // A socket file left by a server that died would refuse the bind.
                let _ = std::fs::remove_file(path);
                let sock = tokio::net::UnixDatagram::bind(path)
                    .map_err(|e| StoreError::Backend(Box::new(e)))?;
                Ok(Some(self.listener(Source::Local(sock))))
            }
            #[cfg(not(unix))]
            Announce::Socket(_) => Ok(None),
        }
    }

    fn listener(&self, from: Source) -> Listener {
        // Whatever was changed while nobody listened is read again.
        self.remembered.forget();
        Listener {
            from,
            remembered: self.remembered.clone(),
        }
    }

    /// Announces `change`, committed outside a `notifying!` step, and forgets here
    /// what it makes stale.
    pub(crate) async fn announce(&self, change: Change) -> Result<(), StoreError> {
        self.committed(change);
        match &self.pool {
            crate::database::Pool::Postgres(p) => pg_notify(&mut *p.acquire().await?, change).await,
            crate::database::Pool::Sqlite(_) => {
                self.announce_local(change);
                Ok(())
            }
        }
    }

    pub(crate) fn announce_local(&self, change: Change) {
        if let Announce::Socket(path) = &self.announce {
            local_notify(path, change);
        }
    }
}

#[async_trait::async_trait]
impl ChangeListener for Listener {
    async fn recv(&mut self) -> Result<Option<Change>, ListenError> {
        let heard = self.hear().await;
        // A change of configuration, a hint this version cannot read, or a lost
        // connection (hints may have been missed): the catalogue may have changed.
        if !matches!(heard, Ok(Some(Change::Revocations | Change::Keys))) {
            self.remembered.forget();
        }
        heard
    }
}

impl Listener {
    async fn hear(&mut self) -> Result<Option<Change>, ListenError> {
        match &mut self.from {
            Source::Postgres(l) => match l.try_recv().await {
                Ok(Some(n)) => Ok(decode(n.payload())),
                Ok(None) => Err(ListenError::Lost("connection closed".into())),
                Err(e) => Err(ListenError::Lost(e.to_string())),
            },
            #[cfg(unix)]
            Source::Local(sock) => {
                let mut buf = [0u8; MAX_PAYLOAD];
                match sock.recv(&mut buf).await {
                    Ok(_) => Ok(None),
                    Err(e) => Err(ListenError::Lost(e.to_string())),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_round_trip_and_strangers_are_refused() {
        for c in [Change::Revocations, Change::Keys, Change::Config] {
            assert_eq!(decode(encode(c)), Some(c));
        }
        for bad in ["", "x", "revoked", " r", &"r ".repeat(600)] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }

    /// What an earlier version sent, or a forger: the handle and time are not read.
    #[test]
    fn a_payload_naming_a_handle_is_only_a_hint_to_read_revocations() {
        for p in ["r 1 2 fam", "r 0 99999999999 kid:k1", "r"] {
            assert_eq!(decode(p), Some(Change::Revocations), "{p:?}");
        }
    }
}
