//! The authorization server's records, typed: scopes are [`ScopeSet`]s, kinds and
//! authentication methods enums, parsed once where the store reads them.

use mcpgate_core::ScopeSet;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub password_hash: String,
    pub is_admin: bool,
    pub disabled: bool,
    pub created_at: i64,
}

/// A person's account at an identity provider, linked to a user here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserIdentity {
    pub provider: String,
    pub subject: String,
    pub user_id: String,
    pub email: Option<String>,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
}

/// How a client came to be known (MCP "Client Registration").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientKind {
    /// Created by an operator or a signed-in person.
    Preregistered,
    /// RFC 7591 dynamic registration: unverified, so the consent page says so.
    Dynamic,
    /// A Client ID Metadata Document fetched from the `client_id` URL.
    MetadataDocument,
}

impl ClientKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Preregistered => "preregistered",
            Self::Dynamic => "dynamic",
            Self::MetadataDocument => "metadata_document",
        }
    }
    /// The kind stored as `s`; anything unknown is the operator's (the least trusted
    /// reading would be `Dynamic`, but only mcpgate writes this column).
    pub fn parse(s: &str) -> Self {
        match s {
            "dynamic" => Self::Dynamic,
            "metadata_document" => Self::MetadataDocument,
            _ => Self::Preregistered,
        }
    }
}

/// How a client authenticates at the token, introspection and revocation endpoints
/// (RFC 7591 §2 `token_endpoint_auth_method`). A client must use the method it was
/// registered with: a secret meant for the `Authorization` header is refused in the
/// form, and the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// A public client: no secret (OAuth 2.1 §2.1).
    None,
    /// The secret in HTTP Basic (RFC 6749 §2.3.1), the default for confidential clients.
    ClientSecretBasic,
    /// The secret in the form body (RFC 6749 §2.3.1).
    ClientSecretPost,
    /// A JWT signed with the client's private key (RFC 7523 §2.2), verified with the
    /// keys it registered ([`ClientKeys`]).
    PrivateKeyJwt,
}

impl AuthMethod {
    pub const ALL: [AuthMethod; 4] = [
        Self::None,
        Self::ClientSecretBasic,
        Self::ClientSecretPost,
        Self::PrivateKeyJwt,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }

    /// The method named `s`, if it is one mcpgate supports.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// The method of a client created with or without a secret by the operator or a
    /// signed-in person (pages and CLI).
    pub fn for_secret(has_secret: bool) -> Self {
        if has_secret {
            Self::ClientSecretBasic
        } else {
            Self::None
        }
    }
}

#[derive(Debug, Clone)]
pub struct Client {
    pub client_id: String,
    pub secret_hash: Option<String>,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub kind: ClientKind,
    pub auth_method: AuthMethod,
    /// May call the introspection endpoint (a resource server's credentials).
    pub can_introspect: bool,
    pub owner_user_id: Option<String>,
    pub registration_hash: Option<String>,
    /// The registration metadata as received (RFC 7591 §3.2.1 echoes it back), or a
    /// metadata document as fetched.
    pub metadata: serde_json::Value,
    /// A metadata-document client is fetched again after this time (its
    /// `Cache-Control: max-age`); `None` for every other kind.
    pub fetched_until: Option<i64>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    /// A machine (client_credentials): what the operator lets it get with no person.
    pub machine: Option<Machine>,
    /// The keys of a `private_key_jwt` client.
    pub keys: Option<ClientKeys>,
}

impl Client {
    /// No credential at all: a secret or keys make a client confidential.
    pub fn is_public(&self) -> bool {
        self.secret_hash.is_none() && self.auth_method != AuthMethod::PrivateKeyJwt
    }
}

/// What a machine client may get with the client_credentials grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    pub scopes: ScopeSet,
    /// The resources (RFC 8707) it may get tokens for, in canonical form.
    pub resources: Vec<String>,
}

/// Where a `private_key_jwt` client's public keys are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientKeys {
    /// A JWK Set given at registration.
    Set(serde_json::Value),
    /// A JWK Set fetched (and cached) from this URL.
    Uri(String),
}

#[derive(Debug, Clone)]
pub struct AuthRequest {
    pub id_hash: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: ScopeSet,
    pub state: Option<String>,
    pub code_challenge: String,
    pub resource: String,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone)]
pub struct Grant {
    pub id: String,
    pub user_id: String,
    pub client_id: String,
    pub resource: String,
    pub scope: ScopeSet,
    /// Scopes the client asked for that the person may not hold (their groups do not
    /// allow them), or that were taken back when the person lost them: shown to the
    /// person, never issued.
    pub withheld: ScopeSet,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// When the grant ends, as the person chose at consent; `None`: until revoked. No
    /// token outlives it.
    pub expires_at: Option<i64>,
}

impl Grant {
    /// Live at `now`: not revoked, not ended.
    pub fn is_live(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }
}

#[derive(Debug, Clone)]
pub struct AuthCode {
    pub code_hash: String,
    pub client_id: String,
    pub user_id: String,
    pub grant_id: String,
    pub redirect_uri: String,
    pub scope: ScopeSet,
    pub resource: String,
    pub code_challenge: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub family_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TokenFamily {
    pub id: String,
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub scope: ScopeSet,
    pub resource: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub revoked_reason: Option<String>,
    /// The DPoP key the family is bound to (RFC 9449 §5): refreshing it needs a proof
    /// of that key, and its access tokens carry it (`cnf.jkt`).
    pub dpop_jkt: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RefreshToken {
    pub token_hash: String,
    pub family_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub rotated_at: Option<i64>,
    pub grace_answer: Option<String>,
    pub grace_until: Option<i64>,
}

/// What [`crate::Store::redeem_code_into_family`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exchange {
    /// The code is spent, the family and its first refresh token written; they end
    /// at `ends` (Unix time): the family's end, or the grant's if that came sooner.
    Issued { ends: i64 },
    /// Another request spent the code first, or it expired: nothing written.
    CodeSpent,
    /// The code's grant was revoked (or is gone): nothing written, the code unspent.
    GrantRevoked,
}

/// What redeeming a code found.
#[derive(Debug)]
pub enum Redeem {
    /// First use: the code is now spent.
    Redeemed(AuthCode),
    /// Already used (a replay) or expired; carries the row so its tokens can be revoked.
    Spent(AuthCode),
    NotFound,
}

/// An audit event as recorded.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub seq: i64,
    pub at: i64,
    pub event: String,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub detail: String,
}

/// A grant joined with what a person needs to recognise it.
#[derive(Debug, Clone)]
pub struct GrantView {
    pub id: String,
    pub user_id: String,
    /// Who granted it: the person's user name (their id if the account is gone).
    pub username: String,
    pub client_id: String,
    pub client_name: String,
    pub client_kind: String,
    pub resource: String,
    pub scope: String,
    /// See [`Grant::withheld`].
    pub withheld: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    /// See [`Grant::expires_at`].
    pub expires_at: Option<i64>,
}

/// An audit event to write in a batch ([`crate::store::AuditLog::audit_batch`]);
/// `event` and `detail` come from [`crate::audit::Event::record`].
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
#[derive(Clone)]
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
    /// The claim (ID token or userinfo) listing the person's groups at the provider;
    /// `None`: the provider's groups are not read.
    pub groups_claim: Option<String>,
    /// A scope to ask for so that the provider sends the groups claim.
    pub groups_scope: Option<String>,
    pub created_at: i64,
}

impl std::fmt::Debug for IdentityProviderRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityProviderRow")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("groups_claim", &self.groups_claim)
            .field("groups_scope", &self.groups_scope)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

/// A sign-in under way at a provider (between the redirect and the callback).
#[derive(Debug, Clone)]
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

/// What the audit page filters by; every field is optional.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub event: Option<String>,
    /// Inclusive lower bound, Unix seconds.
    pub from: Option<i64>,
    /// Exclusive upper bound, Unix seconds.
    pub to: Option<i64>,
}

/// One person's tool calls through one client on one day (from a report's start):
/// allowed and refused apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallDay {
    pub user_id: String,
    pub client_id: String,
    /// Days since the report's start.
    pub day: usize,
    pub allowed: i64,
    pub refused: i64,
}

/// Tool calls and sign-ins in one time bucket of the activity chart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Activity {
    pub tool_calls: i64,
    pub sign_ins: i64,
}

/// The outcome of reserving a sign-in attempt
/// ([`crate::store::Throttles::reserve_login_attempt`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The attempt may check the password; it already counts as a failure until
    /// [`crate::store::Throttles::clear_login_throttle`] is called.
    Granted,
    /// Locked until this time (seconds since the epoch).
    LockedUntil(i64),
}

/// A group of people, to which scopes can be restricted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub description: String,
    /// The identity provider whose groups claim sets the provider memberships of this
    /// group at each sign-in through it.
    pub provider: Option<String>,
    pub created_at: i64,
}

/// Where a membership comes from. A person may be a member by both; the provider's
/// claim replaces only its own memberships.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberSource {
    /// Added by an operator or an administrator.
    Manual,
    /// The provider's groups claim at the person's last sign-in through it.
    Provider,
}

impl MemberSource {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberSource::Manual => "manual",
            MemberSource::Provider => "provider",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "manual" => Some(MemberSource::Manual),
            "provider" => Some(MemberSource::Provider),
            _ => None,
        }
    }
}

/// A member of a group, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user_id: String,
    pub username: String,
    pub source: MemberSource,
}

/// A step of a client's connection, as the doctor names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// Dynamic registration, or a metadata document fetched.
    Register,
    /// The authorization request.
    Authorize,
    /// The person's answer on the consent page.
    Consent,
    /// The code exchanged at the token endpoint.
    Token,
    /// The first call at an MCP endpoint with the grant's token.
    Call,
    Refresh,
}

impl StepKind {
    pub const ALL: [StepKind; 6] = [
        StepKind::Register,
        StepKind::Authorize,
        StepKind::Consent,
        StepKind::Token,
        StepKind::Call,
        StepKind::Refresh,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Register => "register",
            StepKind::Authorize => "authorize",
            StepKind::Consent => "consent",
            StepKind::Token => "token",
            StepKind::Call => "call",
            StepKind::Refresh => "refresh",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// How a step went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Refused,
    /// Begun and not (yet) answered: the consent page shown.
    Pending,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Pending => "pending",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Outcome::Ok, Outcome::Refused, Outcome::Pending]
            .into_iter()
            .find(|o| o.as_str() == s)
    }
}

/// One step of one client's connection, as it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientStep {
    pub client_id: String,
    pub at: i64,
    pub step: StepKind,
    pub outcome: Outcome,
    /// What happened, for people: why it was refused, what was granted.
    pub detail: String,
}

/// An identity provider trusted to issue ID-JAGs (enterprise-managed authorization):
/// its ID-JAGs name people here by (its name, their subject), like a sign-in through it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedIssuer {
    /// Short name, as identities and the audit name the provider.
    pub name: String,
    /// The `iss` of its ID-JAGs, compared exactly.
    pub issuer: String,
    pub jwks_uri: String,
    /// Email domains whose people it may vouch for (none: any); see admission.
    pub allowed_domains: Vec<String>,
    /// Create an account for a verified email of an allowed domain.
    pub auto_create: bool,
    /// Audiences of its access tokens that may be exchanged here (RFC 8693 subject
    /// tokens); none: it is trusted for ID-JAGs only.
    pub exchange_audiences: Vec<String>,
    /// The clients (ids of this server's) that may exchange them: the operator's word
    /// that they are the gateway in front, not any app holding a person's token.
    pub exchange_clients: Vec<String>,
    pub created_at: i64,
}

/// A person's connected account at an upstream (its token is kept sealed, apart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub upstream: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A connection's sealed secret, opened, with the generation its refreshes count.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredConnection {
    pub secret: String,
    /// Moves by one at each refresh (and each new connection): a refresh is written
    /// only over the generation it started from.
    pub generation: i64,
}

/// How mcpgate identifies itself to an upstream's authorization server.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamClient {
    pub client_id: String,
    /// For `client_secret_basic` / `client_secret_post`; sealed at rest.
    pub secret: Option<String>,
}

/// A person on their way through an upstream's sign-in (found by the state's hash).
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectAttempt {
    pub user_id: String,
    pub upstream: String,
    /// PKCE code verifier (RFC 7636), sealed at rest.
    pub verifier: String,
    /// The connect page it spends once connected (none from the connected-apps page).
    pub request_hash: Option<String>,
    pub expires_at: i64,
}

// Secrets are never printed, whoever logs these.
impl std::fmt::Debug for StoredConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredConnection")
            .field("secret", &"[redacted]")
            .field("generation", &self.generation)
            .finish()
    }
}

impl std::fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamClient")
            .field("client_id", &self.client_id)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl std::fmt::Debug for ConnectAttempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectAttempt")
            .field("user_id", &self.user_id)
            .field("upstream", &self.upstream)
            .field("verifier", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A page where one person gives their token for one upstream, good once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    pub user_id: String,
    pub upstream: String,
    /// The MCP elicitation it answers.
    pub elicitation_id: String,
    pub expires_at: i64,
    /// Scopes the upstream said it needs beyond those granted (a step-up).
    pub scope: Option<String>,
}
