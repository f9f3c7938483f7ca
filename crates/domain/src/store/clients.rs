//! Registered clients: dynamic registrations (RFC 7591), metadata-document clients,
//! and those the operator or a person created.

use async_trait::async_trait;

use super::StoreResult;
use crate::model::*;

#[async_trait]
pub trait Clients: Send + Sync {
    async fn insert_client(&self, c: &Client) -> StoreResult<()>;

    /// One step: inserts a client a person owns (`c.owner_user_id`) unless they own
    /// `max` already; false, writing nothing, when they do. Atomic: concurrent
    /// requests of one person cannot together pass the bound.
    async fn insert_owned_client(&self, c: &Client, max: i64) -> StoreResult<bool>;

    /// Inserts or refreshes a metadata-document client (its id is its URL).
    async fn upsert_document_client(&self, c: &Client) -> StoreResult<()>;

    async fn client(&self, client_id: &str) -> StoreResult<Option<Client>>;

    async fn client_by_registration_hash(&self, hash: &str) -> StoreResult<Option<Client>>;

    async fn clients(&self, owner: Option<&str>) -> StoreResult<Vec<Client>>;

    async fn count_dynamic_clients(&self) -> StoreResult<i64>;

    /// Deletes a client (only `owner`'s when given); false when there was none.
    async fn delete_client(&self, client_id: &str, owner: Option<&str>) -> StoreResult<bool>;

    async fn touch_client(&self, client_id: &str, now: i64) -> StoreResult<()>;

    /// Deletes the oldest dynamic registration created before `before` that was never
    /// used (no code issued, no grant); its id, or `None` when every one was used.
    async fn evict_oldest_unused_dynamic_client(
        &self,
        created_before: i64,
    ) -> StoreResult<Option<String>>;

    /// Deletes dynamic registrations that were never used by `before` (RFC 7591 leaves
    /// their lifetime to the server; unused ones are spam or abandoned attempts).
    async fn sweep_unused_dynamic_clients(&self, before: i64) -> StoreResult<u64>;
}
