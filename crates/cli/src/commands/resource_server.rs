//! `mcpgate mcp`: the calculator alone, protected by an external authorization server
//! (the topology where the MCP server and the authorization server are separate
//! services). Tokens are validated by RFC 7662 introspection, with a cache, or as
//! JWTs against the issuer's JWKS.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::{Router, routing::get};
use mcpgate_core::secret::Secret;
use mcpgate_mcp::validator::discovery::fetch_metadata;
use mcpgate_mcp::validator::introspection::{Introspection, IntrospectionConfig};
use mcpgate_mcp::validator::jose::TokenRules;
use mcpgate_mcp::validator::jwks::{Jwks, Refresh};
use mcpgate_mcp::{Guard, TokenValidator, metadata};
use tokio_util::sync::CancellationToken;

use crate::app::protect::{Resource, protect};
use crate::app::{self, AppConfig, ToolCallAudit};
use crate::config::{FileConfig, ListenArgs};
use crate::observe;

#[derive(Debug, clap::Args)]
pub struct McpArgs {
    #[command(flatten)]
    pub net: ListenArgs,
    /// The authorization server's issuer identifier, exactly as it publishes it.
    #[arg(long, env = "MCPGATE_ISSUER")]
    issuer: Option<String>,
    /// Validate tokens by introspection with these client credentials (HTTP Basic).
    #[arg(long, env = "MCPGATE_INTROSPECTION_CLIENT_ID")]
    introspection_client_id: Option<String>,
    #[arg(
        long,
        env = "MCPGATE_INTROSPECTION_CLIENT_SECRET",
        hide_env_values = true
    )]
    introspection_client_secret: Option<String>,
    /// The introspection client secret, read from this file.
    #[arg(
        long,
        env = "MCPGATE_INTROSPECTION_CLIENT_SECRET_FILE",
        conflicts_with = "introspection_client_secret"
    )]
    introspection_client_secret_file: Option<std::path::PathBuf>,
    /// Seconds an active introspection answer is reused (never past the token's exp); 0 disables.
    #[arg(long, default_value_t = 60, env = "MCPGATE_INTROSPECTION_CACHE_SECS")]
    introspection_cache_secs: i64,
    /// Validate tokens as JWTs against the issuer's JWKS instead.
    #[arg(long, conflicts_with_all = ["introspection_client_id", "introspection_client_secret"])]
    jwks: bool,
    /// Least time between two JWKS fetches triggered by unknown key ids (at least 1;
    /// the key set is also read again every 5 to 15 minutes, as its `max-age` says).
    #[arg(long, default_value_t = 10, value_parser = refetch_floor)]
    jwks_min_refetch_secs: u64,
    /// JWKS mode: also accept tokens with `typ: JWT` (or none), which many providers
    /// send, besides RFC 9068's `at+jwt`.
    #[arg(long, requires = "jwks")]
    accept_jwt_typ: bool,
    /// JWKS mode: an audience value the issuer puts in tokens for this server, when it
    /// is not the resource URL (for example `api://calculator`); repeatable.
    #[arg(long = "audience", requires = "jwks")]
    audiences: Vec<String>,
    /// JWKS mode: the claim that names the resource, when the issuer uses another one
    /// than `aud`.
    #[arg(long, default_value = "aud", requires = "jwks")]
    audience_claim: String,
    /// No authentication at all (development and benchmarks only).
    #[arg(long, conflicts_with_all = ["issuer", "jwks", "introspection_client_id"])]
    insecure_no_auth: bool,
}

const ZERO_FLOOR: &str =
    "must be at least 1 (0 would let every token naming an unknown key id fetch the key set)";

/// `--jwks-min-refetch-secs`: a whole number of seconds, at least 1. Without a floor,
/// every token naming a made-up key id would make this server fetch the issuer's keys.
fn refetch_floor(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(0) => Err(ZERO_FLOOR.into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{s:?} is not a whole number of seconds")),
    }
}

pub async fn run(args: McpArgs, file: FileConfig) -> anyhow::Result<()> {
    let (listen, public, origins) = args.net.resolve(&file)?;
    let mut cfg = AppConfig::new(&public, std::path::PathBuf::new());
    cfg.extra_origins = origins;
    cfg.audit_every = std::time::Duration::from_secs(args.net.audit_interval);
    let resource = cfg.resource();
    let resource_str = metadata::canonical_resource(&resource);
    let shutdown = CancellationToken::new();
    let op = args.net.operating(&file);
    // The recorder first: handles registered before it would record nothing.
    let metrics = op.metrics_listen.map(|_| observe::metrics::install());

    // Without a store, tool-call counts go to the log, a line per kind of call.
    let audit = ToolCallAudit::to_log(cfg.audit_every);
    let (guard, prm, mode) = if args.insecure_no_auth {
        (
            Guard::open(cfg.max_body_bytes),
            None,
            "no authentication (--insecure-no-auth)".to_owned(),
        )
    } else {
        let issuer = args
            .issuer
            .clone()
            .context("--issuer is required (or --insecure-no-auth)")?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let md = fetch_metadata(&http, &issuer)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let clock = cfg.clock.clone();
        let (validator, mode): (Arc<dyn TokenValidator>, String) = if args.jwks {
            let jwks_uri = md
                .get("jwks_uri")
                .and_then(|v| v.as_str())
                .context("the issuer publishes no jwks_uri")?;
            let rules = TokenRules {
                issuer: issuer.clone(),
                audiences: if args.audiences.is_empty() {
                    vec![resource_str.clone()]
                } else {
                    args.audiences.clone()
                },
                audience_claim: args.audience_claim.clone(),
                accept_plain_jwt: args.accept_jwt_typ,
            };
            let refresh = Refresh::new(Duration::from_secs(args.jwks_min_refetch_secs))
                .map_err(|e| anyhow::anyhow!("--jwks-min-refetch-secs: {e}"))?;
            let v = Jwks::start(http, jwks_uri.to_owned(), rules, clock, refresh)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            (v, format!("JWT verified against {jwks_uri}"))
        } else {
            let from_file = match &args.introspection_client_secret_file {
                Some(f) => Some(
                    crate::secrets::read_secret_file(f, "introspection client secret")?
                        .expose()
                        .to_owned(),
                ),
                None => None,
            };
            let (Some(id), Some(secret)) = (
                args.introspection_client_id.clone(),
                args.introspection_client_secret.clone().or(from_file),
            ) else {
                bail!(
                    "give --introspection-client-id and --introspection-client-secret(-file), or --jwks"
                );
            };
            let endpoint = md
                .get("introspection_endpoint")
                .and_then(|v| v.as_str())
                .context("the issuer publishes no introspection_endpoint")?
                .to_owned();
            let v = Introspection::new(
                http,
                IntrospectionConfig {
                    endpoint: endpoint.clone(),
                    client_id: id,
                    client_secret: Secret::new(secret),
                    issuer: issuer.clone(),
                    audience: resource_str.clone(),
                    positive_ttl_secs: args.introspection_cache_secs.max(0),
                    negative_ttl_secs: args.introspection_cache_secs.clamp(0, 5),
                    max_entries: 100_000,
                },
                clock,
            );
            (
                Arc::new(v),
                format!(
                    "introspection at {endpoint} (cache {} s)",
                    args.introspection_cache_secs
                ),
            )
        };
        let policy = mcpgate_calculator::scope_policy();
        let p = protect(
            Resource {
                url: &resource,
                issuer: &issuer,
                scopes: policy.all_scopes(),
                policy,
                name: "mcpgate calculator".into(),
                root_metadata_under: Some(&cfg.base_path()),
                max_body_bytes: cfg.max_body_bytes,
                dpop: crate::app::protect::DpopSetup::local(Arc::new(
                    mcpgate_core::clock::SystemClock,
                )),
            },
            validator,
            audit.sink(),
            shutdown.clone(),
            |_| {},
        );
        (p.guard, Some(p.metadata), mode)
    };
    let mut router = app::root_router(
        &cfg.base_path(),
        Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .merge(app::mcp_router(&cfg, guard, shutdown.clone())),
    );
    if let Some(prm) = prm {
        router = router.merge(prm);
    }
    let router = observe::instrument(
        router,
        op.metrics_listen.is_some(),
        op.otlp_endpoint.is_some(),
    );
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let bound = listener.local_addr()?;
    println!("mcpgate mcp listening on {bound}");
    println!("  MCP endpoint: {resource}");
    println!("  tokens:       {mode}");
    if let (Some(addr), Some(handle)) = (op.metrics_listen, metrics) {
        let sampler = observe::metrics::Sampler {
            public: bound,
            pool: None,
        };
        let at = observe::metrics::spawn(addr, handle, sampler, shutdown.clone()).await?;
        println!("  metrics:      http://{at}/metrics");
    }
    let stop = app::on_signal();
    app::serve_until(listener, router, stop, shutdown.clone(), op.shutdown_grace).await?;
    audit.finish_within(std::time::Duration::from_secs(5)).await;
    Ok(())
}
