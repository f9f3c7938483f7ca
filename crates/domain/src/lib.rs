//! mcpgate-domain: the authorization server's rules, one function per grant and per
//! administrative act, apart from HTTP and storage.
//!
//! - [`flows`]: authorize, exchange a code, refresh, revoke, introspect, register or
//!   create a client (dynamic registration, metadata document, self-service, operator),
//!   end a person's access, manage keys. Each takes typed input, parsed once at the HTTP
//!   edge, and returns a typed [`OAuthError`] that the edge maps to HTTP in one place.
//! - [`Store`]: what the rules need from storage, one whole step per method; the
//!   multi-record steps are atomic.
//! - [`model`]: the records, typed (scope sets, kinds, authentication methods).
//! - [`audit::Event`]: the audit record's events, one variant each.
//! - [`ports`]: metadata-document fetching and password hashing, implemented by the server.
//!
//! Nothing here depends on an HTTP server, a database driver, an async runtime or an
//! HTTP client: `cargo tree -p mcpgate-domain -e normal` shows none.

mod actor;
pub mod audit;
mod authority;
pub mod flows;
pub mod model;
pub mod ports;
pub mod settings;
pub mod store;

pub use actor::Actor;
pub use authority::Authority;
pub use mcpgate_core::{ErrorCode, OAuthError};
pub use model::*;
pub use settings::Settings;
pub use store::{Store, StoreError, StoreResult};

/// A rule's outcome: a value, or the OAuth error to answer with.
pub type OAuthResult<T> = Result<T, OAuthError>;

/// A storage failure inside a rule is a `server_error` whose cause is logged at the
/// edge and never shown.
impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        OAuthError::internal(e)
    }
}

/// Property tests run 2,000 cases each in the test command;
/// `PROPTEST_CASES=100000 cargo test -p mcpgate-domain proptests` runs them longer.
#[cfg(test)]
pub(crate) fn proptest_cases() -> proptest::prelude::ProptestConfig {
    proptest::prelude::ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000),
    )
}
