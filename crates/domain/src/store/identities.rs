//! Identity providers people may sign in with, the accounts linked through them, and
//! sign-ins under way at a provider.

use async_trait::async_trait;

use super::StoreResult;
use crate::model::*;

#[async_trait]
pub trait Identities: Send + Sync {
    /// Stores a provider, its client secret sealed when a key-encryption key is
    /// configured.
    async fn upsert_identity_provider(&self, p: &IdentityProviderRow) -> StoreResult<()>;

    /// The providers, their client secrets opened.
    async fn identity_providers(&self) -> StoreResult<Vec<IdentityProviderRow>>;

    async fn delete_identity_provider(&self, name: &str) -> StoreResult<bool>;

    async fn user_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> StoreResult<Option<UserIdentity>>;

    /// Links an identity at a provider to an existing user; a `Conflict` when it is
    /// linked already (an identity belongs to one user).
    async fn link_identity(&self, i: &UserIdentity) -> StoreResult<()>;

    /// One step: a new user and their identity at a provider, both or neither;
    /// [`StoreError::Conflict`] when the name or the identity is taken.
    async fn create_user_with_identity(&self, u: &User, i: &UserIdentity) -> StoreResult<()>;

    async fn touch_identity(
        &self,
        provider: &str,
        subject: &str,
        email: Option<&str>,
        now: i64,
    ) -> StoreResult<()>;

    async fn insert_idp_login(&self, l: &IdpLogin) -> StoreResult<()>;

    /// Takes a sign-in under way: at most one caller gets it, once (a replayed `state`
    /// finds nothing). Expired ones are deleted and not returned.
    async fn take_idp_login(&self, state_hash: &str, now: i64) -> StoreResult<Option<IdpLogin>>;
}
