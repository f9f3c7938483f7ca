//! The authorization server's rules at the domain level: the flows of
//! `mcpgate-domain` called directly (no HTTP) over the real store (`mcpgate-store`, a
//! dev-dependency: the rules themselves depend on no storage crate), a real SQLite
//! database in a temporary directory. The HTTP suite keeps what only HTTP can show
//! (status codes, headers, forms, redirects).
//!
//! - [`grants`]: the code's bindings, single use, replay, rotation and reuse, scope
//!   narrowing, revocation; and fault injection: the database itself refuses one
//!   statement of a store step (a trigger that aborts the write to one table), once
//!   per table the step writes, and nothing half-done remains.
//! - [`authorize`]: the authorization request's checks, consent and denial.
//! - [`acts`]: ending a person's access, and the rules every way of creating a
//!   client shares.
//! - [`sign_in`]: password sign-in (throttle, lock, disabled, audit) and sessions.
//! - [`clients`]: client authentication, the introspection right, the bound on a
//!   person's own clients under concurrent requests.
//! - [`admission`]: who enters through an identity provider, over the store.
//! - [`doctor`]: the connection doctor's steps, noted by the flows and read back.
//! - [`durations`]: a consent that ends, and nothing of the grant outliving it.
//! - [`machines`]: client_credentials (secret or signed assertion) and ID-JAGs, with
//!   every negative case.
//! - [`groups`]: who may hold which scope, everywhere a scope reaches a person, and
//!   losing one at once (a removal racing a refresh included).
//! - [`introspection`]: remembered tokens refused once expired, their key retired or
//!   their grant revoked.

mod acts;
mod admission;
mod authorize;
mod clients;
mod connections;
mod doctor;
mod durations;
mod grants;
mod groups;
mod hierarchy;
mod introspection;
mod machines;
mod sign_in;
mod world;
