//! Change notifications: how every process that holds state in memory (the signing
//! keys, the revocation list) learns of a change the moment it commits.
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
//! Notifications are an accelerator: each process still polls the store on a timer, so
//! a notification lost (connection down, process restarting) delays a change by at
//! most one poll.

use std::path::{Path, PathBuf};

use sqlx::postgres::{PgListener, PgPool};

use crate::store::{Store, StoreError};

/// The PostgreSQL channel every change is announced on.
pub const CHANNEL: &str = "mcpgate_changes";

/// `application_name` prefix of the listening connection (followed by the process id),
/// so an operator can find it in `pg_stat_activity`.
pub const LISTENER_APP_NAME: &str = "mcpgate-listener";

/// The socket a SQLite server listens on, in its data directory.
pub const LOCAL_SOCKET: &str = "notify.sock";

/// PostgreSQL refuses payloads of 8000 bytes or more; ours are far smaller.
const MAX_PAYLOAD: usize = 1000;

/// What changed. Revocations carry what the receiver needs to apply them without
/// asking the database; the other kinds say what to read again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A revocation handle (token-family id, grant id, access-token jti) was recorded.
    Revoked {
        handle: String,
        until: i64,
        created_at: i64,
    },
    /// Signing keys were added or retired.
    Keys,
    /// Users, clients, the allowed-client list or scopes changed.
    Config,
}

impl Change {
    /// `r <created_at> <until> <handle>`, `k`, `c`.
    pub fn encode(&self) -> String {
        match self {
            Change::Revoked {
                handle,
                until,
                created_at,
            } => format!("r {created_at} {until} {handle}"),
            Change::Keys => "k".into(),
            Change::Config => "c".into(),
        }
    }

    /// The inverse of [`Self::encode`]; `None` for anything else (a newer version's
    /// kind, a stray message).
    pub fn decode(s: &str) -> Option<Self> {
        if s.len() > MAX_PAYLOAD {
            return None;
        }
        let mut parts = s.splitn(4, ' ');
        match parts.next()? {
            "r" => {
                let created_at = parts.next()?.parse().ok()?;
                let until = parts.next()?.parse().ok()?;
                let handle = parts.next()?;
                (!handle.is_empty()).then(|| Change::Revoked {
                    handle: handle.to_owned(),
                    until,
                    created_at,
                })
            }
            "k" => Some(Change::Keys),
            "c" => Some(Change::Config),
            _ => None,
        }
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
    change: &Change,
) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(change.encode())
        .execute(conn)
        .await?;
    Ok(())
}

/// Tells a local server (if one runs) to read the database again. Best effort and
/// non-blocking: a datagram to a Unix socket is queued by the kernel at once.
pub(crate) fn local_notify(socket: &Path, change: &Change) {
    #[cfg(unix)]
    {
        if let Ok(s) = std::os::unix::net::UnixDatagram::unbound() {
            let _ = s.set_nonblocking(true);
            let _ = s.send_to(change.encode().as_bytes(), socket);
        }
    }
    #[cfg(not(unix))]
    let _ = (socket, change);
}

/// A subscription to changes made by other processes.
pub enum ChangeListener {
    Postgres(PgListener),
    #[cfg(unix)]
    Local(tokio::net::UnixDatagram),
}

/// Why [`ChangeListener::recv`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// The connection is gone; notifications may have been missed since.
    #[error("notification connection lost: {0}")]
    Lost(String),
}

impl Store {
    /// Opens a dedicated listening connection (PostgreSQL) or binds the data
    /// directory's socket (SQLite). `None` when this database has no way to be told
    /// (an in-memory database): polling alone then keeps state current.
    pub async fn listen(&self) -> Result<Option<ChangeListener>, StoreError> {
        match &self.announce {
            Announce::Nobody => Ok(None),
            Announce::Postgres { listen_pool } => {
                let mut l = PgListener::connect_with(listen_pool).await?;
                // Reconnecting is ours to do (and to report), not the driver's.
                l.eager_reconnect(false);
                l.listen(CHANNEL).await?;
                Ok(Some(ChangeListener::Postgres(l)))
            }
            #[cfg(unix)]
            Announce::Socket(path) => {
                // A socket file left by a server that died would refuse the bind.
                let _ = std::fs::remove_file(path);
                let sock = tokio::net::UnixDatagram::bind(path)
                    .map_err(|e| StoreError::Backend(Box::new(e)))?;
                Ok(Some(ChangeListener::Local(sock)))
            }
            #[cfg(not(unix))]
            Announce::Socket(_) => Ok(None),
        }
    }

    pub(crate) fn announce_local(&self, change: &Change) {
        if let Announce::Socket(path) = &self.announce {
            local_notify(path, change);
        }
    }
}

impl ChangeListener {
    /// The next change. `Ok(None)`: something arrived that this version does not
    /// know; read everything again to be safe.
    pub async fn recv(&mut self) -> Result<Option<Change>, ListenError> {
        match self {
            ChangeListener::Postgres(l) => match l.try_recv().await {
                Ok(Some(n)) => Ok(Change::decode(n.payload())),
                Ok(None) => Err(ListenError::Lost("connection closed".into())),
                Err(e) => Err(ListenError::Lost(e.to_string())),
            },
            #[cfg(unix)]
            ChangeListener::Local(sock) => {
                let mut buf = [0u8; MAX_PAYLOAD];
                match sock.recv(&mut buf).await {
                    // Local datagrams are hints only: the receiver reads the store.
                    Ok(_) => Ok(None),
                    Err(e) => Err(ListenError::Lost(e.to_string())),
                }
            }
        }
    }

    /// Whether a change can be applied from the message alone (PostgreSQL payloads,
    /// sent by a database session) or must be read from the store (local datagrams).
    pub fn trusts_payloads(&self) -> bool {
        matches!(self, ChangeListener::Postgres(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_round_trip_and_strangers_are_refused() {
        for c in [
            Change::Revoked {
                handle: "fam 1".into(),
                until: 99,
                created_at: 7,
            },
            Change::Keys,
            Change::Config,
        ] {
            assert_eq!(Change::decode(&c.encode()), Some(c));
        }
        for bad in ["", "x", "r 1 2", "r 1 2 ", "r a 2 h", &"r 1 2 ".repeat(400)] {
            assert_eq!(Change::decode(bad), None, "{bad:?}");
        }
    }
}
