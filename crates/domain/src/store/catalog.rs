//! What the operator offers: scopes with the words the consent page shows, the
//! redirect allow-list of known AI clients, and the first-run steps done once.

use async_trait::async_trait;

use super::StoreResult;

#[async_trait]
pub trait Catalog: Send + Sync {
    /// Scopes with their descriptions.
    async fn scopes(&self) -> StoreResult<Vec<(String, String)>>;

    async fn upsert_scope(&self, name: &str, description: &str) -> StoreResult<()>;

    /// Each (scope, narrower scope it includes) the operator declared.
    async fn scope_includes(&self) -> StoreResult<Vec<(String, String)>>;

    /// Replaces what `scope` includes.
    async fn set_scope_includes(&self, scope: &str, includes: &[String]) -> StoreResult<()>;

    /// The allow-list's entries as stored (see [`mcpgate_core::redirect_uri::AllowEntry`]).
    async fn allowed_redirects(&self) -> StoreResult<Vec<String>>;

    /// True when the entry was not on the list before.
    async fn allow_redirect(&self, entry: &str, now: i64) -> StoreResult<bool>;

    async fn disallow_redirect(&self, entry: &str) -> StoreResult<bool>;

    /// Marks a first-run step done; true only for the one caller that marked it
    /// (across processes), which then performs the step.
    async fn mark_seeded(&self, step: &str, now: i64) -> StoreResult<bool>;
}
