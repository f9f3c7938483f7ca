//! Building and serving the one-port application: the authorization server, the
//! protected resource metadata, and the calculator behind the guard.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::{Router, routing::get};
use mcpgate_calculator::Calculator;
use mcpgate_core::clock::{Clock, SystemClock};
use mcpgate_core::jwt::Expectations;
use mcpgate_core::redirect_uri::{AllowEntry, PRESETS};
use mcpgate_core::secret::{Secret, random_id};
use mcpgate_domain::audit::Event;
use mcpgate_mcp::audit::TakenCounts;
use mcpgate_mcp::validator::local::LocalJwt;
use mcpgate_mcp::{
    EndpointConfig, Guard, McpEndpoint, ResourceMetadata, TallyWriter, TokenValidator,
    ToolCallTally, memory, metadata,
};
use mcpgate_server::{AsConfig, AuthServer};
use mcpgate_store::{AuditRow, Store, User};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::config;

/// Tool calls are audited as counts per kind of call over this interval.
pub const DEFAULT_AUDIT_EVERY: Duration = Duration::from_secs(5);

/// Everything the app needs to know, already resolved from flags, env and file.
#[derive(Debug, Clone)]
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
    /// Overrides of the authorization server's lifetimes (tests shorten them).
    pub tune: fn(&mut AsConfig),
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
            tune: |_| {},
            audit_every: DEFAULT_AUDIT_EVERY,
            identity_providers: Vec::new(),
            password_login: true,
            upstreams: Vec::new(),
            trusted_proxies: Vec::new(),
            rate_limits: Default::default(),
            key_encryption: Default::default(),
            http_metrics: false,
            http_traces: false,
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
}

/// The administrator account created on first run, with its one-time password.
pub struct FirstRun {
    pub username: String,
    pub password: Secret,
}

pub struct App {
    pub router: Router,
    pub auth: AuthServer,
    pub first_run: Option<FirstRun>,
    /// Writes the tool-call audit; `finish` it once the server has stopped.
    pub audit: TallyWriter,
}

/// The authorization server's settings: the rules' (issuer, resources, lifetimes) and
/// the edge's. The administration commands build theirs here too, so that an act
/// from the command line is the server's own.
pub fn as_config(cfg: &AppConfig) -> anyhow::Result<AsConfig> {
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
    let mut as_cfg = AsConfig::new(cfg.issuer(), &default, default_scopes);
    as_cfg.extra_resources = cfg.extra_resources.clone();
    for r in upstreams {
        if r != default {
            as_cfg.extra_resources.push(r);
        }
    }
    if let Some(ttl) = cfg.access_ttl_secs {
        as_cfg.access_ttl_secs = ttl;
    }
    as_cfg.password_login = cfg.password_login;
    as_cfg.trusted_proxies = cfg.trusted_proxies.clone();
    cfg.rate_limits
        .0
        .apply(cfg.rate_limits.1.as_ref(), &mut as_cfg);
    (cfg.tune)(&mut as_cfg);
    Ok(as_cfg)
}

/// Opens the data directory and builds the app. On an empty database it creates the
/// signing key, the calculator's scopes, the allowed-client presets and an
/// administrator with a random password (returned once, never stored in clear).
pub async fn build(cfg: &AppConfig, cancel: CancellationToken) -> anyhow::Result<App> {
    let store = config::Database {
        url: cfg.database_url.clone(),
        dir: cfg.data_dir.clone(),
        kek: cfg.key_encryption.clone(),
    }
    .open()
    .await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let resource = cfg.resource();
    let resource_str = metadata::canonical_resource(&resource);
    let policy = mcpgate_calculator::scope_policy();
    let gateway = !cfg.upstreams.is_empty();
    let mut auth = AuthServer::start(store.clone(), as_config(cfg)?, clock.clone()).await?;
    auth.idps = Arc::new(mcpgate_server::idp::Registry::new(
        cfg.identity_providers.clone(),
    ));
    let first_run = seed(&store, clock.now(), !gateway).await?;
    crate::gateway::seed_scopes(&store, cfg).await?;
    auth.spawn_background(Duration::from_secs(2), cancel.clone());

    let validator: Arc<dyn TokenValidator> = Arc::new(LocalJwt::new(
        auth.keys.clone(),
        auth.revoked.clone(),
        Expectations::new(cfg.issuer(), resource_str.clone()),
        clock.clone(),
    ));
    let tally = Arc::new(ToolCallTally::new());
    memory::spawn_housekeeping(
        validator.clone(),
        memory::HOUSEKEEPING_EVERY,
        cancel.clone(),
        {
            let (revoked, tally) = (auth.revoked.clone(), tally.clone());
            move |sizes| {
                sizes.insert("revoked_entries".into(), revoked.len().into());
                sizes.insert("tally_kinds".into(), tally.len().into());
            }
        },
    );
    let audit = {
        let (store, clock) = (store.clone(), clock.clone());
        // Each write covers the time since the previous one.
        let last = std::sync::atomic::AtomicI64::new(clock.now());
        TallyWriter::spawn(tally.clone(), cfg.audit_every, move |taken| {
            let now = clock.now();
            let since = last.swap(now, std::sync::atomic::Ordering::Relaxed);
            crate::observe::metrics::add_tool_calls(&taken, gateway);
            write_counts(store.clone(), now, since, taken)
        })
    };
    let guard = Guard::new(
        validator,
        policy.clone(),
        metadata::metadata_url(&resource),
        cfg.max_body_bytes,
    )
    .with_audit(tally.clone());
    let prm = ResourceMetadata::new(
        &resource,
        cfg.issuer(),
        &policy.all_scopes(),
        "mcpgate calculator",
    );
    let (protected_at_root, protected) = match gateway {
        // Gateway routes carry their full paths (under the base path already).
        true => (
            crate::gateway::router(cfg, &auth, clock.clone(), tally.clone(), cancel)?,
            Router::new(),
        ),
        false => (
            metadata::router_at(prm, &resource, &cfg.base_path()),
            mcp_router(cfg, guard, cancel),
        ),
    };
    let mut directory = mcpgate_server::not_found::Directory::of_auth_server(&auth.cfg);
    if !gateway {
        directory.add("MCP endpoint", resource_str.clone());
        directory.add(
            "protected resource metadata",
            metadata::metadata_url(&resource),
        );
    }
    for r in &auth.cfg.extra_resources {
        directory.add("also issues tokens for", r.clone());
    }
    let served = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(protected)
        .merge(mcpgate_server::mount::rebasing(
            &cfg.base_path(),
            mcpgate_server::routes::router(auth.clone()),
        ));
    let router = root_router(&cfg.base_path(), served)
        .merge(protected_at_root)
        .merge(mcpgate_server::routes::discovery(auth.clone()));
    let router = crate::observe::instrument(
        router.fallback(directory.handler()),
        cfg.http_metrics,
        cfg.http_traces,
    );
    Ok(App {
        router,
        auth,
        first_run,
        audit,
    })
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

/// Writes tool-call counts to the store, one row per kind of call; `since` is when
/// the counting began.
async fn write_counts(store: Store, now: i64, since: i64, taken: TakenCounts) {
    let rows: Vec<_> = taken
        .counts
        .into_iter()
        .map(|c| {
            let (event, detail) = Event::ToolCalls {
                tool: c.tool,
                operation: c.operation,
                allowed: c.allowed,
                needed: c.needed,
                username: c.username,
                count: c.count,
                since,
            }
            .record();
            AuditRow {
                at: now,
                event,
                user_id: Some(c.subject),
                client_id: Some(c.client_id),
                detail,
            }
        })
        .collect();
    if let Err(e) = store.audit_batch(&rows).await {
        tracing::error!(error = %e, "writing tool-call audit records failed");
    }
    mcpgate_mcp::audit::warn_unitemised(taken.unitemised);
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

/// Enables every allowed-client preset, once per database, whichever command opens
/// it first (`serve`, or `clients allowed …` run before the first `serve`): the
/// `seeded` marker, not the list's emptiness, says it was done, so an operator's
/// edits made before or after the first start are kept.
pub async fn seed_allowed_presets(store: &Store, now: i64) -> anyhow::Result<()> {
    if store.mark_seeded("allowed_presets", now).await? {
        for p in PRESETS {
            store
                .allow_redirect(&AllowEntry::Preset(p.name.into()).stored(), now)
                .await?;
        }
    }
    Ok(())
}

/// First-run data; idempotent on later runs.
async fn seed(store: &Store, now: i64, calculator: bool) -> anyhow::Result<Option<FirstRun>> {
    // The calculator's scopes only where it is served: a gateway advertises its own.
    for (name, description) in mcpgate_calculator::SCOPES.iter().filter(|_| calculator) {
        if !store.scopes().await?.iter().any(|(n, _)| n == name) {
            store.upsert_scope(name, description).await?;
        }
    }
    seed_allowed_presets(store, now).await?;
    if store.count_users().await? > 0 {
        return Ok(None);
    }
    // Several instances may start on one empty database at once: the first to create
    // the administrator wins; the others find it there (unique username).
    let password = Secret::generate();
    let hash = mcpgate_server::pages::passwords::hash(password.expose().to_owned()).await;
    match store
        .create_user(&User {
            id: random_id(),
            username: "admin".into(),
            email: None,
            password_hash: hash,
            is_admin: true,
            disabled: false,
            created_at: now,
        })
        .await
    {
        Ok(()) => {}
        Err(mcpgate_store::StoreError::Conflict(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    Ok(Some(FirstRun {
        username: "admin".into(),
        password,
    }))
}

/// Serves `router` on `listener` until `stop` is cancelled; then stops accepting, lets
/// the requests in flight finish for at most `grace`, and cancels `app` (which ends
/// long-lived streams and upstream sessions), in that order: an in-flight call is
/// not cut short by the shutdown, and a stream held open does not hold it forever.
pub async fn serve_until(
    listener: TcpListener,
    router: Router,
    stop: CancellationToken,
    app: CancellationToken,
    grace: Duration,
) -> std::io::Result<()> {
    let signal = stop.clone();
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move { signal.cancelled().await });
    let mut server = std::pin::pin!(server.into_future());
    tokio::select! {
        r = &mut server => {
            app.cancel();
            return r;
        }
        _ = stop.cancelled() => {}
    }
    let drained = tokio::time::timeout(grace, &mut server).await;
    app.cancel();
    match drained {
        Ok(r) => r,
        Err(_) => {
            tracing::warn!(
                ?grace,
                "requests still in flight at the end of the shutdown grace; ending them"
            );
            // The streams the token ends close at once; anything else is cut.
            let _ = tokio::time::timeout(Duration::from_millis(250), server).await;
            Ok(())
        }
    }
}

/// Serves `router` on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    // Connection info gives the limits their source address.
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await
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
            as_config(&cfg).unwrap().resources(),
            ["http://127.0.0.1:8080/mcp"]
        );
        cfg.upstreams = vec![named("a"), named("b")];
        assert_eq!(
            as_config(&cfg).unwrap().resources(),
            ["http://127.0.0.1:8080/mcp/a", "http://127.0.0.1:8080/mcp/b"]
        );
        cfg.upstreams = vec![named(crate::gateway::FLAG_UPSTREAM)];
        assert_eq!(
            as_config(&cfg).unwrap().resources(),
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
