//! Codes, token families, refresh tokens and revocation handles.

use async_trait::async_trait;

use super::StoreResult;
use crate::model::*;

#[async_trait]
pub trait Tokens: Send + Sync {
    async fn insert_code(&self, c: &AuthCode) -> StoreResult<()>;

    /// Spends a code without issuing anything (a failed exchange still spends it).
    async fn redeem_code(&self, code_hash: &str, now: i64) -> StoreResult<Redeem>;

    /// A code as stored, without spending it (the token endpoint checks its bindings
    /// before [`Store::redeem_code_into_family`] spends it).
    async fn code(&self, code_hash: &str) -> StoreResult<Option<AuthCode>>;

    /// One step: spends the code, links it to `family`, writes the family and its
    /// first refresh token, and marks the grant used at `now`, provided the code's
    /// grant is still live. Neither outlives the grant's end as it stands in the same
    /// transaction: a consent that shortened the grant after the caller read it still
    /// caps them.
    async fn redeem_code_into_family(
        &self,
        code_hash: &str,
        now: i64,
        family: &TokenFamily,
        first: &RefreshToken,
    ) -> StoreResult<Exchange>;

    /// Deletes what has expired. A revocation row is kept until its `until` and also
    /// for `revocation_cover` seconds after it was made (the longest an access token
    /// of the caller lives), so a revocation written by a process configured with a
    /// shorter lifetime (another instance, a command run with other settings) still
    /// outlives the tokens it covers.
    async fn delete_expired(&self, now: i64, revocation_cover: i64) -> StoreResult<()>;

    async fn insert_family(&self, f: &TokenFamily) -> StoreResult<()>;

    async fn family(&self, id: &str) -> StoreResult<Option<TokenFamily>>;

    /// One step: marks the family revoked; false when it already was.
    async fn revoke_family(&self, id: &str, now: i64, reason: &str) -> StoreResult<bool>;

    async fn insert_refresh(&self, t: &RefreshToken) -> StoreResult<()>;

    async fn refresh(&self, token_hash: &str) -> StoreResult<Option<RefreshToken>>;

    /// One step: spends the refresh token (keeping `grace_answer` for duplicates until
    /// `grace_until`) and writes `next`; false, writing nothing, when another request
    /// spent it first or the token left `next`'s family (its grant was narrowed, see
    /// [`super::Grants::narrow_grant`]) since it was read.
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

    /// Revocations after sequence number `after`: (seq, handle, until, created_at).
    /// On PostgreSQL sequence values are taken before commit, so a row may appear
    /// after rows with higher numbers: callers read again from a point some time back
    /// (see the server's sync), never only from the highest number seen.
    async fn revocations_since(&self, after: i64) -> StoreResult<Vec<RevocationRow>>;
}
