//! Assembly: the one place that picks the store and builds the application from the
//! configuration. `serve`, the tests and the benchmark all come through [`build`]:
//!
//! - [`AppConfig`]: everything resolved from flags, environment and file;
//! - [`protect`]: one protected resource's guard and metadata, wired alike for the
//!   calculator, `mcpgate mcp` and every gateway upstream;
//! - [`audit`]: the tool-call tally and where it is written;
//! - [`seed`]: first-run data, through the domain's flows (audited);
//! - [`serving`]: serving until stopped, with a bounded drain.

pub mod audit;
pub mod doctor;
pub mod protect;
pub mod seed;
pub mod serving;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::{Router, routing::get};
use mcpgate_calculator::Calculator;
use mcpgate_core::clock::{Clock, SystemClock};
use mcpgate_core::jwt::Expectations;
use mcpgate_domain::store::Store;
use mcpgate_mcp::validator::local::LocalJwt;
use mcpgate_mcp::{EndpointConfig, Guard, McpEndpoint, TokenValidator, metadata};
use mcpgate_server::documents::{Fetcher, Reach};
use mcpgate_server::{AuthServer, ServerConfig};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::config;
pub use audit::ToolCallAudit;
pub use seed::FirstRun;
pub use serving::{on_signal, serve_until};

/// Tool calls are audited as counts per kind of call over this interval.
pub const DEFAULT_AUDIT_EVERY: Duration = Duration::from_secs(5);

/// Everything the app needs to know, already resolved from flags, env and file.
#[derive(Clone)]
pub struct AppConfig {
    /// The public URL, e.g. `http://127.0.0.1:8080` or `https://example.com/oauth/2.1`
    /// (no trailing slash). It is the issuer identifier, and everything mcpgate serves
    /// lives under it (the well-known documents aside, at its origin).
    pub public_base: String,
    pub data_dir: PathBuf,
    /// PostgreSQL URL; SQLite in `data_dir` when absent.
    pub database_url: Option<String>,
    pub extra_origins: Vec<String>,
    pub max_body_bytes: usize,
    /// Separately deployed MCP servers this authorization server issues tokens for.
    pub extra_resources: Vec<String>,
    /// Access-token lifetime in seconds (default 900).
    pub access_ttl_secs: Option<i64>,
    /// How often tool-call counts are written to the audit record.
    pub audit_every: Duration,
    /// Identity providers from the configuration file (`mcpgate idp add` ones are read
    /// from the store).
    pub identity_providers: Vec<mcpgate_server::idp::IdpSettings>,
    /// Offer the username and password form.
    pub password_login: bool,
    /// Upstream MCP servers to protect (gateway mode); none serves the calculator.
    pub upstreams: Vec<mcpgate_gateway::UpstreamConfig>,
    /// Reverse proxies whose forwarding headers are believed.
    pub trusted_proxies: Vec<mcpgate_server::forwarded::IpNet>,
    /// DPoP proofs must carry this instance's nonce.
    pub dpop_nonces: bool,
    /// The keys that seal secrets at rest (default: generated in the data directory).
    pub key_encryption: crate::secrets::KeyEncryption,
    /// Per-source rate limits: (flags and environment, file).
    pub rate_limits: (config::RateLimits, Option<config::RateLimits>),
    /// Count requests per route and status with their latency (the caller installs
    /// the recorder: [`crate::observe::metrics::install`]).
    pub http_metrics: bool,
    /// Give each request a span continuing the caller's `traceparent` (traces are
    /// exported).
    pub http_traces: bool,
    /// What time it is: the system's, or a clock a test moves.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for AppConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppConfig")
            .field("public_base", &self.public_base)
            .field("data_dir", &self.data_dir)
            .field("upstreams", &self.upstreams.len())
            .finish_non_exhaustive()
    }
}

impl AppConfig {
    pub fn new(public_url: &Url, data_dir: PathBuf) -> Self {
        Self {
            public_base: config::origin_string(public_url),
            data_dir,
            database_url: None,
            extra_origins: Vec::new(),
            max_body_bytes: mcpgate_mcp::endpoint::DEFAULT_MAX_BODY_BYTES,
            access_ttl_secs: None,
            extra_resources: Vec::new(),
            audit_every: DEFAULT_AUDIT_EVERY,
            identity_providers: Vec::new(),
            password_login: true,
            upstreams: Vec::new(),
            trusted_proxies: Vec::new(),
            dpop_nonces: false,
            rate_limits: Default::default(),
            key_encryption: Default::default(),
            http_metrics: false,
            http_traces: false,
            clock: Arc::new(SystemClock),
        }
    }

    /// The canonical URL of the MCP endpoint: the resource tokens are bound to.
    pub fn resource(&self) -> Url {
        format!("{}/mcp", self.public_base)
            .parse()
            .expect("public base is a URL")
    }

    pub fn issuer(&self) -> &str {
        &self.public_base
    }

    /// The public URL's path (`""` for an origin): where the routes are mounted.
    pub fn base_path(&self) -> String {
        mcpgate_server::mount::base_path(&self.public_base)
    }

    /// Where the state lives, as [`config::Storage`] opens it.
    pub fn storage(&self) -> config::Storage {
        config::Storage {
            url: self.database_url.clone(),
            dir: self.data_dir.clone(),
            kek: self.key_encryption.clone(),
        }
    }
}

/// What a test changes in the assembly beside the configuration: server settings no
/// flag exposes (short lifetimes, small limits) and where metadata documents may be
/// fetched from (loopback). Production builds with the default.
#[derive(Clone, Copy)]
pub struct Overrides {
    pub tune: fn(&mut ServerConfig),
    pub documents: fn() -> Reach,
}

impl Default for Overrides {
    fn default() -> Self {
        Self {
            tune: |_| {},
            documents: Reach::default,
        }
    }
}

pub struct App {
    pub router: Router,
    pub auth: AuthServer,
    /// The database, as the store it is and for its pool's gauges.
    pub database: mcpgate_store::Database,
    pub first_run: Option<FirstRun>,
    /// Writes the tool-call audit; `finish_within` once the server has stopped.
    pub audit: ToolCallAudit,
}

/// The authorization server's settings: the rules' (issuer, resources, lifetimes) and
/// the edge's. The administration commands build theirs here too, so that an act
/// from the command line is the server's own.
pub fn server_config(cfg: &AppConfig) -> anyhow::Result<ServerConfig> {
    let resource_str = metadata::canonical_resource(&cfg.resource());
    let default_scopes = match cfg.upstreams.is_empty() {
        true => mcpgate_calculator::scope_policy().all_scopes(),
        false => crate::gateway::all_scopes(cfg),
    };
    let upstreams: Vec<String> = crate::gateway::resources(cfg)?
        .iter()
        .map(|(_, url)| metadata::canonical_resource(url))
        .collect();
    // `/mcp` is a resource only where something is served there: the calculator, or
    // an upstream given by flag. With only named upstreams (`/mcp/<name>`), the first
    // is the default audience.
    let served_at_mcp = upstreams.is_empty() || upstreams.contains(&resource_str);
    let default = match served_at_mcp {
        true => resource_str.clone(),
        false => upstreams[0].clone(),
    };
    let mut server = ServerConfig::new(cfg.issuer(), &default, default_scopes);
    server.rules.extra_resources = cfg.extra_resources.clone();
    for r in upstreams {
        if r != default {
            server.rules.extra_resources.push(r);
        }
    }
    // Upstreams that want each person's own account: how they connect.
    for u in &cfg.upstreams {
        match connectable(u)? {
            None => {}
            Some((Some(c), _)) => {
                server.rules.connectable.insert(u.name.clone(), c);
            }
            Some((None, exchange)) => {
                server.rules.exchanges.insert(u.name.clone(), exchange);
            }
        }
    }
    if let Some(ttl) = cfg.access_ttl_secs {
        server.rules.access_ttl_secs = ttl;
    }
    server.password_login = cfg.password_login;
    server.trusted_proxies = cfg.trusted_proxies.clone();
    if cfg.dpop_nonces {
        // A nonce is good for its five minutes and the next.
        server.dpop_nonces = Some(Arc::new(mcpgate_core::dpop::Nonces::new(300)));
    }
    cfg.rate_limits
        .0
        .apply(cfg.rate_limits.1.as_ref(), &mut server);
    Ok(server)
}

/// The authorization server over `store`, with the settings `cfg` makes.
pub async fn start_server(
    cfg: &AppConfig,
    store: Arc<dyn Store>,
    overrides: Overrides,
) -> anyhow::Result<AuthServer> {
    let mut server = server_config(cfg)?;
    (overrides.tune)(&mut server);
    let documents = Arc::new(Fetcher::new((overrides.documents)()));
    let mut auth = AuthServer::start(store, server, cfg.clock.clone(), documents).await?;
    auth.idps = Arc::new(mcpgate_server::idp::Registry::new(
        cfg.identity_providers.clone(),
    ));
    Ok(auth)
}

/// Opens the data directory (or database) and builds the app. On an empty database it
/// creates the signing key, the calculator's scopes, the allowed-client presets and an
/// administrator with a random password (returned once, never stored in clear).
pub async fn build(cfg: &AppConfig, cancel: CancellationToken) -> anyhow::Result<App> {
    build_with(cfg, Overrides::default(), cancel).await
}

/// [`build`], with a test's [`Overrides`].
pub async fn build_with(
    cfg: &AppConfig,
    overrides: Overrides,
    cancel: CancellationToken,
) -> anyhow::Result<App> {
    let database = cfg.storage().open().await?;
    let store: Arc<dyn Store> = Arc::new(database.clone());
    let auth = start_server(cfg, store.clone(), overrides).await?;
    let gateway = !cfg.upstreams.is_empty();
    let first_run = seed::first_run(&auth.auth, cfg).await?;
    auth.spawn_background(Duration::from_secs(2), cancel.clone());
    let audit = ToolCallAudit::to_store(store, cfg.clock.clone(), cfg.audit_every, gateway);
    let protected = match gateway {
        // Gateway routes carry their full paths (under the base path already).
        true => Protected {
            at_root: crate::gateway::router(cfg, &auth, &audit, cancel)?,
            under_base: Router::new(),
        },
        false => calculator(cfg, &auth, &audit, cancel),
    };
    let router = routes(cfg, &auth, protected, !gateway);
    Ok(App {
        router,
        auth,
        database,
        first_run,
        audit,
    })
}

/// The protected resources' routes: those that carry their full path (metadata
/// documents at the origin, gateway upstreams) and those served under the base path.
struct Protected {
    at_root: Router,
    under_base: Router,
}

/// The calculator at `/mcp` behind the guard, with its metadata.
fn calculator(
    cfg: &AppConfig,
    auth: &AuthServer,
    audit: &ToolCallAudit,
    cancel: CancellationToken,
) -> Protected {
    let resource = cfg.resource();
    let validator: Arc<dyn TokenValidator> = Arc::new(
        LocalJwt::new(
            auth.auth.keys.clone(),
            auth.auth.revoked.clone(),
            Expectations::new(cfg.issuer(), metadata::canonical_resource(&resource)),
            cfg.clock.clone(),
        )
        .with_observer(Arc::new(doctor::CallSteps::new(auth.auth.clone()))),
    );
    let policy = mcpgate_calculator::scope_policy();
    let base = cfg.base_path();
    let revoked = auth.auth.revoked.clone();
    let introspected = auth.auth.introspected.clone();
    let tally = audit.tally();
    let p = protect::protect(
        protect::Resource {
            url: &resource,
            issuer: cfg.issuer(),
            scopes: policy.all_scopes(),
            policy,
            name: "mcpgate calculator".into(),
            root_metadata_under: Some(&base),
            max_body_bytes: cfg.max_body_bytes,
            dpop: protect::DpopSetup::shared(auth, cfg.clock.clone()),
        },
        validator,
        audit.sink(),
        cancel.clone(),
        move |sizes| {
            sizes.insert("revoked_entries".into(), revoked.len().into());
            sizes.insert("introspected_entries".into(), introspected.len().into());
            sizes.insert("tally_kinds".into(), tally.len().into());
        },
    );
    // The endpoint lives under the base path; its metadata at the origin.
    Protected {
        at_root: p.metadata,
        under_base: mcp_router(cfg, p.guard, cancel),
    }
}

/// Everything served: the authorization server's routes, `/healthz`, the protected
/// resources, the discovery documents, and a 404 that says what exists.
fn routes(cfg: &AppConfig, auth: &AuthServer, protected: Protected, calculator: bool) -> Router {
    let mut directory = mcpgate_server::not_found::Directory::of_auth_server(&auth.cfg);
    if calculator {
        let resource = cfg.resource();
        directory.add("MCP endpoint", metadata::canonical_resource(&resource));
        directory.add(
            "protected resource metadata",
            metadata::metadata_url(&resource),
        );
    }
    for r in &auth.cfg.rules.extra_resources {
        directory.add("also issues tokens for", r.clone());
    }
    let served = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(protected.under_base)
        .merge(mcpgate_server::mount::rebasing(
            &cfg.base_path(),
            mcpgate_server::routes::router(auth.clone()),
        ));
    let router = root_router(&cfg.base_path(), served)
        .merge(protected.at_root)
        .merge(mcpgate_server::routes::discovery(auth.clone()));
    crate::observe::instrument(
        router.fallback(directory.handler()),
        cfg.http_metrics,
        cfg.http_traces,
    )
}

/// `served` under the public URL's path, and `/healthz` at the root as well, for
/// probes that address the instance rather than the deployment.
pub fn root_router(base: &str, served: Router) -> Router {
    let router = mcpgate_server::mount::under(base, served);
    if base.is_empty() {
        router
    } else {
        router.route("/healthz", get(|| async { "ok" }))
    }
}

/// `/mcp`: the calculator, stateless, behind `guard`.
pub fn mcp_router(cfg: &AppConfig, guard: Guard, cancel: CancellationToken) -> Router {
    let mut endpoint = EndpointConfig::new(cfg.resource());
    endpoint.extra_origins = cfg.extra_origins.clone();
    endpoint.max_body_bytes = cfg.max_body_bytes;
    endpoint.cancel = cancel;
    let calculator = Calculator::new();
    let direct = Arc::new(calculator.clone());
    let mcp = Router::new().route_service(
        "/mcp",
        McpEndpoint::service(move || calculator.clone(), &endpoint).with_direct(direct, &endpoint),
    );
    // CORS outermost: preflights are answered before the guard asks for a token.
    guard
        .protect(mcp)
        .layer(mcpgate_mcp::endpoint::cors(&endpoint))
}

/// How each person acts as themselves at upstream `u`, when they do: connecting an
/// account (a page), or by token exchange (no page; the upstream's OAuth settings).
#[allow(clippy::type_complexity)]
fn connectable(
    u: &mcpgate_gateway::UpstreamConfig,
) -> anyhow::Result<
    Option<(
        Option<mcpgate_domain::settings::Connectable>,
        mcpgate_domain::settings::OAuthUpstream,
    )>,
> {
    use mcpgate_domain::settings::{ConnectKind, Connectable, OAuthUpstream};
    use mcpgate_gateway::CredentialsMode;
    if u.credentials == CredentialsMode::None {
        return Ok(None);
    }
    let client_secret = match &u.oauth_client_secret_env {
        None => None,
        Some(var) => Some(std::env::var(var).map_err(|_| {
            anyhow::anyhow!(
                "upstream {:?}: oauth_client_secret_env names {var}, which is not set",
                u.name
            )
        })?),
    };
    let oauth = OAuthUpstream {
        url: u.url.clone().unwrap_or_default(),
        client_id: u.oauth_client_id.clone(),
        client_secret,
        scopes: u.oauth_scopes.clone(),
        issuer: u.oauth_issuer.clone(),
    };
    let kind = match u.credentials {
        CredentialsMode::PerPersonToken => ConnectKind::Token,
        CredentialsMode::OAuth => ConnectKind::OAuth(oauth.clone()),
        _ => return Ok(Some((None, oauth))),
    };
    let label = u.credential_label.clone().unwrap_or_else(|| match kind {
        ConnectKind::Token => format!("your token for {}", u.name),
        ConnectKind::OAuth(_) => format!("your account at {}", u.name),
    });
    Ok(Some((Some(Connectable { label, kind }), oauth)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str) -> mcpgate_gateway::UpstreamConfig {
        let mut u = mcpgate_gateway::UpstreamConfig::from_flag(
            name,
            Some("http://127.0.0.1:9/mcp".into()),
            None,
        );
        u.name = name.into();
        u
    }

    /// Tokens are issued for where something is served: `/mcp` for the calculator or
    /// a flag upstream, only `/mcp/<name>` for named upstreams.
    #[test]
    fn the_resources_are_what_is_served() {
        let base: Url = "http://127.0.0.1:8080".parse().unwrap();
        let mut cfg = AppConfig::new(&base, PathBuf::from("/nonexistent"));
        assert_eq!(
            server_config(&cfg).unwrap().rules.resources(),
            ["http://127.0.0.1:8080/mcp"]
        );
        cfg.upstreams = vec![named("a"), named("b")];
        assert_eq!(
            server_config(&cfg).unwrap().rules.resources(),
            ["http://127.0.0.1:8080/mcp/a", "http://127.0.0.1:8080/mcp/b"]
        );
        cfg.upstreams = vec![named(crate::gateway::FLAG_UPSTREAM)];
        assert_eq!(
            server_config(&cfg).unwrap().rules.resources(),
            ["http://127.0.0.1:8080/mcp"]
        );
    }

    /// Before, only an upstream's own path and `/mcp` were refused as its identity
    /// audience: naming another upstream or a `--resource` let that upstream replay
    /// its identity JWTs there.
    #[test]
    fn an_identity_audience_may_be_no_resource_this_server_protects() {
        let base: Url = "http://127.0.0.1:8080".parse().unwrap();
        let mut cfg = AppConfig::new(&base, PathBuf::from("/nonexistent"));
        cfg.extra_resources = vec!["https://calc.example.com/mcp".into()];
        for audience in [
            "http://127.0.0.1:8080/mcp",
            "http://127.0.0.1:8080/mcp/b",
            "HTTP://127.0.0.1:8080/mcp/b",
            "https://calc.example.com/mcp",
        ] {
            let mut a = named("a");
            a.audience = Some(audience.into());
            cfg.upstreams = vec![a, named("b")];
            assert!(crate::gateway::resources(&cfg).is_err(), "{audience}");
        }
        let mut a = named("a");
        a.audience = Some("https://a.internal/".into());
        cfg.upstreams = vec![a, named("b")];
        assert!(crate::gateway::resources(&cfg).is_ok());
    }
}
