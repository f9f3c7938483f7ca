//! Rows as sqlx reads them. The records the rules use ([`mcpgate_domain::model`]) are
//! read into private row structs here and converted once, so a column of scopes
//! becomes a `ScopeSet` in one place; the read models of the pages and the command
//! line (audit listing, grant views, identity providers) are public rows.

use mcpgate_core::ScopeSet;
use mcpgate_domain::model::{
    AuthCode, AuthRequest, Grant, RefreshToken, TokenFamily, User, UserIdentity,
};

/// A stored scope string; one that no longer parses (written by hand) grants nothing.
fn scopes(s: &str) -> ScopeSet {
    ScopeSet::parse(s).unwrap_or_default()
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: String,
    username: String,
    email: Option<String>,
    password_hash: String,
    is_admin: bool,
    disabled: bool,
    created_at: i64,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: r.id,
            username: r.username,
            email: r.email,
            password_hash: r.password_hash,
            is_admin: r.is_admin,
            disabled: r.disabled,
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AuthRequestRow {
    id_hash: String,
    client_id: String,
    redirect_uri: String,
    scope: String,
    state: Option<String>,
    code_challenge: String,
    resource: String,
    created_at: i64,
    expires_at: i64,
}

impl From<AuthRequestRow> for AuthRequest {
    fn from(r: AuthRequestRow) -> Self {
        AuthRequest {
            id_hash: r.id_hash,
            client_id: r.client_id,
            redirect_uri: r.redirect_uri,
            scope: scopes(&r.scope),
            state: r.state,
            code_challenge: r.code_challenge,
            resource: r.resource,
            created_at: r.created_at,
            expires_at: r.expires_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct GrantRow {
    id: String,
    user_id: String,
    client_id: String,
    resource: String,
    scope: String,
    created_at: i64,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl From<GrantRow> for Grant {
    fn from(r: GrantRow) -> Self {
        Grant {
            id: r.id,
            user_id: r.user_id,
            client_id: r.client_id,
            resource: r.resource,
            scope: scopes(&r.scope),
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AuthCodeRow {
    code_hash: String,
    client_id: String,
    user_id: String,
    grant_id: String,
    redirect_uri: String,
    scope: String,
    resource: String,
    code_challenge: String,
    created_at: i64,
    expires_at: i64,
    used_at: Option<i64>,
    family_id: Option<String>,
}

impl From<AuthCodeRow> for AuthCode {
    fn from(r: AuthCodeRow) -> Self {
        AuthCode {
            code_hash: r.code_hash,
            client_id: r.client_id,
            user_id: r.user_id,
            grant_id: r.grant_id,
            redirect_uri: r.redirect_uri,
            scope: scopes(&r.scope),
            resource: r.resource,
            code_challenge: r.code_challenge,
            created_at: r.created_at,
            expires_at: r.expires_at,
            used_at: r.used_at,
            family_id: r.family_id,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct FamilyRow {
    id: String,
    grant_id: String,
    client_id: String,
    user_id: String,
    scope: String,
    resource: String,
    created_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
    revoked_reason: Option<String>,
}

impl From<FamilyRow> for TokenFamily {
    fn from(r: FamilyRow) -> Self {
        TokenFamily {
            id: r.id,
            grant_id: r.grant_id,
            client_id: r.client_id,
            user_id: r.user_id,
            scope: scopes(&r.scope),
            resource: r.resource,
            created_at: r.created_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            revoked_reason: r.revoked_reason,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct RefreshRow {
    token_hash: String,
    family_id: String,
    created_at: i64,
    expires_at: i64,
    rotated_at: Option<i64>,
    grace_answer: Option<String>,
    grace_until: Option<i64>,
}

impl From<RefreshRow> for RefreshToken {
    fn from(r: RefreshRow) -> Self {
        RefreshToken {
            token_hash: r.token_hash,
            family_id: r.family_id,
            created_at: r.created_at,
            expires_at: r.expires_at,
            rotated_at: r.rotated_at,
            grace_answer: r.grace_answer,
            grace_until: r.grace_until,
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditEvent {
    pub seq: i64,
    pub at: i64,
    pub event: String,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub detail: String,
}

/// A grant joined with what a person needs to recognise it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GrantView {
    pub id: String,
    /// Who granted it: the person's user name (their id if the account is gone).
    pub username: String,
    pub client_id: String,
    pub client_name: String,
    pub client_kind: String,
    pub resource: String,
    pub scope: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// An audit event to write in a batch ([`crate::Store::audit_batch`]); `event` and
/// `detail` come from [`mcpgate_domain::audit::Event::record`].
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub at: i64,
    pub event: String,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub detail: serde_json::Value,
}

/// A stored revocation: `handle` is revoked until at least `until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationRow {
    pub seq: i64,
    pub handle: String,
    pub until: i64,
    pub created_at: i64,
}
/// An upstream identity provider people may sign in with, as stored.
#[derive(Clone, sqlx::FromRow)]
pub struct IdentityProviderRow {
    pub name: String,
    pub display_name: String,
    /// `oidc`, `google`, `entra` or `github`.
    pub kind: String,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// JSON array of email domains.
    pub allowed_domains: String,
    pub auto_create: bool,
    pub created_at: i64,
}

impl std::fmt::Debug for IdentityProviderRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityProviderRow")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserIdentityRow {
    provider: String,
    subject: String,
    user_id: String,
    email: Option<String>,
    created_at: i64,
    last_login_at: Option<i64>,
}

impl From<UserIdentityRow> for UserIdentity {
    fn from(r: UserIdentityRow) -> Self {
        UserIdentity {
            provider: r.provider,
            subject: r.subject,
            user_id: r.user_id,
            email: r.email,
            created_at: r.created_at,
            last_login_at: r.last_login_at,
        }
    }
}

/// A sign-in under way at a provider (between the redirect and the callback).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IdpLogin {
    pub state_hash: String,
    pub provider: String,
    pub browser_hash: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub next: String,
    pub created_at: i64,
    pub expires_at: i64,
}
