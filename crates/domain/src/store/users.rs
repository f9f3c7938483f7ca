//! People: accounts, their state and credentials (hashed).

use async_trait::async_trait;

use super::StoreResult;
use crate::model::*;

#[async_trait]
pub trait Users: Send + Sync {
    /// [`StoreError::Conflict`] when the name is taken.
    async fn create_user(&self, u: &User) -> StoreResult<()>;

    async fn user_by_name(&self, username: &str) -> StoreResult<Option<User>>;

    async fn user(&self, id: &str) -> StoreResult<Option<User>>;

    async fn users(&self) -> StoreResult<Vec<User>>;

    async fn count_users(&self) -> StoreResult<i64>;

    async fn set_user_disabled(&self, username: &str, disabled: bool) -> StoreResult<bool>;

    async fn set_password(&self, username: &str, hash: &str) -> StoreResult<bool>;

    /// Users whose email is `email`, compared without case (RFC 5321 local parts may be
    /// case-sensitive, but no provider treats them so).
    async fn users_by_email(&self, email: &str) -> StoreResult<Vec<User>>;
}
