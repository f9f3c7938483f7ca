//! Configuration: defaults, then an optional TOML file, then environment and flags
//! (clap reads `MCPGATE_*` variables for each flag, so the last two merge there).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;
use url::Url;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./mcpgate-data";

/// What a TOML config file may set. Every field is optional; flags and environment win.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub public_url: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database: Option<String>,
    /// File holding the key that seals signing keys and provider secrets at rest.
    pub key_encryption_key_file: Option<PathBuf>,
    pub allowed_origins: Option<Vec<String>>,
    /// Offer the username and password form (default true).
    pub password_login: Option<bool>,
    /// Identity providers of the sign-in page (`[[idp]]` tables).
    pub idp: Option<Vec<IdpFileEntry>>,
    /// Reverse proxies (CIDR blocks) whose `Forwarded` / `X-Forwarded-For` name the
    /// client; none by default.
    pub trusted_proxies: Option<Vec<String>>,
    /// Require DPoP proofs to carry this instance's nonce (default false).
    pub dpop_nonces: Option<bool>,
    /// `[rate_limits]`: requests per source address per minute.
    pub rate_limits: Option<RateLimits>,
    /// Address of the Prometheus `/metrics` listener (off unless set).
    pub metrics_listen: Option<SocketAddr>,
    /// OTLP/HTTP endpoint traces are exported to (off unless set).
    pub otlp_endpoint: Option<String>,
    /// Seconds in-flight requests may take to finish on shutdown (default 10).
    pub shutdown_grace: Option<u64>,
    /// `[[upstream]]` tables: MCP servers to protect, each at `/mcp/<name>`.
    #[serde(default)]
    pub upstream: Vec<mcpgate_gateway::UpstreamConfig>,
}

/// Requests per source address per minute, per endpoint (0 turns one off; unset keeps
/// the default). The counters are in the database, so instances on one database
/// share them.
#[derive(Debug, Default, Clone, Copy, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct RateLimits {
    /// Failed sign-ins per source address per minute (default 30).
    #[arg(long = "rate-limit-login", env = "MCPGATE_RATE_LIMIT_LOGIN", value_parser = clap::value_parser!(i64).range(0..=1_000_000))]
    pub login: Option<i64>,
    /// Dynamic registrations per source address per minute (default 60).
    #[arg(long = "rate-limit-register", env = "MCPGATE_RATE_LIMIT_REGISTER", value_parser = clap::value_parser!(i64).range(0..=1_000_000))]
    pub register: Option<i64>,
    /// Token requests per source address per minute (default 600).
    #[arg(long = "rate-limit-token", env = "MCPGATE_RATE_LIMIT_TOKEN", value_parser = clap::value_parser!(i64).range(0..=1_000_000))]
    pub token: Option<i64>,
    /// Authorization requests from metadata-document clients per source address per
    /// minute (default 60).
    #[arg(long = "rate-limit-authorize-documents", env = "MCPGATE_RATE_LIMIT_AUTHORIZE_DOCUMENTS", value_parser = clap::value_parser!(i64).range(0..=1_000_000))]
    pub authorize_documents: Option<i64>,
    /// Sign-ins started at an identity provider per source address per minute
    /// (default 60).
    #[arg(long = "rate-limit-idp-start", env = "MCPGATE_RATE_LIMIT_IDP_START", value_parser = clap::value_parser!(i64).range(0..=1_000_000))]
    pub idp_start: Option<i64>,
}

impl RateLimits {
    /// These (flags and environment) over `file` over the defaults already in `cfg`.
    pub fn apply(&self, file: Option<&RateLimits>, cfg: &mut mcpgate_server::ServerConfig) {
        let pick = |f: fn(&RateLimits) -> Option<i64>| f(self).or_else(|| file.and_then(f));
        if let Some(n) = pick(|r| r.login) {
            cfg.login_per_source_per_minute = n;
        }
        if let Some(n) = pick(|r| r.register) {
            cfg.register_per_source_per_minute = n;
        }
        if let Some(n) = pick(|r| r.token) {
            cfg.token_per_source_per_minute = n;
        }
        if let Some(n) = pick(|r| r.authorize_documents) {
            cfg.document_authorizations_per_source_per_minute = n;
        }
        if let Some(n) = pick(|r| r.idp_start) {
            cfg.idp_starts_per_source_per_minute = n;
        }
    }
}

/// The trusted proxies: flags and environment over the file.
pub fn trusted_proxies(
    given: &[String],
    file: &FileConfig,
) -> anyhow::Result<Vec<mcpgate_server::forwarded::IpNet>> {
    let list = if given.is_empty() {
        file.trusted_proxies.clone().unwrap_or_default()
    } else {
        given.to_vec()
    };
    list.iter()
        .map(|s| mcpgate_server::forwarded::parse_cidrs(s))
        .collect::<Result<Vec<_>, _>>()
        .map(|v| v.into_iter().flatten().collect())
        .map_err(|e| anyhow::anyhow!("--trusted-proxies: {e}"))
}

/// An identity provider in the configuration file. The client secret is named, not
/// written: an environment variable or a file holds it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdpFileEntry {
    pub name: String,
    pub preset: Option<String>,
    pub issuer: Option<String>,
    pub client_id: String,
    pub client_secret_env: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub display_name: Option<String>,
    pub allowed_domains: Option<Vec<String>>,
    pub auto_create: Option<bool>,
    pub groups_claim: Option<String>,
    pub groups_scope: Option<String>,
}

impl FileConfig {
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
    }
}

/// Parses and normalizes the public URL: every absolute URL mcpgate emits (issuer,
/// endpoints, resource) derives from it, never from a request's `Host`. It may carry
/// a path (`https://auth.example.com/oauth/2.1`, or a sub-path behind a reverse
/// proxy); everything is then served under that path (RFC 8414 §2 allows issuers
/// with paths). A trailing slash is dropped: the issuer is the URL without it.
pub fn parse_public_url(s: &str) -> anyhow::Result<Url> {
    let url = Url::parse(s).with_context(|| format!("--public-url {s:?} is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!("--public-url must be http or https, got {}", url.scheme());
    }
    // RFC 8414 §2: an issuer has no query or fragment components.
    if url.query().is_some() || url.fragment().is_some() {
        bail!(
            "--public-url must be an origin with an optional path, such as https://auth.example.com/oauth/2.1 (no query or fragment)"
        );
    }
    if !url.username().is_empty() || url.password().is_some() {
        bail!("--public-url must not carry credentials");
    }
    if url.path().contains("//") || url.path().split('/').any(|seg| seg == "." || seg == "..") {
        bail!("--public-url has an empty or dot segment in its path");
    }
    if url.scheme() == "http"
        && !url
            .host_str()
            .is_some_and(mcpgate_mcp::endpoint::is_loopback_host)
    {
        tracing::warn!(
            "--public-url {url} is plain http on a non-loopback host: OAuth requires https \
             outside local development (OAuth 2.1 §1.5)"
        );
    }
    Ok(url)
}

/// The public URL without a trailing slash (the URL type keeps one for an empty path).
pub fn origin_string(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_owned()
}

/// Where the authorization server's state lives: PostgreSQL when a URL is given,
/// else SQLite in the data directory. Opening it is the one place the concrete store
/// is chosen.
#[derive(Debug, Clone)]
pub struct Storage {
    pub url: Option<String>,
    pub dir: PathBuf,
    /// The keys that seal secrets at rest.
    pub kek: crate::secrets::KeyEncryption,
}

impl Storage {
    /// Opens the database, applies migrations, and seals at rest any secret stored in
    /// clear or under a previous key-encryption key. A sealed secret that the
    /// configured keys cannot open is an error here, before anything is served.
    pub async fn open(&self) -> anyhow::Result<mcpgate_store::Database> {
        let store = match &self.url {
            Some(url) => mcpgate_store::Database::open(url).await,
            None => mcpgate_store::Database::open_dir(&self.dir).await,
        };
        let store = store.with_context(|| format!("opening the database ({})", self.describe()))?;
        let store = match self.kek.sealer(&self.dir, self.url.is_some())? {
            Some(sealer) => store.with_sealer(sealer),
            None => {
                tracing::warn!(
                    "signing keys and identity-provider secrets are stored unencrypted: set \
                     {} or --key-encryption-key-file (the same key on every instance)",
                    crate::secrets::KEY_ENV
                );
                store
            }
        };
        let sealed = store
            .seal_at_rest()
            .await
            .context("the secrets in the database cannot be opened")?;
        if sealed > 0 {
            tracing::info!(
                rows = sealed,
                "sealed secrets stored in clear or under a previous key"
            );
        }
        Ok(store)
    }

    /// For messages: the data directory, or the URL without its password.
    pub fn describe(&self) -> String {
        match &self.url {
            None => self.dir.display().to_string(),
            Some(u) => match url::Url::parse(u) {
                Ok(mut parsed) => {
                    if parsed.password().is_some() {
                        let _ = parsed.set_password(Some("***"));
                    }
                    parsed.to_string()
                }
                Err(_) => "postgres://…".into(),
            },
        }
    }
}

/// Where a serving command listens and how clients reach it (shared by `serve` and `mcp`).
#[derive(Debug, clap::Args)]
pub struct ListenArgs {
    /// Address to listen on.
    #[arg(long, env = "MCPGATE_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Public base URL clients use to reach this server (issuer, resource, endpoints).
    #[arg(long, env = "MCPGATE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Extra browser origins allowed to call /mcp (repeatable).
    #[arg(
        long = "allowed-origin",
        env = "MCPGATE_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,
    /// Seconds between two writes of the tool-call audit (counts per caller, client,
    /// tool and operation).
    #[arg(long, env = "MCPGATE_AUDIT_INTERVAL", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub audit_interval: u64,
    /// Serve Prometheus metrics at `/metrics` on this address: a listener of its own,
    /// never the public one (off unless set).
    #[arg(long, env = "MCPGATE_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Export traces over OTLP/HTTP to this endpoint (e.g. `http://127.0.0.1:4318`;
    /// spans go to `<endpoint>/v1/traces`). Off unless set.
    #[arg(long, env = "MCPGATE_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Seconds requests in flight at SIGTERM/SIGINT may take to finish (default 10);
    /// the tool-call audit is written after them.
    #[arg(long, env = "MCPGATE_SHUTDOWN_GRACE", value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub shutdown_grace: Option<u64>,
}

/// Observability and shutdown settings, resolved from flags, environment and file.
#[derive(Debug, Clone)]
pub struct Operating {
    pub metrics_listen: Option<SocketAddr>,
    pub otlp_endpoint: Option<String>,
    pub shutdown_grace: std::time::Duration,
}

/// How long in-flight requests may run after a shutdown signal, unless configured.
pub const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 10;

impl ListenArgs {
    /// Flags and environment over the file: metrics, traces and the shutdown bound.
    pub fn operating(&self, file: &FileConfig) -> Operating {
        Operating {
            metrics_listen: self.metrics_listen.or(file.metrics_listen),
            otlp_endpoint: self
                .otlp_endpoint
                .clone()
                .or_else(|| file.otlp_endpoint.clone())
                .filter(|e| !e.is_empty()),
            shutdown_grace: std::time::Duration::from_secs(
                self.shutdown_grace
                    .or(file.shutdown_grace)
                    .unwrap_or(DEFAULT_SHUTDOWN_GRACE_SECS),
            ),
        }
    }

    /// The public URL the operator gave (flag, environment or file), if any.
    pub fn explicit_public_url<'a>(&'a self, file: &'a FileConfig) -> Option<&'a str> {
        self.public_url.as_deref().or(file.public_url.as_deref())
    }

    /// Flags and environment over the file over the defaults: the address to bind, the
    /// public URL, and the extra allowed origins.
    pub fn resolve(&self, file: &FileConfig) -> anyhow::Result<(SocketAddr, Url, Vec<String>)> {
        let listen = self
            .listen
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default"));
        let public = match self.explicit_public_url(file) {
            Some(url) => parse_public_url(url)?,
            None => parse_public_url(&implicit_public_url(listen))?,
        };
        let origins = if self.allowed_origins.is_empty() {
            file.allowed_origins.clone().unwrap_or_default()
        } else {
            self.allowed_origins.clone()
        };
        Ok((listen, public, origins))
    }
}

/// The public URL when none is given: the address mcpgate listens on, as a browser on
/// this machine reaches it (an unspecified address is reached at loopback). Without it
/// a server moved to another port would advertise URLs on the default one, where its
/// clients and its own sign-in forms would not find it.
pub fn implicit_public_url(listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => std::net::Ipv4Addr::LOCALHOST.into(),
        ip if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, listen.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_url_follows_the_listen_address_unless_given() {
        for (listen, public) in [
            ("127.0.0.1:8080", DEFAULT_PUBLIC_URL),
            ("127.0.0.1:9000", "http://127.0.0.1:9000"),
            ("0.0.0.0:9000", "http://127.0.0.1:9000"),
            ("[::]:9000", "http://[::1]:9000"),
            ("[::1]:9000", "http://[::1]:9000"),
        ] {
            assert_eq!(implicit_public_url(listen.parse().unwrap()), public);
        }
    }

    #[test]
    fn public_urls_may_carry_a_path() {
        for (given, issuer) in [
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            (
                "https://auth.example.com/oauth/2.1",
                "https://auth.example.com/oauth/2.1",
            ),
            (
                "https://example.com/mcpgate/",
                "https://example.com/mcpgate",
            ),
            ("HTTPS://Example.COM/Path", "https://example.com/Path"),
        ] {
            let url = parse_public_url(given).unwrap();
            assert_eq!(origin_string(&url), issuer, "{given}");
        }
    }

    #[test]
    fn public_urls_are_issuers_without_query_fragment_or_credentials() {
        for bad in [
            "https://a.example/p?x=1",
            "https://a.example/#f",
            "https://user:pw@a.example",
            "https://a.example//double",
            "ftp://a.example",
            "not a url",
        ] {
            assert!(parse_public_url(bad).is_err(), "{bad}");
        }
    }
}
