//! Connected accounts: each person's own token for an upstream that wants one, sealed
//! at rest, and the single-use pages where a person gives it.

use async_trait::async_trait;

use super::StoreResult;
use crate::model::*;

#[async_trait]
pub trait Connections: Send + Sync {
    /// Stores (or replaces) the person's token for `upstream`, sealed; a new
    /// generation begins, so a refresh of the old secret is never written over it.
    async fn put_connection(
        &self,
        user_id: &str,
        upstream: &str,
        secret: &str,
        now: i64,
    ) -> StoreResult<()>;

    /// The person's secret for `upstream`, opened, with its generation.
    async fn connection(
        &self,
        user_id: &str,
        upstream: &str,
    ) -> StoreResult<Option<StoredConnection>>;

    /// Takes the right to refresh `generation` until `until`: true for one caller
    /// among all instances, while no other holds it (a holder that vanished loses it
    /// at `until`).
    async fn claim_refresh(
        &self,
        user_id: &str,
        upstream: &str,
        generation: i64,
        now: i64,
        until: i64,
    ) -> StoreResult<bool>;

    /// Writes the refreshed secret over `generation` (the next generation begins), for
    /// the claim that runs until `until` only; false when the connection moved on
    /// meanwhile (disconnected, connected anew, or the claim lapsed and another took it).
    async fn finish_refresh(
        &self,
        user_id: &str,
        upstream: &str,
        generation: i64,
        until: i64,
        secret: &str,
    ) -> StoreResult<bool>;

    /// Gives up a claim (the upstream could not be reached): the next caller tries.
    async fn release_refresh(
        &self,
        user_id: &str,
        upstream: &str,
        generation: i64,
    ) -> StoreResult<()>;

    /// mcpgate's registration at an upstream's authorization server, when it made one.
    async fn upstream_client(
        &self,
        upstream: &str,
        issuer: &str,
    ) -> StoreResult<Option<UpstreamClient>>;

    /// Keeps a registration, unless another instance kept one first: the one kept is
    /// returned, so that every instance uses the same.
    async fn put_upstream_client(
        &self,
        upstream: &str,
        issuer: &str,
        client: &UpstreamClient,
        now: i64,
    ) -> StoreResult<UpstreamClient>;

    /// Records an attempt, keeping only the person's `keep` newest (a person pressing
    /// the button in a loop cannot pile them up).
    async fn insert_connect_attempt(
        &self,
        state_hash: &str,
        a: &ConnectAttempt,
        keep: i64,
    ) -> StoreResult<()>;

    /// Spends an attempt: the one caller that did gets it.
    async fn take_connect_attempt(&self, state_hash: &str) -> StoreResult<Option<ConnectAttempt>>;

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
