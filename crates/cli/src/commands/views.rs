//! What the listings show, one struct per kind of row: `--json` is its serialization
//! (field names are the contract of scripts), the text listing its `Display`.

use std::fmt;

use mcpgate_core::jwt::StoredKey;
use mcpgate_domain::model::{AuditEvent, Client, GrantView, User};
use serde::Serialize;

fn when(t: i64) -> String {
    mcpgate_server::pages::when(Some(t))
}

#[derive(Serialize)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub admin: bool,
    pub disabled: bool,
    pub created_at: i64,
}

impl From<&User> for UserRow {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.clone(),
            username: u.username.clone(),
            email: u.email.clone(),
            admin: u.is_admin,
            disabled: u.disabled,
            created_at: u.created_at,
        }
    }
}

impl fmt::Display for UserRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let role = if self.admin { "admin" } else { "user" };
        write!(f, "{}\t{role}", self.username)?;
        if self.disabled {
            f.write_str("\tdisabled")?;
        }
        Ok(())
    }
}

#[derive(Serialize)]
pub struct ClientRow {
    pub client_id: String,
    pub name: String,
    pub kind: &'static str,
    pub redirect_uris: Vec<String>,
    pub confidential: bool,
    pub introspection: bool,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

impl From<&Client> for ClientRow {
    fn from(c: &Client) -> Self {
        Self {
            client_id: c.client_id.clone(),
            name: c.name.clone(),
            kind: c.kind.as_str(),
            redirect_uris: c.redirect_uris.clone(),
            confidential: !c.is_public(),
            introspection: c.can_introspect,
            created_at: c.created_at,
            last_used_at: c.last_used_at,
        }
    }
}

impl fmt::Display for ClientRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\t{}\t{}\t{}",
            self.client_id,
            self.kind,
            self.name,
            self.redirect_uris.join(" ")
        )
    }
}

#[derive(Serialize)]
pub struct ScopeRow {
    pub name: String,
    pub description: String,
    /// The groups whose members may hold it; empty: every signed-in person.
    pub groups: Vec<String>,
    /// The narrower scopes it includes (granted with it).
    pub includes: Vec<String>,
}

impl fmt::Display for ScopeRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = if self.groups.is_empty() {
            "open".to_owned()
        } else {
            format!("groups: {}", self.groups.join(", "))
        };
        write!(f, "{}\t{}", self.name, who)?;
        if !self.includes.is_empty() {
            write!(f, "\tincludes: {}", self.includes.join(", "))?;
        }
        write!(f, "\t{}", self.description)
    }
}

#[derive(Serialize)]
pub struct GroupRow {
    pub name: String,
    pub description: String,
    /// The identity provider whose groups claim sets members, if any.
    pub from_idp: Option<String>,
    pub members: Vec<MemberRow>,
    /// The scopes restricted to this group.
    pub scopes: Vec<String>,
}

#[derive(Serialize)]
pub struct MemberRow {
    pub user: String,
    /// `manual` or `provider`.
    pub source: &'static str,
}

impl From<mcpgate_domain::flows::groups::GroupListing> for GroupRow {
    fn from(l: mcpgate_domain::flows::groups::GroupListing) -> Self {
        Self {
            name: l.group.name,
            description: l.group.description,
            from_idp: l.group.provider,
            members: l
                .members
                .into_iter()
                .map(|m| MemberRow {
                    user: m.username,
                    source: m.source.as_str(),
                })
                .collect(),
            scopes: l.scopes.iter().map(str::to_owned).collect(),
        }
    }
}

impl fmt::Display for GroupRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let members: Vec<String> = self
            .members
            .iter()
            .map(|m| match m.source {
                "provider" => format!("{} (from the provider)", m.user),
                _ => m.user.clone(),
            })
            .collect();
        write!(
            f,
            "{}\tmembers: {}\tscopes: {}",
            self.name,
            if members.is_empty() {
                "-".into()
            } else {
                members.join(", ")
            },
            if self.scopes.is_empty() {
                "-".into()
            } else {
                self.scopes.join(" ")
            },
        )?;
        if let Some(p) = &self.from_idp {
            write!(f, "\tfrom idp {p}")?;
        }
        if !self.description.is_empty() {
            write!(f, "\t{}", self.description)?;
        }
        Ok(())
    }
}

#[derive(Serialize)]
pub struct GrantRow {
    pub grant_id: String,
    pub user: String,
    pub client_id: String,
    pub client_name: String,
    pub scope: String,
    pub resource: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    /// When the grant ends, as the person chose at consent; `null`: until revoked.
    pub expires_at: Option<i64>,
    /// The app's tool calls for this person over the last thirty days.
    pub calls_30d: Calls,
    /// The same, per day, oldest first: `[allowed, refused]`.
    pub calls_per_day: Vec<[i64; 2]>,
}

#[derive(Serialize)]
pub struct Calls {
    pub allowed: i64,
    pub refused: i64,
}

impl GrantRow {
    pub fn new(g: &GrantView, calls: &mcpgate_domain::flows::activity::AppActivity) -> Self {
        Self {
            grant_id: g.id.clone(),
            user: g.username.clone(),
            client_id: g.client_id.clone(),
            client_name: g.client_name.clone(),
            scope: g.scope.clone(),
            resource: g.resource.clone(),
            created_at: g.created_at,
            last_used_at: g.last_used_at,
            expires_at: g.expires_at,
            calls_30d: Calls {
                allowed: calls.allowed,
                refused: calls.refused,
            },
            calls_per_day: calls.days.clone(),
        }
    }
}

impl fmt::Display for GrantRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\t{}\t{}\t{}\t{} calls in 30 days ({} refused)",
            self.grant_id,
            self.user,
            self.client_name,
            self.scope,
            self.calls_30d.allowed + self.calls_30d.refused,
            self.calls_30d.refused
        )?;
        if let Some(e) = self.expires_at {
            write!(f, "\tends {}", mcpgate_server::pages::when(Some(e)))?;
        }
        Ok(())
    }
}

#[derive(Serialize)]
pub struct KeyRow {
    pub kid: String,
    pub created_at: i64,
    /// The key that signs now (the newest); the others verify until retired.
    pub signing: bool,
}

impl KeyRow {
    /// Live keys, oldest first: the last one signs.
    pub fn list(keys: &[StoredKey]) -> Vec<Self> {
        keys.iter()
            .enumerate()
            .map(|(i, k)| Self {
                kid: k.kid.clone(),
                created_at: k.created_at,
                signing: i + 1 == keys.len(),
            })
            .collect()
    }
}

impl fmt::Display for KeyRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\t{}", self.kid, when(self.created_at))?;
        if self.signing {
            f.write_str("\tsigning")?;
        }
        Ok(())
    }
}

#[derive(Serialize)]
pub struct AuditRow {
    pub seq: i64,
    pub at: i64,
    pub event: String,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub detail: serde_json::Value,
}

impl From<&AuditEvent> for AuditRow {
    fn from(e: &AuditEvent) -> Self {
        Self {
            seq: e.seq,
            at: e.at,
            event: e.event.clone(),
            user_id: e.user_id.clone(),
            client_id: e.client_id.clone(),
            detail: serde_json::from_str(&e.detail).unwrap_or_default(),
        }
    }
}

impl fmt::Display for AuditRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\t{}\tuser={}\tclient={}\t{}",
            when(self.at),
            self.event,
            self.user_id.as_deref().unwrap_or("-"),
            self.client_id.as_deref().unwrap_or("-"),
            self.detail
        )
    }
}

#[derive(Serialize)]
pub struct PresetRow {
    pub preset: &'static str,
    pub title: &'static str,
    pub enabled: bool,
    pub redirect_uris: &'static [&'static str],
}

impl fmt::Display for PresetRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}] {:<14} {}  ({})",
            if self.enabled { "x" } else { " " },
            self.preset,
            self.title,
            self.redirect_uris.join(", ")
        )
    }
}

#[derive(Serialize)]
pub struct ProviderRow {
    pub name: String,
    pub display_name: String,
    pub preset: &'static str,
    pub issuer: String,
    pub client_id: String,
    pub allowed_domains: Vec<String>,
    pub auto_create: bool,
    pub groups_claim: Option<String>,
}

impl From<&mcpgate_server::idp::IdpSettings> for ProviderRow {
    fn from(p: &mcpgate_server::idp::IdpSettings) -> Self {
        Self {
            name: p.name.clone(),
            display_name: p.display_name.clone(),
            preset: p.preset.as_str(),
            issuer: p.issuer.clone(),
            client_id: p.client_id.clone(),
            allowed_domains: p.allowed_domains.clone(),
            auto_create: p.auto_create,
            groups_claim: p.groups_claim.clone(),
        }
    }
}

impl fmt::Display for ProviderRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\t{}\t{}\tclient {}\tauto-create {}\t{:?}",
            self.name,
            self.preset,
            self.issuer,
            self.client_id,
            self.auto_create,
            self.allowed_domains
        )?;
        if let Some(c) = &self.groups_claim {
            write!(f, "\tgroups from claim {c}")?;
        }
        Ok(())
    }
}

#[derive(Serialize)]
pub struct TrustedRow {
    pub name: String,
    pub issuer: String,
    pub jwks_uri: String,
    pub allowed_domains: Vec<String>,
    pub auto_create: bool,
    pub exchange_audiences: Vec<String>,
    pub exchange_clients: Vec<String>,
}

impl From<mcpgate_domain::model::TrustedIssuer> for TrustedRow {
    fn from(t: mcpgate_domain::model::TrustedIssuer) -> Self {
        Self {
            name: t.name,
            issuer: t.issuer,
            jwks_uri: t.jwks_uri,
            allowed_domains: t.allowed_domains,
            auto_create: t.auto_create,
            exchange_audiences: t.exchange_audiences,
            exchange_clients: t.exchange_clients,
        }
    }
}

impl fmt::Display for TrustedRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\t{}\tkeys {}\tauto-create {}\t{:?}\texchanges {:?}",
            self.name,
            self.issuer,
            self.jwks_uri,
            self.auto_create,
            self.allowed_domains,
            self.exchange_audiences
        )
    }
}
