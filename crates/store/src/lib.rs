//! mcpgate-store: where the authorization server keeps its state.
//!
//! SQLite (WAL) by default, under the data directory. Queries use `$N` placeholders,
//! which SQLite and PostgreSQL both accept, so a second backend reuses them. It
//! implements [`mcpgate_domain::Store`], the steps the rules need ([`rules`]), and
//! serves the pages' and the command line's read models beside it.
//!
//! Tokens, codes, sessions and client secrets arrive here already hashed. What the
//! store does hold in a usable form, signing keys and identity providers' client
//! secrets, is sealed with a key-encryption key kept outside the database when one is
//! configured ([`sealing`](crate::Store::seal_at_rest)).
//!
//! Concurrency rules live in the SQL: a code is redeemed by a conditional `UPDATE`
//! (`used_at IS NULL`), a refresh token is rotated the same way, so two racing
//! requests cannot both win, whatever the number of processes.

pub mod notify;
mod rows;
mod rules;
mod step;
#[macro_use]
mod store;
mod admin;

/// The records, as the rules define them, and this crate's own rows.
pub(crate) mod model {
    pub use crate::rows::*;
    pub use mcpgate_domain::model::*;
}

pub use admin::{Activity, AuditFilter};
pub use model::*;
pub use notify::{Change, ChangeListener};
pub use store::{Reservation, Store, StoreError};
