//! The store as the rules see it: [`mcpgate_domain::Store`], each step timed and
//! traced ([`crate::step`]) and its errors translated. The steps themselves, and the
//! transactions that make the multi-record ones atomic, are the inherent methods.

use async_trait::async_trait;
use mcpgate_core::ScopeSet;
use mcpgate_core::jwt::StoredKey;
use mcpgate_domain::StoreResult;

use crate::model::*;
use crate::step::step;
use crate::{Store, StoreError};

impl From<StoreError> for mcpgate_domain::StoreError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound,
            StoreError::Conflict(m) => Self::Conflict(m),
            StoreError::Backend(e) => Self::Backend(e),
            StoreError::Sealed(e) => Self::Backend(Box::new(e)),
        }
    }
}

#[async_trait]
impl mcpgate_domain::Store for Store {
    async fn user(&self, id: &str) -> StoreResult<Option<User>> {
        Ok(step("user", Store::user(self, id)).await?)
    }

    async fn user_by_name(&self, username: &str) -> StoreResult<Option<User>> {
        Ok(step("user_by_name", Store::user_by_name(self, username)).await?)
    }

    async fn create_user(&self, u: &User) -> StoreResult<()> {
        Ok(step("create_user", Store::create_user(self, u)).await?)
    }

    async fn set_user_disabled(&self, username: &str, disabled: bool) -> StoreResult<bool> {
        Ok(step(
            "set_user_disabled",
            Store::set_user_disabled(self, username, disabled),
        )
        .await?)
    }

    async fn set_password(&self, username: &str, hash: &str) -> StoreResult<bool> {
        Ok(step("set_password", Store::set_password(self, username, hash)).await?)
    }

    async fn create_user_with_identity(&self, u: &User, i: &UserIdentity) -> StoreResult<()> {
        Ok(step(
            "create_user_with_identity",
            Store::create_user_with_identity(self, u, i),
        )
        .await?)
    }

    async fn link_identity(&self, i: &UserIdentity) -> StoreResult<()> {
        Ok(step("link_identity", Store::link_identity(self, i)).await?)
    }

    async fn delete_sessions_of(&self, user_id: &str, keep: Option<&str>) -> StoreResult<u64> {
        Ok(step(
            "delete_sessions_of",
            Store::delete_sessions_of(self, user_id, keep),
        )
        .await?)
    }

    async fn client(&self, client_id: &str) -> StoreResult<Option<Client>> {
        Ok(step("client", Store::client(self, client_id)).await?)
    }

    async fn client_by_registration_hash(&self, hash: &str) -> StoreResult<Option<Client>> {
        Ok(step(
            "client_by_registration_hash",
            Store::client_by_registration_hash(self, hash),
        )
        .await?)
    }

    async fn insert_client(&self, c: &Client) -> StoreResult<()> {
        Ok(step("insert_client", Store::insert_client(self, c)).await?)
    }

    async fn upsert_document_client(&self, c: &Client) -> StoreResult<()> {
        Ok(step(
            "upsert_document_client",
            Store::upsert_document_client(self, c),
        )
        .await?)
    }

    async fn count_dynamic_clients(&self) -> StoreResult<i64> {
        Ok(step("count_dynamic_clients", Store::count_dynamic_clients(self)).await?)
    }

    async fn evict_oldest_unused_dynamic_client(&self, before: i64) -> StoreResult<Option<String>> {
        Ok(step(
            "evict_oldest_unused_dynamic_client",
            Store::evict_oldest_unused_dynamic_client(self, before),
        )
        .await?)
    }

    async fn delete_client(&self, client_id: &str, owner: Option<&str>) -> StoreResult<bool> {
        Ok(step(
            "delete_client",
            Store::delete_client(self, client_id, owner),
        )
        .await?)
    }

    async fn touch_client(&self, client_id: &str, now: i64) -> StoreResult<()> {
        Ok(step("touch_client", Store::touch_client(self, client_id, now)).await?)
    }

    async fn scopes(&self) -> StoreResult<Vec<(String, String)>> {
        Ok(step("scopes", Store::scopes(self)).await?)
    }

    async fn upsert_scope(&self, name: &str, description: &str) -> StoreResult<()> {
        Ok(step("upsert_scope", Store::upsert_scope(self, name, description)).await?)
    }

    async fn allowed_redirects(&self) -> StoreResult<Vec<String>> {
        Ok(step("allowed_redirects", Store::allowed_redirects(self)).await?)
    }

    async fn allow_redirect(&self, entry: &str, now: i64) -> StoreResult<()> {
        Ok(step("allow_redirect", Store::allow_redirect(self, entry, now)).await?)
    }

    async fn disallow_redirect(&self, entry: &str) -> StoreResult<bool> {
        Ok(step("disallow_redirect", Store::disallow_redirect(self, entry)).await?)
    }

    async fn insert_auth_request(&self, r: &AuthRequest) -> StoreResult<()> {
        Ok(step("insert_auth_request", Store::insert_auth_request(self, r)).await?)
    }

    async fn auth_request(&self, id_hash: &str, now: i64) -> StoreResult<Option<AuthRequest>> {
        Ok(step("auth_request", Store::auth_request(self, id_hash, now)).await?)
    }

    async fn take_auth_request(&self, id_hash: &str) -> StoreResult<bool> {
        Ok(step("take_auth_request", Store::take_auth_request(self, id_hash)).await?)
    }

    async fn grant(&self, id: &str) -> StoreResult<Option<Grant>> {
        Ok(step("grant", Store::grant(self, id)).await?)
    }

    async fn live_grant(
        &self,
        user_id: &str,
        client_id: &str,
        resource: &str,
    ) -> StoreResult<Option<Grant>> {
        Ok(step(
            "live_grant",
            Store::live_grant(self, user_id, client_id, resource),
        )
        .await?)
    }

    async fn insert_grant(&self, g: &Grant) -> StoreResult<()> {
        Ok(step("insert_grant", Store::insert_grant(self, g)).await?)
    }

    async fn set_grant_scope(&self, id: &str, scope: &ScopeSet) -> StoreResult<()> {
        Ok(step("set_grant_scope", Store::set_grant_scope(self, id, scope)).await?)
    }

    async fn touch_grant(&self, id: &str, now: i64) -> StoreResult<()> {
        Ok(step("touch_grant", Store::touch_grant(self, id, now)).await?)
    }

    async fn live_grants_of_user(&self, user_id: &str) -> StoreResult<Vec<String>> {
        Ok(step(
            "live_grants_of_user",
            Store::live_grants_of_user(self, user_id),
        )
        .await?)
    }

    async fn live_grants_of_client(&self, client_id: &str) -> StoreResult<Vec<String>> {
        Ok(step(
            "live_grants_of_client",
            Store::live_grants_of_client(self, client_id),
        )
        .await?)
    }

    async fn revoke_grant(&self, id: &str, now: i64, reason: &str) -> StoreResult<Vec<String>> {
        Ok(step("revoke_grant", Store::revoke_grant(self, id, now, reason)).await?)
    }

    async fn insert_code(&self, c: &AuthCode) -> StoreResult<()> {
        Ok(step("insert_code", Store::insert_code(self, c)).await?)
    }

    async fn code(&self, code_hash: &str) -> StoreResult<Option<AuthCode>> {
        Ok(step("code", Store::code(self, code_hash)).await?)
    }

    async fn redeem_code(&self, code_hash: &str, now: i64) -> StoreResult<Redeem> {
        Ok(step("redeem_code", Store::redeem_code(self, code_hash, now)).await?)
    }

    async fn redeem_code_into_family(
        &self,
        code_hash: &str,
        now: i64,
        family: &TokenFamily,
        first: &RefreshToken,
    ) -> StoreResult<Exchange> {
        Ok(step(
            "redeem_code_into_family",
            Store::redeem_code_into_family(self, code_hash, now, family, first),
        )
        .await?)
    }

    async fn family(&self, id: &str) -> StoreResult<Option<TokenFamily>> {
        Ok(step("family", Store::family(self, id)).await?)
    }

    async fn revoke_family(&self, id: &str, now: i64, reason: &str) -> StoreResult<bool> {
        Ok(step("revoke_family", Store::revoke_family(self, id, now, reason)).await?)
    }

    async fn refresh(&self, token_hash: &str) -> StoreResult<Option<RefreshToken>> {
        Ok(step("refresh", Store::refresh(self, token_hash)).await?)
    }

    async fn rotate_refresh(
        &self,
        token_hash: &str,
        now: i64,
        grace_answer: &str,
        grace_until: i64,
        next: &RefreshToken,
    ) -> StoreResult<bool> {
        Ok(step(
            "rotate_refresh",
            Store::rotate_refresh(self, token_hash, now, grace_answer, grace_until, next),
        )
        .await?)
    }

    async fn insert_revocation(&self, handle: &str, until: i64, now: i64) -> StoreResult<()> {
        Ok(step(
            "insert_revocation",
            Store::insert_revocation(self, handle, until, now),
        )
        .await?)
    }

    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
        Ok(step("signing_keys", Store::signing_keys(self)).await?)
    }

    async fn insert_signing_key(&self, key: &StoredKey) -> StoreResult<()> {
        Ok(step("insert_signing_key", Store::insert_signing_key(self, key)).await?)
    }

    async fn retire_key(&self, kid: &str, now: i64) -> StoreResult<bool> {
        Ok(step("retire_key", Store::retire_key(self, kid, now)).await?)
    }

    async fn retire_superseded_keys(&self, now: i64, grace: i64) -> StoreResult<()> {
        Ok(step(
            "retire_superseded_keys",
            Store::retire_superseded_keys(self, now, grace),
        )
        .await?)
    }

    async fn audit(
        &self,
        at: i64,
        event: &str,
        user_id: Option<&str>,
        client_id: Option<&str>,
        detail: &serde_json::Value,
    ) -> StoreResult<()> {
        Ok(step(
            "audit",
            Store::audit(self, at, event, user_id, client_id, detail),
        )
        .await?)
    }
}
