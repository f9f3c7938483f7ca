//! The rules' settings: who we are (issuer, resources) and how long things live.
//! The HTTP edge has its own (cookies, rate limits, proxies) in `mcpgate-server`.

use mcpgate_core::ScopeSet;

#[derive(Debug, Clone)]
pub struct Settings {
    /// The issuer identifier, exact to the last character (RFC 8414 §2), with no
    /// trailing slash; it may carry a path (`https://auth.example.com/oauth/2.1`).
    /// Every absolute URL derives from it.
    pub issuer: String,
    /// The canonical URI of this instance's own MCP endpoint (RFC 8707): the audience
    /// when a request names no resource.
    pub resource: String,
    /// Further protected resources (separately deployed MCP servers) this server may
    /// issue tokens for. A request for any other resource is `invalid_target`.
    pub extra_resources: Vec<String>,
    /// Scopes granted when a request names none (RFC 6749 §3.3).
    pub default_scopes: ScopeSet,
    /// Access-token lifetime: short, because a JWT cannot be recalled from a verifier
    /// that does not hear about revocations (MCP "Token Theft").
    pub access_ttl_secs: i64,
    pub refresh_ttl_secs: i64,
    /// Authorization codes live one minute (OAuth 2.1 §4.1.2 recommends ≤ 10 minutes).
    pub code_ttl_secs: i64,
    /// Pending authorization requests (between /authorize and consent).
    pub request_ttl_secs: i64,
    /// How long a rotated refresh token's answer is repeated to a duplicate request.
    pub refresh_grace_secs: i64,
    /// Most dynamic registrations kept at once.
    pub max_dynamic_clients: i64,
    /// Unused dynamic registrations are deleted after this long.
    pub unused_client_ttl_secs: i64,
    /// Upstreams that want each person's own account (connected accounts), by name.
    pub connectable: std::collections::BTreeMap<String, Connectable>,
    /// Upstreams reached with each person's token exchanged at their authorization
    /// server (RFC 8693, `credentials = "token_exchange"`), by name.
    pub exchanges: std::collections::BTreeMap<String, OAuthUpstream>,
}

/// An upstream where each person acts as themselves.
#[derive(Debug, Clone)]
pub struct Connectable {
    /// What the connect page names: the token asked for, or the server signed in to.
    pub label: String,
    pub kind: ConnectKind,
}

#[derive(Debug, Clone)]
pub enum ConnectKind {
    /// The person pastes a token once (`credentials = "per_person_token"`).
    Token,
    /// mcpgate is an OAuth client of the upstream (`credentials = "oauth"`).
    OAuth(OAuthUpstream),
}

/// An upstream reached through its own authorization server.
#[derive(Clone)]
pub struct OAuthUpstream {
    /// The upstream's MCP endpoint: where discovery starts (RFC 9728).
    pub url: String,
    /// A registration the operator made there; otherwise a Client ID Metadata Document
    /// or dynamic registration (RFC 7591).
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// Scopes asked for; the upstream's `scopes_supported` when none.
    pub scopes: Option<Vec<String>>,
    /// The issuer the upstream's metadata must name (the operator's pin).
    pub issuer: Option<String>,
}

impl std::fmt::Debug for OAuthUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthUpstream")
            .field("url", &self.url)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("scopes", &self.scopes)
            .field("issuer", &self.issuer)
            .finish()
    }
}

impl Settings {
    pub fn new(issuer: &str, resource: &str, default_scopes: ScopeSet) -> Self {
        Self {
            issuer: issuer.to_owned(),
            resource: resource.to_owned(),
            extra_resources: Vec::new(),
            default_scopes,
            access_ttl_secs: 900,
            refresh_ttl_secs: 30 * 24 * 3600,
            code_ttl_secs: 60,
            request_ttl_secs: 600,
            refresh_grace_secs: 10,
            max_dynamic_clients: 10_000,
            unused_client_ttl_secs: 24 * 3600,
            connectable: Default::default(),
            exchanges: Default::default(),
        }
    }

    /// Every audience this server issues tokens for.
    pub fn resources(&self) -> Vec<String> {
        std::iter::once(self.resource.clone())
            .chain(self.extra_resources.iter().cloned())
            .collect()
    }

    pub fn expectations(&self) -> mcpgate_core::jwt::Expectations {
        mcpgate_core::jwt::Expectations {
            issuer: self.issuer.clone(),
            audiences: self.resources(),
        }
    }

    /// An endpoint under the issuer: `{issuer}{path}`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }

    /// How long a revocation must be remembered after it was made: the longest an
    /// access token issued before it can still be presented.
    pub fn revocation_cover(&self) -> i64 {
        self.access_ttl_secs + mcpgate_core::jwt::LEEWAY_SECS + 60
    }
}
