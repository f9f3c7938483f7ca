//! What signed assertions need kept: the JWT ids already presented (replays refused on
//! every instance sharing the database), and the identity providers trusted to issue
//! ID-JAGs.

use async_trait::async_trait;

use super::StoreResult;
use crate::model::*;

#[async_trait]
pub trait Assertions: Send + Sync {
    /// Records that `jti` of `issuer` was presented as a `kind` (client assertion,
    /// ID-JAG, DPoP proof), kept until `expires_at`; false when it had been already:
    /// a replay.
    async fn remember_jti(
        &self,
        kind: &str,
        issuer: &str,
        jti: &str,
        expires_at: i64,
    ) -> StoreResult<bool>;

    async fn trusted_issuers(&self) -> StoreResult<Vec<TrustedIssuer>>;

    /// The trusted issuer whose `iss` is `issuer` (compared exactly).
    async fn trusted_issuer(&self, issuer: &str) -> StoreResult<Option<TrustedIssuer>>;

    /// Adds or replaces (by name) a trusted issuer.
    async fn upsert_trusted_issuer(&self, t: &TrustedIssuer) -> StoreResult<()>;

    async fn delete_trusted_issuer(&self, name: &str) -> StoreResult<bool>;
}
