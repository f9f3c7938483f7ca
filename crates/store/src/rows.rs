//! Rows as sqlx reads them. The records ([`mcpgate_domain::model`]) are read into
//! private row structs here and converted once, so a column of scopes becomes a
//! `ScopeSet` in one place and no sqlx type leaves this crate.

use mcpgate_core::ScopeSet;
use mcpgate_domain::model::{
    AuditEvent, AuthCode, AuthRequest, Grant, GrantView, Group, IdentityProviderRow, IdpLogin,
    RefreshToken, TokenFamily, User, UserIdentity,
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
    withheld: String,
    created_at: i64,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
    expires_at: Option<i64>,
}

impl From<GrantRow> for Grant {
    fn from(r: GrantRow) -> Self {
        Grant {
            id: r.id,
            user_id: r.user_id,
            client_id: r.client_id,
            resource: r.resource,
            scope: scopes(&r.scope),
            withheld: scopes(&r.withheld),
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
            expires_at: r.expires_at,
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
    dpop_jkt: Option<String>,
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
            dpop_jkt: r.dpop_jkt,
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

/// An audit event as stored; see [`AuditEvent`].
#[derive(sqlx::FromRow)]
pub(crate) struct AuditEventRow {
    seq: i64,
    at: i64,
    event: String,
    user_id: Option<String>,
    client_id: Option<String>,
    detail: String,
}

impl From<AuditEventRow> for AuditEvent {
    fn from(r: AuditEventRow) -> Self {
        AuditEvent {
            seq: r.seq,
            at: r.at,
            event: r.event,
            user_id: r.user_id,
            client_id: r.client_id,
            detail: r.detail,
        }
    }
}

/// A grant joined with its client's name, as read; see [`GrantView`].
#[derive(sqlx::FromRow)]
pub(crate) struct GrantViewRow {
    id: String,
    user_id: String,
    username: String,
    client_id: String,
    client_name: String,
    client_kind: String,
    resource: String,
    scope: String,
    withheld: String,
    created_at: i64,
    last_used_at: Option<i64>,
    expires_at: Option<i64>,
}

impl From<GrantViewRow> for GrantView {
    fn from(r: GrantViewRow) -> Self {
        GrantView {
            id: r.id,
            user_id: r.user_id,
            username: r.username,
            client_id: r.client_id,
            client_name: r.client_name,
            client_kind: r.client_kind,
            resource: r.resource,
            scope: r.scope,
            withheld: r.withheld,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            expires_at: r.expires_at,
        }
    }
}

/// An identity provider as stored; see [`IdentityProviderRow`].
#[derive(sqlx::FromRow)]
pub(crate) struct ProviderRow {
    name: String,
    display_name: String,
    kind: String,
    issuer: String,
    client_id: String,
    client_secret: String,
    allowed_domains: String,
    auto_create: bool,
    created_at: i64,
    groups_claim: Option<String>,
    groups_scope: Option<String>,
}

impl From<ProviderRow> for IdentityProviderRow {
    fn from(r: ProviderRow) -> Self {
        IdentityProviderRow {
            name: r.name,
            display_name: r.display_name,
            kind: r.kind,
            issuer: r.issuer,
            client_id: r.client_id,
            client_secret: r.client_secret,
            allowed_domains: r.allowed_domains,
            auto_create: r.auto_create,
            groups_claim: r.groups_claim,
            groups_scope: r.groups_scope,
            created_at: r.created_at,
        }
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

/// A provider sign-in under way, as stored; see [`IdpLogin`].
#[derive(sqlx::FromRow)]
pub(crate) struct IdpLoginRow {
    state_hash: String,
    provider: String,
    browser_hash: String,
    nonce: String,
    pkce_verifier: String,
    next: String,
    created_at: i64,
    expires_at: i64,
}

impl From<IdpLoginRow> for IdpLogin {
    fn from(r: IdpLoginRow) -> Self {
        IdpLogin {
            state_hash: r.state_hash,
            provider: r.provider,
            browser_hash: r.browser_hash,
            nonce: r.nonce,
            pkce_verifier: r.pkce_verifier,
            next: r.next,
            created_at: r.created_at,
            expires_at: r.expires_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct GroupRow {
    name: String,
    description: String,
    provider: Option<String>,
    created_at: i64,
}

impl From<GroupRow> for Group {
    fn from(r: GroupRow) -> Self {
        Group {
            name: r.name,
            description: r.description,
            provider: r.provider,
            created_at: r.created_at,
        }
    }
}
