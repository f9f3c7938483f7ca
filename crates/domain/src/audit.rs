//! The audit record's events, typed: each event is a variant with its own fields, so a
//! writer cannot misspell a name or forget a field, and the admin pages list the
//! names from [`NAMES`]. Stored as the name and a JSON object of the fields.

use mcpgate_core::ScopeSet;

use crate::Actor;
use serde::Serialize;
use serde_json::Value;

/// One audited act. `by` names who acted: `operator` (the command line),
/// `admin:<name>` (an admin page), `user:<id>` (a person on their own pages).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    TokenIssued {
        grant: &'static str,
        scope: ScopeSet,
    },
    TokenRefreshed {
        scope: ScopeSet,
    },
    /// RFC 7009: `kind` is `refresh_token` or `access_token`.
    TokenRevoked {
        kind: &'static str,
    },
    /// A spent code presented again by its client: its family is revoked.
    CodeReplay {
        family: Option<String>,
    },
    /// A rotated refresh token presented again: its family is revoked.
    RefreshReuse {
        family: String,
    },
    ConsentGranted {
        scope: ScopeSet,
        grant: String,
        /// When the grant ends, as the person chose; absent: until revoked.
        #[serde(skip_serializing_if = "Option::is_none")]
        ends_at: Option<i64>,
    },
    ConsentDenied {},
    GrantRevoked {
        grant: String,
        by: Actor,
    },
    ClientRegistered {
        name: String,
        redirect_uris: Vec<String>,
    },
    ClientEvicted {
        reason: &'static str,
    },
    ClientDocumentFetched {
        name: String,
    },
    ClientCreated {
        name: String,
        by: Actor,
    },
    ClientDeleted {
        by: Actor,
    },
    /// By the operator or an administrator (`admin`, `by`), or on a first sign-in
    /// through an identity provider (`provider`, `subject`, `email`).
    UserCreated {
        username: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        admin: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        by: Option<Actor>,
        #[serde(skip_serializing_if = "Option::is_none")]
        provider: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        email: Option<String>,
    },
    UserDisabled {
        by: Actor,
    },
    UserEnabled {
        by: Actor,
    },
    PasswordChanged {
        by: Actor,
    },
    ScopeSet {
        scope: String,
        description: String,
        by: Actor,
    },
    GroupAdded {
        group: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        provider: Option<String>,
        by: Actor,
    },
    GroupRemoved {
        group: String,
        by: Actor,
    },
    /// The person (the record's user) joined a group; `source` says how.
    MemberAdded {
        group: String,
        source: crate::model::MemberSource,
        by: Actor,
    },
    MemberRemoved {
        group: String,
        source: crate::model::MemberSource,
        by: Actor,
    },
    /// The groups a scope is restricted to (none: open to everyone again).
    ScopeGroupsSet {
        scope: String,
        groups: Vec<String>,
        by: Actor,
    },
    /// The narrower scopes a scope includes (none: it includes nothing again).
    ScopeIncludesSet {
        scope: String,
        includes: Vec<String>,
        by: Actor,
    },
    /// The person (the record's user) gave their own token for an upstream.
    AccountConnected {
        upstream: String,
    },
    /// The upstream refused to refresh the person's token: they connect again.
    AccountNeedsConsent {
        upstream: String,
    },
    /// The person's token for an upstream was removed.
    AccountDisconnected {
        upstream: String,
        by: Actor,
    },
    /// The person lost scopes their grant held (they left a group, or a scope was
    /// restricted): the grant narrowed, its access tokens carrying them revoked.
    ScopesWithdrawn {
        grant: String,
        scope: ScopeSet,
    },
    /// A preset or a custom URI added to the redirect allow-list.
    RedirectAllowed {
        #[serde(flatten)]
        entry: AllowedEntry,
        by: Actor,
    },
    RedirectDisallowed {
        #[serde(flatten)]
        entry: AllowedEntry,
        by: Actor,
    },
    KeyRotated {
        kid: String,
        by: Actor,
    },
    KeyRetired {
        kid: String,
        by: Actor,
    },
    /// `provider`, `subject` and `email` when signed in through an identity provider.
    LoginSucceeded {
        #[serde(skip_serializing_if = "Option::is_none")]
        provider: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        email: Option<String>,
    },
    LoginFailed {
        username: String,
    },
    IdpLoginRefused {
        provider: String,
        reason: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        email: Option<String>,
        /// The provider's own `error` code, when it sent one.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    IdpIdentityLinked {
        provider: String,
        subject: String,
        email: Option<String>,
        by: &'static str,
    },
    /// A trusted provider's ID-JAG accepted: a person's grant to a client, by the
    /// provider's word (enterprise-managed authorization).
    IdJagAccepted {
        provider: String,
        subject: String,
        scope: ScopeSet,
        grant: String,
    },
    /// A trusted issuer's access token was exchanged for one of ours (RFC 8693).
    TokenExchanged {
        provider: String,
        subject: String,
        scope: ScopeSet,
        grant: String,
    },
    /// An identity provider trusted for ID-JAGs, or no longer.
    IssuerTrusted {
        provider: String,
        issuer: String,
        by: Actor,
    },
    IssuerDistrusted {
        provider: String,
        by: Actor,
    },
    /// An identity provider added or replaced (never its secret).
    IdpAdded {
        provider: String,
        kind: String,
        issuer: String,
        by: Actor,
    },
    IdpRemoved {
        provider: String,
        by: Actor,
    },
    /// Tool calls the guard decided on since the previous record, per caller, client,
    /// tool, operation and outcome (one record per call would cost more than the call).
    ToolCalls {
        tool: String,
        operation: Option<String>,
        allowed: bool,
        needed: String,
        username: Option<String>,
        count: u64,
        since: i64,
    },
}

/// A redirect allow-list entry as the audit names it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AllowedEntry {
    Preset(String),
    Uri(String),
}

/// Every event name, for the audit page's filter.
pub const NAMES: &[&str] = &[
    "account_connected",
    "account_disconnected",
    "account_needs_consent",
    "client_created",
    "client_deleted",
    "client_document_fetched",
    "client_evicted",
    "client_registered",
    "code_replay",
    "consent_denied",
    "consent_granted",
    "grant_revoked",
    "group_added",
    "group_removed",
    "idp_added",
    "id_jag_accepted",
    "idp_identity_linked",
    "idp_login_refused",
    "idp_removed",
    "issuer_distrusted",
    "issuer_trusted",
    "key_retired",
    "key_rotated",
    "login_failed",
    "login_succeeded",
    "member_added",
    "member_removed",
    "password_changed",
    "redirect_allowed",
    "redirect_disallowed",
    "refresh_reuse",
    "scope_groups_set",
    "scope_includes_set",
    "scope_set",
    "scopes_withdrawn",
    "token_exchanged",
    "token_issued",
    "token_refreshed",
    "token_revoked",
    "tool_calls",
    "user_created",
    "user_disabled",
    "user_enabled",
];

impl Event {
    /// The event's name and its fields, as stored.
    pub fn record(&self) -> (String, Value) {
        let mut v = serde_json::to_value(self).expect("events serialize");
        let name = match v.as_object_mut().and_then(|o| o.remove("event")) {
            Some(Value::String(n)) => n,
            _ => unreachable!("an internally tagged enum carries its tag"),
        };
        (name, v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_its_name_and_its_fields() {
        let (name, detail) = Event::GrantRevoked {
            grant: "g1".into(),
            by: Actor::Operator,
        }
        .record();
        assert_eq!(name, "grant_revoked");
        assert_eq!(detail, serde_json::json!({"grant": "g1", "by": "operator"}));
        let (name, detail) = Event::RedirectAllowed {
            entry: AllowedEntry::Preset("claude".into()),
            by: Actor::Operator,
        }
        .record();
        assert_eq!(name, "redirect_allowed");
        assert_eq!(
            detail,
            serde_json::json!({"preset": "claude", "by": "operator"})
        );
    }

    #[test]
    fn every_event_name_is_listed() {
        let samples = [
            Event::ConsentDenied {},
            Event::TokenRevoked {
                kind: "access_token",
            },
            Event::LoginSucceeded {
                provider: None,
                subject: None,
                email: None,
            },
            Event::ClientEvicted { reason: "cap" },
        ];
        for e in samples {
            let (name, _) = e.record();
            assert!(NAMES.contains(&name.as_str()), "{name}");
        }
    }
}
