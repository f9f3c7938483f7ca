//! Settings of the authorization server.

use mcpgate_core::ScopeSet;

#[derive(Debug, Clone)]
pub struct AsConfig {
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
    pub session_ttl_secs: i64,
    /// Cookies get `Secure` when the issuer is https.
    pub secure_cookies: bool,
    /// Most dynamic registrations kept at once.
    pub max_dynamic_clients: i64,
    /// Unused dynamic registrations are deleted after this long.
    pub unused_client_ttl_secs: i64,
    /// Offer sign-in with a username and password (turn off when every person signs in
    /// through an identity provider).
    pub password_login: bool,
    /// Password hashes computed at once (argon2id takes 19 MiB each): requests beyond
    /// get "try again" (503 with `Retry-After`) instead of queueing without bound.
    pub hash_slots: std::sync::Arc<tokio::sync::Semaphore>,
    /// Failed sign-in attempts per source address per minute, beside the per-account
    /// limit (successful ones are refunded).
    pub login_per_source_per_minute: i64,
    /// Registrations (RFC 7591) per source address per minute; 0 is no limit.
    pub register_per_source_per_minute: i64,
    /// Token requests per source address per minute; 0 is no limit.
    pub token_per_source_per_minute: i64,
    /// Authorization requests naming a metadata-document client (each may fetch a
    /// stranger's URL) per source address per minute; 0 is no limit.
    pub document_authorizations_per_source_per_minute: i64,
    /// Reverse proxies whose forwarding headers name the client (see
    /// [`crate::forwarded`]); none by default.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Tests only: fetch metadata documents from loopback addresses.
    pub allow_private_document_hosts: bool,
    /// Tests only: fetch `https://` document URLs with this scheme instead.
    pub document_scheme_override: Option<String>,
}

impl AsConfig {
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
            session_ttl_secs: 8 * 3600,
            secure_cookies: issuer.starts_with("https://"),
            max_dynamic_clients: 10_000,
            unused_client_ttl_secs: 24 * 3600,
            password_login: true,
            hash_slots: std::sync::Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get() * 2),
            )),
            login_per_source_per_minute: 30,
            register_per_source_per_minute: 60,
            token_per_source_per_minute: 600,
            document_authorizations_per_source_per_minute: 60,
            trusted_proxies: Vec::new(),
            allow_private_document_hosts: false,
            document_scheme_override: None,
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

    /// Where RFC 8414 §3.1 puts the metadata: the issuer's path inserted after
    /// `/.well-known/oauth-authorization-server` at its origin.
    pub fn metadata_url(&self) -> String {
        let base = crate::mount::base_path(&self.issuer);
        let origin = self
            .issuer
            .strip_suffix(base.as_str())
            .unwrap_or(&self.issuer);
        format!("{origin}/.well-known/oauth-authorization-server{base}")
    }
}
