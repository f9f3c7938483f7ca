//! Settings of the authorization server's HTTP edge: cookies, sign-in, rate limits,
//! proxies, beside the rules' own settings (issuer, resources, lifetimes:
//! [`mcpgate_domain::Settings`], the field [`ServerConfig::rules`]).

use mcpgate_core::ScopeSet;
use mcpgate_domain::Settings;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The rules' settings: issuer, resources, lifetimes.
    pub rules: Settings,
    pub session_ttl_secs: i64,
    /// Cookies get `Secure` when the issuer is https (and the `__Host-` prefix as well
    /// when it has no path, see [`Self::host_prefixed_cookies`]).
    pub secure_cookies: bool,
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
    /// Sign-ins started at an identity provider (each stores a pending sign-in and may
    /// make this server fetch the provider's discovery document) per source address
    /// per minute; 0 is no limit.
    pub idp_starts_per_source_per_minute: i64,
    /// Reverse proxies whose forwarding headers name the client (see
    /// [`crate::forwarded`]); none by default.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// DPoP proofs must carry a nonce this process gives (RFC 9449 §8, §9); `None`:
    /// no nonce is required. Shared with this process's guards.
    pub dpop_nonces: Option<std::sync::Arc<mcpgate_core::dpop::Nonces>>,
}

impl ServerConfig {
    pub fn new(issuer: &str, resource: &str, default_scopes: ScopeSet) -> Self {
        Self {
            rules: Settings::new(issuer, resource, default_scopes),
            session_ttl_secs: 8 * 3600,
            secure_cookies: issuer.starts_with("https://"),
            password_login: true,
            hash_slots: std::sync::Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get() * 2),
            )),
            login_per_source_per_minute: 30,
            register_per_source_per_minute: 60,
            token_per_source_per_minute: 600,
            document_authorizations_per_source_per_minute: 60,
            idp_starts_per_source_per_minute: 60,
            trusted_proxies: Vec::new(),
            dpop_nonces: None,
        }
    }

    /// Whether cookie names carry the `__Host-` prefix (RFC 6265bis §4.1.3.2): only
    /// with `Secure` and `Path=/`, so over https at the origin's root, never under a
    /// path (whose cookies are scoped to it) nor over plain http.
    pub fn host_prefixed_cookies(&self) -> bool {
        self.secure_cookies && crate::mount::base_path(&self.rules.issuer).is_empty()
    }

    /// Where RFC 8414 §3.1 puts the metadata: the issuer's path inserted after
    /// `/.well-known/oauth-authorization-server` at its origin.
    pub fn metadata_url(&self) -> String {
        let base = crate::mount::base_path(&self.rules.issuer);
        let origin = self
            .rules
            .issuer
            .strip_suffix(base.as_str())
            .unwrap_or(&self.rules.issuer);
        format!("{origin}/.well-known/oauth-authorization-server{base}")
    }
}
