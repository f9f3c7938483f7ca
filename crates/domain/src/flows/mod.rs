//! The grants and administrative acts, over the [`crate::Store`]. Each function is
//! one rule set; the HTTP handlers, the admin pages and the command line only parse
//! input, call one of these and render the outcome.

pub mod accounts;
pub mod activity;
pub mod admin;
pub mod admission;
pub mod authorization_code;
pub mod authorize;
pub mod client_auth;
pub mod client_credentials;
pub mod connections;
pub mod doctor;
pub mod entitlements;
pub mod groups;
pub mod hierarchy;
pub mod id_jag;
pub mod identities;
pub mod introspect;
pub mod keys;
pub mod keysets;
pub mod metadata_document;
pub mod refresh;
pub mod register;
pub mod revoke;
pub mod sign_in;
pub mod token_exchange;
pub mod tokens;
pub mod upstream_oauth;

#[cfg(test)]
mod proptests;
