//! `mcpgate serve`: everything on one port. In four steps: [`bind`] the ports (before
//! anything is created, so that a port taken stops a first run before it makes a
//! password nobody would see), [`crate::app::build`] the application, print the
//! [`banner`], and serve until a signal.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::app::{self, App, AppConfig};
use crate::config::{FileConfig, ListenArgs, Operating, Storage};
use crate::observe;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub net: ListenArgs,
    /// A separately deployed MCP server (its canonical URL) this authorization server
    /// may issue tokens for (repeatable).
    #[arg(long = "resource", env = "MCPGATE_RESOURCES", value_delimiter = ',')]
    resources: Vec<String>,
    /// Offer sign-in with a username and password (`--password-login=false` when every
    /// person signs in through an identity provider).
    #[arg(long, env = "MCPGATE_PASSWORD_LOGIN", action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    password_login: Option<bool>,
    /// Lifetime of access tokens, in seconds.
    #[arg(long, env = "MCPGATE_ACCESS_TOKEN_TTL", value_parser = clap::value_parser!(i64).range(1..=86400))]
    access_token_ttl: Option<i64>,
    /// Protect this Streamable HTTP MCP server: `/mcp` forwards to it (gateway mode).
    #[arg(long, env = "MCPGATE_UPSTREAM", conflicts_with = "upstream_command")]
    upstream: Option<String>,
    /// Protect this stdio MCP server: one process per MCP session (run by `sh -c`).
    #[arg(long, env = "MCPGATE_UPSTREAM_COMMAND")]
    upstream_command: Option<String>,
    /// Reverse proxies (CIDR blocks, comma-separated) whose `Forwarded` or
    /// `X-Forwarded-For` header names the client; by default none is believed.
    #[arg(
        long = "trusted-proxies",
        env = "MCPGATE_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<String>,
    /// Require DPoP proofs (RFC 9449) to carry a nonce this instance gives (`DPoP-Nonce`),
    /// at the token endpoint and at every resource: a proof cannot be made in advance.
    #[arg(long, env = "MCPGATE_DPOP_NONCES", action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    dpop_nonces: Option<bool>,
    #[command(flatten)]
    rate_limits: crate::config::RateLimits,
    /// On first run, write the administrator's password to this file (created with
    /// mode 0600) instead of printing it.
    #[arg(long, env = "MCPGATE_ADMIN_PASSWORD_FILE")]
    admin_password_file: Option<std::path::PathBuf>,
}

/// `serve`'s settings as flags would give them, read from the environment alone:
/// what the administration commands use, so that an act from the command line
/// behaves as the running server's own (the same issuer, token lifetimes, resources).
pub fn from_environment() -> anyhow::Result<ServeArgs> {
    #[derive(clap::Parser)]
    #[command(no_binary_name = true)]
    struct EnvOnly {
        #[command(flatten)]
        args: ServeArgs,
    }
    use clap::Parser;
    Ok(EnvOnly::try_parse_from(std::iter::empty::<String>())?.args)
}

/// The configuration from flags (or environment), then the file, then defaults; also
/// where to listen. Identity providers are left out: their secrets are the serving
/// process's ([`run`] adds them), and an administration command that only needs the
/// issuer and the lifetimes must not fail for want of them.
pub fn app_config(
    args: &ServeArgs,
    file: &FileConfig,
    db: &Storage,
) -> anyhow::Result<(SocketAddr, AppConfig)> {
    let (listen, public, origins) = args.net.resolve(file)?;
    let mut cfg = AppConfig::new(&public, db.dir.clone());
    cfg.database_url = db.url.clone();
    cfg.key_encryption = db.kek.clone();
    cfg.extra_origins = origins;
    cfg.audit_every = std::time::Duration::from_secs(args.net.audit_interval);
    cfg.access_ttl_secs = args.access_token_ttl;
    cfg.password_login = args.password_login.or(file.password_login).unwrap_or(true);
    cfg.trusted_proxies = crate::config::trusted_proxies(&args.trusted_proxies, file)?;
    cfg.dpop_nonces = args.dpop_nonces.or(file.dpop_nonces).unwrap_or(false);
    cfg.rate_limits = (args.rate_limits, file.rate_limits);
    for r in &args.resources {
        let c = mcpgate_core::resource::canonicalize(r)
            .ok_or_else(|| anyhow::anyhow!("--resource {r:?} is not an http(s) URL"))?;
        cfg.extra_resources.push(c);
    }
    if args.upstream.is_some() || args.upstream_command.is_some() {
        cfg.upstreams
            .push(mcpgate_gateway::UpstreamConfig::from_flag(
                crate::gateway::FLAG_UPSTREAM,
                args.upstream.clone(),
                args.upstream_command.clone(),
            ));
    }
    cfg.upstreams.extend(file.upstream.iter().cloned());
    Ok((listen, cfg))
}

pub async fn run(args: ServeArgs, file: FileConfig, db: Storage) -> anyhow::Result<()> {
    let (listen, mut cfg) = app_config(&args, &file, &db)?;
    cfg.identity_providers = super::idp::from_file(&file)?;
    let op = args.net.operating(&file);
    cfg.http_metrics = op.metrics_listen.is_some();
    cfg.http_traces = op.otlp_endpoint.is_some();
    // Opened before the first run creates the administrator: a path that cannot be
    // written is an error while no password exists yet, not after it was made and lost.
    let password_file = match &args.admin_password_file {
        Some(path) => Some(
            PrivateFile::create(path)
                .with_context(|| format!("--admin-password-file {}", path.display()))?,
        ),
        None => None,
    };
    // The recorder first: handles registered before it would record nothing.
    let metrics = op.metrics_listen.map(|_| observe::metrics::install());
    let ports = bind(listen, &op).await?;
    // On a port the system chose, the public URL (when none was given) is known now.
    if listen.port() == 0 && args.net.explicit_public_url(&file).is_none() {
        let public = crate::config::parse_public_url(&crate::config::implicit_public_url(
            ports.public_addr,
        ))?;
        cfg.public_base = crate::config::origin_string(&public);
    }
    let shutdown = CancellationToken::new();
    let app = app::build(&cfg, shutdown.clone()).await?;
    let metrics_at = match (ports.metrics, metrics) {
        (Some(at), Some(handle)) => Some(serve_metrics(
            at,
            handle,
            &app,
            ports.public_addr,
            &shutdown,
        )?),
        _ => None,
    };
    banner(&cfg, &db, &app, ports.public_addr, metrics_at)?;
    if let Some(first) = &app.first_run {
        first_run_banner(first, password_file)?;
    }
    connect_hint(&cfg);
    let stop = app::on_signal();
    app::serve_until(ports.public, app.router, stop, shutdown, op.shutdown_grace).await?;
    app.audit
        .finish_within(std::time::Duration::from_secs(5))
        .await;
    if let Err(e) = app.auth.auth.flush_steps().await {
        tracing::warn!(error = %e, "writing the last connection steps failed");
    }
    tracing::info!("stopped");
    Ok(())
}

/// The listeners of a serving command.
pub struct Ports {
    pub public: TcpListener,
    pub public_addr: SocketAddr,
    pub metrics: Option<TcpListener>,
}

/// Binds every port before anything else happens: on a first run building creates
/// the administrator, whose one-time password would be lost if the process then
/// exited because a port is taken (the next start finds the administrator and prints
/// none).
pub async fn bind(listen: SocketAddr, op: &Operating) -> anyhow::Result<Ports> {
    let public = TcpListener::bind(listen)
        .await
        .with_context(|| format!("--listen {listen}"))?;
    let metrics = match op.metrics_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("--metrics-listen {addr}"))?,
        ),
        None => None,
    };
    Ok(Ports {
        public_addr: public.local_addr()?,
        public,
        metrics,
    })
}

/// Serves `/metrics` on its own listener; its address.
fn serve_metrics(
    at: TcpListener,
    handle: metrics_exporter_prometheus::PrometheusHandle,
    app: &App,
    public: SocketAddr,
    shutdown: &CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let database = app.database.clone();
    let sampler = observe::metrics::Sampler {
        public,
        pool: Some(std::sync::Arc::new(move || database.pool_stats())),
    };
    let addr = at.local_addr()?;
    let stop = shutdown.clone();
    tokio::spawn(async move {
        if let Err(e) = observe::metrics::serve(at, handle, sampler, stop).await {
            tracing::error!(error = %e, "the metrics listener failed");
        }
    });
    Ok(addr)
}

/// What a person starting mcpgate needs to see: where everything is.
fn banner(
    cfg: &AppConfig,
    db: &Storage,
    app: &App,
    bound: SocketAddr,
    metrics_at: Option<SocketAddr>,
) -> anyhow::Result<()> {
    let resource = cfg.resource();
    let base = &cfg.public_base;
    println!("mcpgate {} listening on {bound}", env!("CARGO_PKG_VERSION"));
    println!(
        "  database:              {} ({})",
        db.describe(),
        app.database.backend()
    );
    if cfg.upstreams.is_empty() {
        println!("  MCP endpoint:          {resource}");
    }
    for (u, url) in crate::gateway::resources(cfg)? {
        let to = u
            .url
            .as_deref()
            .or(u.command.as_deref())
            .unwrap_or_default();
        println!("  MCP endpoint:          {url}  (gateway to {to})");
    }
    println!("  authorization server:  {base}");
    println!("  metadata (RFC 8414):   {}", app.auth.cfg.metadata_url());
    println!("  connected apps:        {base}/apps");
    if let Some(at) = metrics_at {
        println!("  metrics (Prometheus):  http://{at}/metrics");
    }
    println!(
        "  issues tokens for:     {}",
        app.auth.cfg.rules.resources().join(", ")
    );
    Ok(())
}

/// The first administrator's one-time password: on the terminal, or in the file
/// asked for.
fn first_run_banner(
    first: &app::FirstRun,
    password_file: Option<PrivateFile>,
) -> anyhow::Result<()> {
    println!();
    println!("  First run: created the administrator account.");
    println!("    username: {}", first.username);
    match password_file {
        Some(file) => {
            let path = file.write(first.password.expose())?;
            println!("    password: written to {} (mode 0600)", path.display());
            println!("  The password is stored here only as a hash;");
        }
        None => {
            println!("    password: {}", first.password.expose());
            println!("  This password is shown once and stored only as a hash;");
        }
    }
    println!(
        "  change it with `mcpgate user passwd {} --password-stdin`.",
        first.username
    );
    Ok(())
}

/// How to connect a client.
fn connect_hint(cfg: &AppConfig) {
    println!();
    println!(
        "  Connect a client: npx @modelcontextprotocol/inspector, transport \"Streamable HTTP\","
    );
    if cfg.upstreams.is_empty() {
        println!(
            "  URL {}; sign in when the browser opens and allow the calculator scopes.",
            cfg.resource()
        );
    } else {
        println!(
            "  URL: an MCP endpoint above; sign in when the browser opens and allow its scopes."
        );
    }
}

/// A file readable by its owner only, for a secret not made yet: a new temporary file
/// beside `path`, renamed into place once written, so an existing file (or a link
/// planted there) is replaced, never written through. Removed if never written.
struct PrivateFile {
    path: std::path::PathBuf,
    tmp: std::path::PathBuf,
    file: Option<std::fs::File>,
}

impl PrivateFile {
    fn create(path: &std::path::Path) -> anyhow::Result<Self> {
        let tmp = crate::secrets::temp_beside(path);
        let file = crate::secrets::private_file(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        Ok(Self {
            path: path.to_owned(),
            tmp,
            file: Some(file),
        })
    }

    /// Writes `secret` and moves the file into place; returns where.
    fn write(mut self, secret: &str) -> anyhow::Result<std::path::PathBuf> {
        use std::io::Write;
        let mut f = self.file.take().expect("written once");
        f.write_all(format!("{secret}\n").as_bytes())
            .and_then(|()| f.sync_all())
            .with_context(|| format!("writing {}", self.tmp.display()))?;
        std::fs::rename(&self.tmp, &self.path)
            .with_context(|| format!("writing {}", self.path.display()))?;
        Ok(std::mem::take(&mut self.path))
    }
}

impl Drop for PrivateFile {
    fn drop(&mut self) {
        // Gone already once renamed into place; otherwise nothing is left behind.
        let _ = std::fs::remove_file(&self.tmp);
    }
}
