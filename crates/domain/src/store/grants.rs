//! Authorization requests pending consent, and grants: a person's consent to a client
//! for one resource, with the scopes consented to.

use async_trait::async_trait;

use super::StoreResult;
use crate::model::*;
use mcpgate_core::ScopeSet;

#[async_trait]
pub trait Grants: Send + Sync {
    async fn insert_auth_request(&self, r: &AuthRequest) -> StoreResult<()>;

    /// The pending request, if not expired at `now`.
    async fn auth_request(&self, id_hash: &str, now: i64) -> StoreResult<Option<AuthRequest>>;

    /// Consumes a pending request; false when it was already consumed.
    async fn take_auth_request(&self, id_hash: &str) -> StoreResult<bool>;

    /// The person's live grant to this client for this resource.
    async fn live_grant(
        &self,
        user_id: &str,
        client_id: &str,
        resource: &str,
    ) -> StoreResult<Option<Grant>>;

    async fn grant(&self, id: &str) -> StoreResult<Option<Grant>>;

    async fn insert_grant(&self, g: &Grant) -> StoreResult<()>;

    /// One step, at a new consent: what the grant holds, what was withheld from it, and
    /// when it ends. An end earlier than before caps the grant's live token families and
    /// refresh tokens, so that none outlives it.
    async fn update_grant(
        &self,
        id: &str,
        scope: &ScopeSet,
        withheld: &ScopeSet,
        expires_at: Option<i64>,
    ) -> StoreResult<()>;

    /// One step, when a person lost scopes: the grant holds `scope` and lists
    /// `withheld`, and each live family `(old, new)` is replaced: `old` revoked (its
    /// access tokens end with its revocation handle), `new` (the narrowed scope, same
    /// grant, client, person, resource and expiry) inherits its unspent refresh tokens
    /// and its code link, so the client's refresh token keeps working for what remains.
    async fn narrow_grant(
        &self,
        id: &str,
        scope: &ScopeSet,
        withheld: &ScopeSet,
        families: &[(String, TokenFamily)],
        now: i64,
    ) -> StoreResult<()>;

    /// The live families under a grant.
    async fn live_families_of_grant(&self, grant_id: &str) -> StoreResult<Vec<TokenFamily>>;

    /// The people who hold at least one live grant.
    async fn users_with_live_grants(&self) -> StoreResult<Vec<String>>;

    async fn touch_grant(&self, id: &str, now: i64) -> StoreResult<()>;

    /// Ids of the live grants made to a client.
    async fn live_grants_of_client(&self, client_id: &str) -> StoreResult<Vec<String>>;

    /// Ids of the live grants of a person, or of a client.
    async fn live_grants_of_user(&self, user_id: &str) -> StoreResult<Vec<String>>;

    /// One step: revokes the grant and every live family under it; returns the
    /// families' ids (revocation handles for their access tokens).
    async fn revoke_grant(&self, id: &str, now: i64, reason: &str) -> StoreResult<Vec<String>>;
}
