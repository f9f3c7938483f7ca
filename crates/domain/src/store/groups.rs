//! Groups of people and the scopes restricted to them (who may hold which scope).

use async_trait::async_trait;

use super::StoreResult;
use crate::model::*;

#[async_trait]
pub trait Groups: Send + Sync {
    async fn groups(&self) -> StoreResult<Vec<Group>>;

    async fn group(&self, name: &str) -> StoreResult<Option<Group>>;

    /// [`super::StoreError::Conflict`] when the name is taken.
    async fn insert_group(&self, g: &Group) -> StoreResult<()>;

    /// One step: the group, its memberships and the scope restrictions naming it.
    /// Returns the members it had (their scopes may have narrowed); `None` when there
    /// was no such group.
    async fn delete_group(&self, name: &str) -> StoreResult<Option<Vec<String>>>;

    /// False when the person was already a member by this source.
    async fn add_member(
        &self,
        group: &str,
        user_id: &str,
        source: MemberSource,
        now: i64,
    ) -> StoreResult<bool>;

    /// False when the person was not a member by this source.
    async fn remove_member(
        &self,
        group: &str,
        user_id: &str,
        source: MemberSource,
    ) -> StoreResult<bool>;

    async fn members(&self, group: &str) -> StoreResult<Vec<Member>>;

    /// The groups the person belongs to, by any source, each once.
    async fn groups_of(&self, user_id: &str) -> StoreResult<Vec<String>>;

    /// Every restriction: (scope, group) pairs. A scope absent here is open.
    async fn scope_groups(&self) -> StoreResult<Vec<(String, String)>>;

    /// Replaces the groups `scope` is restricted to (none: open to everyone).
    async fn set_scope_groups(&self, scope: &str, groups: &[String]) -> StoreResult<()>;
}
