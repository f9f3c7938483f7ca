//! The command line: each command parses its arguments, calls the domain flow the web
//! calls (so both validate alike and both are audited, as the operator), and prints
//! the outcome. Listings are view structs: `--json` is their serialization, the text
//! their `Display`.
//!
//! The administration commands open the same data directory (or database) as `serve`
//! (SQLite in WAL mode allows it while the server runs); what they change reaches
//! running servers at once through the store's change notifications, and within the
//! servers' sync period (2 s) if a notification is missed.

pub mod allowed;
pub mod audit;
pub mod clients;
pub mod doctor;
pub mod grants;
pub mod groups;
pub mod idp;
pub mod keys;
pub mod resource_server;
pub mod scopes;
pub mod serve;
pub mod users;
pub mod views;

use std::sync::Arc;

use mcpgate_core::{ErrorCode, OAuthError};
use mcpgate_domain::Authority;
use mcpgate_domain::store::Store;

use crate::config::{FileConfig, Storage};

/// What the administration commands act with: where the state is and the
/// configuration file, read as `serve` reads them.
pub struct Context {
    pub storage: Storage,
    pub file: FileConfig,
}

impl Context {
    /// The store, opened (migrations applied, secrets sealed as configured).
    pub async fn store(&self) -> anyhow::Result<Arc<dyn Store>> {
        Ok(Arc::new(self.storage.open().await?))
    }

    /// The rules over the store, with the settings `serve` would have in this
    /// environment (the same configuration file and `MCPGATE_*` variables): a grant
    /// revoked here is remembered as long as the server's own tokens live, not a
    /// default's. The scopes and the allow-list are seeded as `serve` seeds them, so
    /// that an operator who configures before ever serving sees (and can use) them.
    pub async fn authority(&self) -> anyhow::Result<Authority> {
        let args = serve::from_environment()?;
        let (_, cfg) = serve::app_config(&args, &self.file, &self.storage)?;
        let store = self.store().await?;
        let server =
            crate::app::start_server(&cfg, store, crate::app::Overrides::default()).await?;
        crate::app::seed::catalog(&server.auth, &cfg).await?;
        Ok(server.auth)
    }
}

/// A domain refusal as a command's error, saying what was being done. A refusal of
/// the request (a name taken, a URI not allowed) is its description; a server error
/// keeps its cause (a database that does not answer, and why), never just "internal
/// error".
pub fn refused(doing: &str, e: OAuthError) -> anyhow::Error {
    match e.code {
        ErrorCode::ServerError => anyhow::Error::new(e).context(doing.to_owned()),
        _ => anyhow::anyhow!("{doing}: {}", e.description),
    }
}

/// Prints a listing: a JSON array, or a line per item.
pub fn print_list<T: serde::Serialize + std::fmt::Display>(
    items: &[T],
    json: bool,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(items)?);
    } else {
        for i in items {
            println!("{i}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Before, a database failure in `mcpgate user add` printed "internal error".
    #[test]
    fn a_server_error_keeps_its_cause() {
        let cause = std::io::Error::other("database is locked");
        let e = refused("creating user bob", OAuthError::internal(cause));
        let text = format!("{e:#}");
        assert!(text.contains("creating user bob"), "{text}");
        assert!(text.contains("database is locked"), "{text}");
        let e = refused(
            "creating user bob",
            OAuthError::invalid_request("a user named bob exists"),
        );
        assert_eq!(e.to_string(), "creating user bob: a user named bob exists");
    }
}
