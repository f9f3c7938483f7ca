//! The `mcpgate` application: the assembly of the authorization server, the guard, the
//! calculator and the gateway (the one place that picks the store), and the commands
//! that adapt the command line to the domain's flows. The binary (`main.rs`) only
//! parses arguments and dispatches; tests build the same app in-process on
//! `127.0.0.1:0`.
//!
//! - [`app`]: assembly, from [`app::AppConfig`] to a router; [`gateway`]: the
//!   upstreams' part of it.
//! - [`commands`]: one module per command (`serve`, `mcp`, `user`, `client`, …).
//! - [`config`]: flags, environment and the configuration file; [`secrets`]: keys and
//!   secrets read from files, never from arguments.
//! - [`observe`]: metrics and traces, off unless configured.

pub mod app;
pub mod commands;
pub mod config;
pub mod gateway;
pub mod observe;
pub mod secrets;
