//! Integration tests of the whole `mcpgate` app over real HTTP on loopback.
//! One test binary: one module per endpoint or concern (mirroring the server's
//! `routes/`), `support` spawns apps.

mod account_pages;
mod admin_pages;
mod authorize;
mod consent;
mod doctor;
mod flow;
mod groups;
mod guard;
mod introspection;
mod keys_at_rest;
mod limits;
mod login;
mod mcp_transport;
mod metadata;
mod metadata_document;
mod observability;
mod plain_calls;
mod propagation;
mod rate_limits;
mod register;
mod rmcp_oauth;
mod secrets;
mod seeding;
mod support;
mod token;
