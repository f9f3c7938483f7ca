//! What the rules need from storage, one trait per concern, and [`Store`], all of them.
//! Each method is a whole step: the ones that change several records at once (a code
//! redeemed into its token family, a refresh token rotated into its successor, a grant
//! revoked with its families) are atomic in one transaction, so no failure leaves half
//! of one behind. `mcpgate-store` implements every trait on SQLite and PostgreSQL;
//! tests run the rules on a real SQLite store.
//!
//! The HTTP edge, the pages and the command line reach data through these traits
//! only: the concrete store is chosen once, where the binary is assembled.
//!
//! - [`Users`], [`Sessions`], [`Throttles`]: people, their browser sessions, and the
//!   limits on sign-in attempts and other per-source work.
//! - [`Clients`], [`Catalog`]: registered clients; the scopes and redirect allow-list
//!   the operator offers.
//! - [`Grants`], [`Tokens`], [`Keys`]: consents and pending requests; codes, token
//!   families, refresh tokens and revocations; signing keys.
//! - [`Groups`]: groups of people and the scopes restricted to them.
//! - [`Identities`]: upstream identity providers and the accounts linked through them.
//! - [`AuditLog`], [`Reports`]: the audit record, and the read models of the pages.
//! - [`Assertions`]: JWT ids already presented, and the issuers trusted for ID-JAGs.
//! - [`Diagnostics`]: the steps of clients' connections, for the connection doctor.
//! - [`Connections`]: people's own tokens for upstreams (connected accounts).

mod assertions;
mod audit;
mod catalog;
mod clients;
mod connections;
mod diagnostics;
mod grants;
mod groups;
mod identities;
mod keys;
mod reports;
mod sessions;
mod throttles;
mod tokens;
mod users;

pub use assertions::Assertions;
pub use audit::AuditLog;
pub use catalog::Catalog;
pub use clients::Clients;
pub use connections::Connections;
pub use diagnostics::{Diagnostics, STEPS_IN_ALL, STEPS_KEPT_SECS, STEPS_PER_CLIENT};
pub use grants::Grants;
pub use groups::Groups;
pub use identities::Identities;
pub use keys::Keys;
pub use reports::Reports;
pub use sessions::Sessions;
pub use throttles::Throttles;
pub use tokens::Tokens;
pub use users::Users;

use async_trait::async_trait;

/// Storage failures, as the rules see them. The one error type of storage: the
/// backend's own errors are folded into [`StoreError::Backend`] where they happen.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique key is taken (a user name, a client id).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("storage error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The whole store: every concern's steps, and what keeps the store itself healthy.
#[async_trait]
pub trait Store:
    Users
    + Sessions
    + Throttles
    + Clients
    + Catalog
    + Grants
    + Groups
    + Tokens
    + Keys
    + Identities
    + AuditLog
    + Reports
    + Diagnostics
    + Assertions
    + Connections
    + Send
    + Sync
{
    /// Answers when the database does (`/readyz`).
    async fn ping(&self) -> StoreResult<()>;
    /// Bounds what the database keeps besides its records (SQLite: its write-ahead
    /// log); nothing to do for a backend that needs nothing.
    async fn checkpoint(&self) -> StoreResult<()>;
    /// Subscribes to hints of changes other processes commit (instances, the command
    /// line); `None` when this store has no way to be told, and polling alone keeps
    /// this process current.
    async fn listen(&self) -> StoreResult<Option<Box<dyn ChangeListener>>>;
}

/// What changed elsewhere, as a hint of what to read again. No variant carries data:
/// anyone who can reach the channel can send one, so nothing a hint says is applied
/// as such; the store is read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Revocations were recorded (a token family, a grant, an access-token jti, a key):
    /// read the revocation table again.
    Revocations,
    /// Signing keys were added or retired.
    Keys,
    /// Users (their state, their password), clients, the allowed-redirect list, the
    /// scopes, what a scope includes or the groups it is restricted to changed: what
    /// the store remembers of them is read again.
    Config,
}

/// Why a [`ChangeListener`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// The connection is gone; hints may have been missed since.
    #[error("notification connection lost: {0}")]
    Lost(String),
}

/// A subscription to hints of changes made by other processes.
#[async_trait]
pub trait ChangeListener: Send {
    /// The next hint. `Ok(None)`: something arrived that says nothing this version
    /// knows (a local datagram, a stranger's payload); read everything again.
    async fn recv(&mut self) -> Result<Option<Change>, ListenError>;
}

/// Every storage trait, for `use mcpgate_domain::store::prelude::*`: a method of the
/// store is called through its trait.
pub mod prelude {
    pub use super::{
        Assertions, AuditLog, Catalog, Clients, Connections, Diagnostics, Grants, Groups,
        Identities, Keys, Reports, Sessions, Store, StoreError, StoreResult, Throttles, Tokens,
        Users,
    };
}
