//! Browser sessions of the pages: who is signed in.

use async_trait::async_trait;

use super::StoreResult;
use crate::model::*;

#[async_trait]
pub trait Sessions: Send + Sync {
    async fn insert_session(
        &self,
        id_hash: &str,
        user_id: &str,
        now: i64,
        expires_at: i64,
    ) -> StoreResult<()>;

    /// The live, enabled user of a session.
    async fn session_user(&self, id_hash: &str, now: i64) -> StoreResult<Option<User>>;

    async fn delete_session(&self, id_hash: &str) -> StoreResult<()>;

    /// Ends the person's browser sessions except `keep` (a session id hash).
    async fn delete_sessions_of(&self, user_id: &str, keep: Option<&str>) -> StoreResult<u64>;
}
