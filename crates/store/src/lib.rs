//! mcpgate-store: where the authorization server keeps its state.
//!
//! [`Database`] is the one implementation of the domain's
//! [`Store`](mcpgate_domain::store::Store): SQLite (WAL) by default, under the data
//! directory, or PostgreSQL for several instances. Queries use `$N` placeholders,
//! which both accept, so one query text serves both backends. Each concern's trait is
//! implemented directly in its module of [`database`] (users, clients, grants, tokens,
//! keys, sessions, throttles, identities, catalog, audit, reports), each step timed
//! and traced ([`timing`]).
//!
//! Tokens, codes, sessions and client secrets arrive here already hashed. What the
//! store does hold in a usable form, signing keys and identity providers' client
//! secrets, is sealed with a key-encryption key kept outside the database when one is
//! configured ([`Database::seal_at_rest`]).
//!
//! Concurrency rules live in the SQL: a code is redeemed by a conditional `UPDATE`
//! (`used_at IS NULL`), a refresh token is rotated the same way, so two racing
//! requests cannot both win, whatever the number of processes.

pub mod notify;
mod remembered;
mod rows;
mod timing;
#[macro_use]
pub mod database;

/// The records, as the rules define them, and this crate's own rows.
pub(crate) mod model {
    pub(crate) use crate::rows::*;
    pub use mcpgate_domain::model::*;
}

pub use database::{Database, LOGIN_THROTTLE_MEMORY_SECS};
pub use notify::{Change, ChangeListener};
pub use remembered::MAX_AGE as REMEMBERED_AT_MOST;
