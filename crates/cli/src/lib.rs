//! The `mcpgate` application: assembles the authorization server, the guard and the
//! calculator into one router, and serves it. The binary (`main.rs`) only parses
//! arguments; tests build the same app in-process on `127.0.0.1:0`.

pub mod app;
pub mod config;
pub mod gateway;
pub mod observe;
pub mod secrets;
