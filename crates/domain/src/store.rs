//! What the rules need from storage. Each method is a whole step: the ones that
//! change several records at once (a code redeemed into its token family, a refresh
//! token rotated into its successor, a grant revoked with its families) are atomic in
//! one transaction, so no failure leaves half of one behind. `mcpgate-store`
//! implements this on SQLite and PostgreSQL; tests run the rules on SQLite in memory,
//! a real store.

use async_trait::async_trait;
use mcpgate_core::ScopeSet;
use mcpgate_core::jwt::StoredKey;

use crate::model::{
    AuthCode, AuthRequest, Client, Exchange, Grant, Redeem, RefreshToken, TokenFamily, User,
    UserIdentity,
};

/// Storage failures, as the rules see them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique key is taken (a user name, a client id).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("storage error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait Store: Send + Sync {
    // People.
    async fn user(&self, id: &str) -> StoreResult<Option<User>>;
    async fn user_by_name(&self, username: &str) -> StoreResult<Option<User>>;
    /// [`StoreError::Conflict`] when the name is taken.
    async fn create_user(&self, u: &User) -> StoreResult<()>;
    async fn set_user_disabled(&self, username: &str, disabled: bool) -> StoreResult<bool>;
    async fn set_password(&self, username: &str, hash: &str) -> StoreResult<bool>;
    /// One step: a new user and their identity at a provider, both or neither;
    /// [`StoreError::Conflict`] when the name or the identity is taken.
    async fn create_user_with_identity(&self, u: &User, i: &UserIdentity) -> StoreResult<()>;
    /// Links an identity at a provider to an existing user; a `Conflict` when it is
    /// linked already (an identity belongs to one user).
    async fn link_identity(&self, i: &UserIdentity) -> StoreResult<()>;
    /// Ends the person's browser sessions except `keep` (a session id hash).
    async fn delete_sessions_of(&self, user_id: &str, keep: Option<&str>) -> StoreResult<u64>;

    // Clients.
    async fn client(&self, client_id: &str) -> StoreResult<Option<Client>>;
    async fn client_by_registration_hash(&self, hash: &str) -> StoreResult<Option<Client>>;
    async fn insert_client(&self, c: &Client) -> StoreResult<()>;
    /// Inserts or refreshes a metadata-document client (its id is its URL).
    async fn upsert_document_client(&self, c: &Client) -> StoreResult<()>;
    async fn count_dynamic_clients(&self) -> StoreResult<i64>;
    /// Deletes the oldest dynamic registration created before `before` that was never
    /// used (no code issued, no grant); its id, or `None` when every one was used.
    async fn evict_oldest_unused_dynamic_client(&self, before: i64) -> StoreResult<Option<String>>;
    /// Deletes a client (only `owner`'s when given); false when there was none.
    async fn delete_client(&self, client_id: &str, owner: Option<&str>) -> StoreResult<bool>;
    async fn touch_client(&self, client_id: &str, now: i64) -> StoreResult<()>;

    // The operator's settings: scopes and the redirect allow-list.
    /// Scopes with their descriptions.
    async fn scopes(&self) -> StoreResult<Vec<(String, String)>>;
    async fn upsert_scope(&self, name: &str, description: &str) -> StoreResult<()>;
    /// The allow-list's entries as stored (see [`mcpgate_core::redirect_uri::AllowEntry`]).
    async fn allowed_redirects(&self) -> StoreResult<Vec<String>>;
    async fn allow_redirect(&self, entry: &str, now: i64) -> StoreResult<()>;
    async fn disallow_redirect(&self, entry: &str) -> StoreResult<bool>;

    // Authorization requests pending consent, and grants (consents).
    async fn insert_auth_request(&self, r: &AuthRequest) -> StoreResult<()>;
    /// The pending request, if not expired at `now`.
    async fn auth_request(&self, id_hash: &str, now: i64) -> StoreResult<Option<AuthRequest>>;
    /// Consumes a pending request; false when it was already consumed.
    async fn take_auth_request(&self, id_hash: &str) -> StoreResult<bool>;
    async fn grant(&self, id: &str) -> StoreResult<Option<Grant>>;
    /// The person's live grant to this client for this resource.
    async fn live_grant(
        &self,
        user_id: &str,
        client_id: &str,
        resource: &str,
    ) -> StoreResult<Option<Grant>>;
    async fn insert_grant(&self, g: &Grant) -> StoreResult<()>;
    async fn set_grant_scope(&self, id: &str, scope: &ScopeSet) -> StoreResult<()>;
    async fn touch_grant(&self, id: &str, now: i64) -> StoreResult<()>;
    /// Ids of the live grants of a person, or of a client.
    async fn live_grants_of_user(&self, user_id: &str) -> StoreResult<Vec<String>>;
    async fn live_grants_of_client(&self, client_id: &str) -> StoreResult<Vec<String>>;
    /// One step: revokes the grant and every live family under it; returns the
    /// families' ids (revocation handles for their access tokens).
    async fn revoke_grant(&self, id: &str, now: i64, reason: &str) -> StoreResult<Vec<String>>;

    // Codes, token families and refresh tokens.
    async fn insert_code(&self, c: &AuthCode) -> StoreResult<()>;
    async fn code(&self, code_hash: &str) -> StoreResult<Option<AuthCode>>;
    /// Spends a code without issuing anything (a failed exchange still spends it).
    async fn redeem_code(&self, code_hash: &str, now: i64) -> StoreResult<Redeem>;
    /// One step: spends the code, links it to `family`, writes the family and its
    /// first refresh token, provided the code's grant is still live.
    async fn redeem_code_into_family(
        &self,
        code_hash: &str,
        now: i64,
        family: &TokenFamily,
        first: &RefreshToken,
    ) -> StoreResult<Exchange>;
    async fn family(&self, id: &str) -> StoreResult<Option<TokenFamily>>;
    /// One step: marks the family revoked; false when it already was.
    async fn revoke_family(&self, id: &str, now: i64, reason: &str) -> StoreResult<bool>;
    async fn refresh(&self, token_hash: &str) -> StoreResult<Option<RefreshToken>>;
    /// One step: spends the refresh token (keeping `grace_answer` for duplicates until
    /// `grace_until`) and writes `next`; false, writing nothing, when another request
    /// spent it first.
    async fn rotate_refresh(
        &self,
        token_hash: &str,
        now: i64,
        grace_answer: &str,
        grace_until: i64,
        next: &RefreshToken,
    ) -> StoreResult<bool>;
    /// Records that `handle` (a family id, an access token's `jti`, a key handle) is
    /// revoked until `until`, for every other process.
    async fn insert_revocation(&self, handle: &str, until: i64, now: i64) -> StoreResult<()>;

    // Signing keys.
    /// Live keys, oldest first.
    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>>;
    async fn insert_signing_key(&self, key: &StoredKey) -> StoreResult<()>;
    /// Retires one key that does not sign (not the newest); false otherwise.
    async fn retire_key(&self, kid: &str, now: i64) -> StoreResult<bool>;
    /// Retires every key superseded at least `grace` seconds ago.
    async fn retire_superseded_keys(&self, now: i64, grace: i64) -> StoreResult<()>;

    // The audit record.
    async fn audit(
        &self,
        at: i64,
        event: &str,
        user_id: Option<&str>,
        client_id: Option<&str>,
        detail: &serde_json::Value,
    ) -> StoreResult<()>;
}
