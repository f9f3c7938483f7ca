//! Integration tests of the whole `mcpgate` app over real HTTP on loopback.
//! One test binary: each module is a concern, `support` spawns apps.

mod admin_pages;
mod direct;
mod guard;
mod hardening;
mod introspection;
mod mcp_transport;
mod metadata_document;
mod oauth;
mod observability;
mod propagation;
mod rmcp_oauth;
mod support;
