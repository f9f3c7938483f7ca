//! Read models of the pages and the command line: searches over people, clients,
//! grants and the audit record, each bounded, and the activity chart's counts.

use async_trait::async_trait;

use super::StoreResult;
use crate::model::*;

#[async_trait]
pub trait Reports: Send + Sync {
    async fn audit_events(&self, limit: i64) -> StoreResult<Vec<AuditEvent>>;

    /// Users whose name or email contains `search` (all when empty), by name.
    async fn search_users(&self, search: &str, limit: i64) -> StoreResult<Vec<User>>;

    /// Clients whose id or name contains `search` (all when empty), newest first.
    async fn search_clients(&self, search: &str, limit: i64) -> StoreResult<Vec<Client>>;

    /// Live grants, of one user and/or to one client when given, newest first.
    async fn search_grants(
        &self,
        user_id: Option<&str>,
        client_id: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<(GrantView, String)>>;

    /// Live grants of a person (or of everyone), with client names.
    async fn grant_views(&self, user_id: Option<&str>) -> StoreResult<Vec<GrantView>>;

    /// Audit events matching `f`, newest first.
    async fn search_audit(&self, f: &AuditFilter, limit: i64) -> StoreResult<Vec<AuditEvent>>;

    /// Tool calls (the counts the guard writes as `tool_calls` events) and successful
    /// sign-ins in `buckets` equal slices of `[from, from + buckets * width)`; one
    /// entry per bucket, zero where nothing happened.
    async fn activity(&self, from: i64, width: i64, buckets: usize) -> StoreResult<Vec<Activity>>;

    /// Tool calls (the `tool_calls` counts) per person, client and day in
    /// `[from, from + days * 86400)`, of one person when given; days without calls are
    /// left out.
    async fn calls_by_day(
        &self,
        user_id: Option<&str>,
        from: i64,
        days: usize,
    ) -> StoreResult<Vec<CallDay>>;
}
