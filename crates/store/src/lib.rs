//! mcpgate-store: where the authorization server keeps its state.
//!
//! SQLite (WAL) by default, under the data directory. Queries use `$N` placeholders,
//! which SQLite and PostgreSQL both accept, so a second backend reuses them.
//! Tokens, codes, sessions and client secrets arrive here already hashed; nothing in
//! this crate ever sees a usable credential.
//!
//! Concurrency rules live in the SQL: a code is redeemed by a conditional `UPDATE`
//! (`used_at IS NULL`), a refresh token is rotated the same way, so two racing
//! requests cannot both win, whatever the number of processes.

mod model;
pub mod notify;
mod step;
#[macro_use]
mod store;
mod admin;

pub use admin::{Activity, AuditFilter};
pub use model::*;
pub use notify::{Change, ChangeListener};
pub use step::step;
pub use store::{Reservation, Store, StoreError};
