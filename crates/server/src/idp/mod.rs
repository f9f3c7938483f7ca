//! Upstream identity providers for the sign-in page. mcpgate stays the authorization
//! server MCP clients talk to (its consent, its tokens, its resources); a provider only
//! proves who the person is.
//!
//! - [`oidc`]: any OpenID Connect provider (discovery, authorization code with PKCE
//!   S256, `state`, `nonce`, ID token checked by the `openidconnect` library), with the
//!   quirks of Google (`hd`) and Microsoft Entra ID (a tenant's issuer; no RFC 8707
//!   `resource` is ever sent upstream).
//! - [`github`]: GitHub, which is OAuth 2.0 without OpenID Connect: the person is the
//!   user API's `id`, the email the verified primary one of the emails API.
//!
//! Who may enter once a provider has vouched for someone is the domain's rule
//! ([`mcpgate_domain::flows::admission`]).

pub mod github;
pub mod oidc;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mcpgate_core::secret::Secret;
use mcpgate_domain::model::IdentityProviderRow;
use mcpgate_domain::store::Store;

/// Which protocol and quirks a provider has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// Any OpenID Connect provider (Okta, Keycloak, Auth0, …).
    Oidc,
    /// Google: OpenID Connect; the Workspace domain is the ID token's `hd`.
    Google,
    /// Microsoft Entra ID: OpenID Connect with a tenant in the issuer.
    Entra,
    /// GitHub: OAuth 2.0 and its REST API.
    Github,
}

impl Preset {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "oidc" => Self::Oidc,
            "google" => Self::Google,
            "entra" => Self::Entra,
            "github" => Self::Github,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Oidc => "oidc",
            Self::Google => "google",
            Self::Entra => "entra",
            Self::Github => "github",
        }
    }
    /// The issuer to use when the operator names none.
    pub fn default_issuer(self) -> Option<&'static str> {
        match self {
            Self::Google => Some("https://accounts.google.com"),
            Self::Github => Some("https://github.com"),
            Self::Oidc | Self::Entra => None,
        }
    }
    pub fn default_display_name(self) -> &'static str {
        match self {
            Self::Oidc => "",
            Self::Google => "Google",
            Self::Entra => "Microsoft",
            Self::Github => "GitHub",
        }
    }
}

/// One provider, as configured (file) or stored (`mcpgate idp add`).
#[derive(Debug, Clone)]
pub struct IdpSettings {
    /// Short name used in URLs: `/login/idp/<name>/callback`.
    pub name: String,
    /// Shown on the button: "Continue with <display_name>".
    pub display_name: String,
    pub preset: Preset,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// Email domains whose people may get an account on first sign-in.
    pub allowed_domains: Vec<String>,
    /// Create an account on first sign-in (only for a verified email of an allowed domain).
    pub auto_create: bool,
    /// The claim listing the person's groups (ID token, else userinfo); when set, each
    /// sign-in sets the person's memberships of the groups linked to this provider.
    pub groups_claim: Option<String>,
    /// A scope to ask for so that the provider sends that claim (Okta's `groups`).
    pub groups_scope: Option<String>,
}

/// Why settings are refused.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

impl IdpSettings {
    /// Checks what `mcpgate idp add` and the configuration file give: a URL-safe name,
    /// an https issuer (http only on loopback), a tenant for Entra, and no
    /// auto-creation without an allowed domain.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 32
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !name_ok {
            return Err(SettingsError(format!(
                "provider name {:?} must be 1-32 characters of a-z, 0-9 and -",
                self.name
            )));
        }
        let url = url::Url::parse(&self.issuer)
            .map_err(|_| SettingsError(format!("issuer {:?} is not a URL", self.issuer)))?;
        let loopback = url
            .host_str()
            .is_some_and(|h| h == "localhost" || h == "127.0.0.1" || h == "[::1]");
        if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
            return Err(SettingsError(format!(
                "issuer {} must be https (http only on loopback)",
                self.issuer
            )));
        }
        if self.preset == Preset::Entra {
            // The multi-tenant endpoints publish a templated issuer that no ID token
            // carries; a tenant's own issuer is the one to trust.
            let path = url.path().to_ascii_lowercase();
            if ["/common/", "/organizations/", "/consumers/", "{tenantid}"]
                .iter()
                .any(|t| path.contains(t))
            {
                return Err(SettingsError(
                    "Entra: give your tenant's issuer, https://login.microsoftonline.com/<tenant-id>/v2.0".into(),
                ));
            }
        }
        if self.client_id.is_empty() || self.client_id.len() > 512 {
            return Err(SettingsError("a client id is required".into()));
        }
        if self.client_secret.expose().is_empty() {
            return Err(SettingsError("a client secret is required".into()));
        }
        if self.auto_create && self.allowed_domains.is_empty() {
            return Err(SettingsError(
                "--auto-create needs at least one --allowed-domain".into(),
            ));
        }
        let token = |v: &Option<String>| {
            v.as_ref().is_none_or(|c| {
                !c.is_empty()
                    && c.len() <= 128
                    && c.bytes().all(|b| b.is_ascii_graphic() && b != b'"')
            })
        };
        if !token(&self.groups_claim) || !token(&self.groups_scope) {
            return Err(SettingsError(
                "a groups claim or scope is 1-128 printable characters without spaces".into(),
            ));
        }
        if self.preset == Preset::Github && self.groups_claim.is_some() {
            return Err(SettingsError(
                "GitHub has no groups claim (it is not OpenID Connect)".into(),
            ));
        }
        if self.groups_scope.is_some() && self.groups_claim.is_none() {
            return Err(SettingsError("--groups-scope needs --groups-claim".into()));
        }
        if self.display_name.is_empty() || self.display_name.len() > 64 {
            return Err(SettingsError(
                "the display name must be 1-64 characters".into(),
            ));
        }
        Ok(())
    }

    pub fn from_row(r: &IdentityProviderRow) -> Option<Self> {
        Some(Self {
            name: r.name.clone(),
            display_name: r.display_name.clone(),
            preset: Preset::parse(&r.kind)?,
            issuer: r.issuer.clone(),
            client_id: r.client_id.clone(),
            client_secret: Secret::new(r.client_secret.clone()),
            allowed_domains: serde_json::from_str(&r.allowed_domains).unwrap_or_default(),
            auto_create: r.auto_create,
            groups_claim: r.groups_claim.clone(),
            groups_scope: r.groups_scope.clone(),
        })
    }

    pub fn to_row(&self, now: i64) -> IdentityProviderRow {
        IdentityProviderRow {
            name: self.name.clone(),
            display_name: self.display_name.clone(),
            kind: self.preset.as_str().into(),
            issuer: self.issuer.clone(),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.expose().to_owned(),
            allowed_domains: serde_json::to_string(&self.allowed_domains).unwrap_or_default(),
            auto_create: self.auto_create,
            groups_claim: self.groups_claim.clone(),
            groups_scope: self.groups_scope.clone(),
            created_at: now,
        }
    }

    /// Whether an email domain (or a Google Workspace `hd`) is one of the allowed ones.
    pub fn domain_allowed(&self, domain: &str) -> bool {
        self.trust().domain_allowed(domain)
    }

    /// What this provider is trusted for, as the admission rules read it.
    pub fn trust(&self) -> mcpgate_domain::flows::admission::Trust<'_> {
        mcpgate_domain::flows::admission::Trust {
            name: &self.name,
            allowed_domains: &self.allowed_domains,
            auto_create: self.auto_create,
            hosted_domains: self.preset == Preset::Google,
        }
    }
}

/// Who the provider says the person is, after every check of the protocol (the
/// domain's [`Vouched`], which decides who may enter).
pub use mcpgate_domain::flows::admission::Vouched as Identity;

/// What went wrong at or with the provider. The text is for the log; people see a
/// page chosen by the variant.
#[derive(Debug, thiserror::Error)]
pub enum IdpError {
    #[error("provider unreachable or misconfigured: {0}")]
    Discovery(String),
    #[error("the provider refused the code: {0}")]
    Exchange(String),
    #[error("the ID token is not valid: {0}")]
    IdToken(String),
    #[error("the provider's user information could not be read: {0}")]
    UserInfo(String),
}

/// Where a sign-in goes next, and the secrets to keep until the provider calls back.
pub struct Started {
    pub authorize_url: String,
    pub state: Secret,
    pub nonce: Secret,
    pub pkce_verifier: Secret,
}

/// The providers of the sign-in page: those of the configuration file, then those
/// stored by `mcpgate idp add` (read on use, so a provider added while the server runs
/// appears at once). Discovered metadata is cached for a few minutes.
pub struct Registry {
    configured: Vec<IdpSettings>,
    http: crate::outbound::Outbound,
    cache: Mutex<HashMap<String, (Instant, std::sync::Arc<oidc::Discovered>)>>,
}

/// How long discovered metadata and keys are reused before being fetched again.
const DISCOVERY_TTL: Duration = Duration::from_secs(300);

impl Registry {
    pub fn new(configured: Vec<IdpSettings>) -> Self {
        Self {
            configured,
            http: Default::default(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Every provider; a configured one hides a stored one of the same name.
    pub async fn all(&self, store: &dyn Store) -> Vec<IdpSettings> {
        let mut out = self.configured.clone();
        match store.identity_providers().await {
            Ok(rows) => {
                for r in rows {
                    if out.iter().any(|p| p.name == r.name) {
                        continue;
                    }
                    if let Some(p) = IdpSettings::from_row(&r) {
                        out.push(p);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "reading identity providers failed"),
        }
        out
    }

    pub async fn find(&self, store: &dyn Store, name: &str) -> Option<IdpSettings> {
        self.all(store).await.into_iter().find(|p| p.name == name)
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        self.http.client()
    }

    /// Starts a sign-in at `p`; the person's browser goes to `authorize_url`.
    pub async fn begin(&self, p: &IdpSettings, redirect_uri: &str) -> Result<Started, IdpError> {
        match p.preset {
            Preset::Github => github::begin(p, redirect_uri),
            _ => oidc::begin(&*self.discovered(p).await?, p, redirect_uri),
        }
    }

    /// Finishes a sign-in: redeems the code and checks everything the protocol asks.
    #[tracing::instrument(level = "debug", target = "mcpgate::outbound", name = "identity provider",
        skip_all, fields(otel.kind = "client", idp = %p.name))]
    pub async fn finish(
        &self,
        p: &IdpSettings,
        redirect_uri: &str,
        code: &str,
        nonce: &str,
        pkce_verifier: &str,
    ) -> Result<Identity, IdpError> {
        match p.preset {
            Preset::Github => github::finish(self, p, redirect_uri, code, pkce_verifier).await,
            _ => {
                let d = self.discovered(p).await?;
                let r = oidc::finish(self, &d, p, redirect_uri, code, nonce, pkce_verifier).await;
                if matches!(r, Err(IdpError::IdToken(_))) {
                    // Perhaps the provider rotated its keys: discover afresh next time.
                    self.forget(&p.name);
                }
                r
            }
        }
    }

    #[tracing::instrument(level = "debug", target = "mcpgate::outbound", name = "identity provider discovery",
        skip_all, fields(otel.kind = "client", idp = %p.name))]
    async fn discovered(
        &self,
        p: &IdpSettings,
    ) -> Result<std::sync::Arc<oidc::Discovered>, IdpError> {
        let key = format!("{}\n{}", p.name, p.issuer);
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .filter(|(at, _)| at.elapsed() < DISCOVERY_TTL)
            .map(|(_, d)| d.clone());
        if let Some(d) = cached {
            return Ok(d);
        }
        let d = std::sync::Arc::new(oidc::discover(self, &p.issuer).await?);
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, (Instant::now(), d.clone()));
        Ok(d)
    }

    fn forget(&self, name: &str) {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|k, _| !k.starts_with(&format!("{name}\n")));
    }
}
