//! Connected accounts: each person's own token for an upstream that wants one, sealed
//! at rest, and the single-use pages where a person gives it.

use async_trait::async_trait;

use super::StoreResult;
use crate::model::*;

#[async_trait]
pub trait Connections: Send + Sync {
    /// Stores (or replaces) the person's token for `upstream`, sealed.
    async fn put_connection(
        &self,
        user_id: &str,
        upstream: &str,
        secret: &str,
        now: i64,
    ) -> StoreResult<()>;

    /// The person's token for `upstream`, opened.
    async fn connection_secret(&self, user_id: &str, upstream: &str)
    -> StoreResult<Option<String>>;

    async fn touch_connection(&self, user_id: &str, upstream: &str, now: i64) -> StoreResult<()>;

    /// True when there was one.
    async fn delete_connection(&self, user_id: &str, upstream: &str) -> StoreResult<bool>;

    /// Every connection of the person (disabled, or deleted); how many there were.
    async fn delete_connections_of(&self, user_id: &str) -> StoreResult<u64>;

    async fn connections_of(&self, user_id: &str) -> StoreResult<Vec<Connection>>;

    /// Records a connect page, keeping only the person's `keep` newest for that upstream
    /// (a client calling in a loop cannot pile them up).
    async fn insert_connect_request(
        &self,
        handle_hash: &str,
        r: &ConnectRequest,
        keep: i64,
    ) -> StoreResult<()>;

    async fn connect_request(&self, handle_hash: &str) -> StoreResult<Option<ConnectRequest>>;

    /// Spends the request; true for the one caller that did.
    async fn take_connect_request(&self, handle_hash: &str) -> StoreResult<bool>;
}
