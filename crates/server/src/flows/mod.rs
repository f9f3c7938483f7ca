//! The grants, over the store. Each function is one OAuth rule set; the HTTP handlers
//! only parse input and render output.

pub mod accounts;
pub mod admin;
pub mod authorization_code;
pub mod authorize;
pub mod introspect;
pub mod metadata_document;
pub mod refresh;
pub mod register;
pub mod revoke;
pub mod tokens;

#[cfg(test)]
mod proptests;
