//! `mcpgate serve`: everything on one port.

use std::net::SocketAddr;
use std::path::PathBuf;

use mcpgate::app::{self, AppConfig};
use mcpgate::config::{self, FileConfig};
use tokio_util::sync::CancellationToken;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "MCPGATE_LISTEN")]
    listen: Option<SocketAddr>,
    /// Public base URL clients use to reach this server (issuer, resource, endpoints).
    #[arg(long, env = "MCPGATE_PUBLIC_URL")]
    public_url: Option<String>,
    /// Extra browser origins allowed to call /mcp (repeatable).
    #[arg(
        long = "allowed-origin",
        env = "MCPGATE_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    allowed_origins: Vec<String>,
}

pub async fn run(args: ServeArgs, file: FileConfig, data_dir: PathBuf) -> anyhow::Result<()> {
    let listen = args
        .listen
        .or(file.listen)
        .unwrap_or_else(|| config::DEFAULT_LISTEN.parse().expect("valid default"));
    let public = config::parse_public_url(
        args.public_url
            .as_deref()
            .or(file.public_url.as_deref())
            .unwrap_or(config::DEFAULT_PUBLIC_URL),
    )?;
    let _ = data_dir;
    let mut cfg = AppConfig::new(&public);
    cfg.extra_origins = if args.allowed_origins.is_empty() {
        file.allowed_origins.unwrap_or_default()
    } else {
        args.allowed_origins
    };

    let shutdown = CancellationToken::new();
    let router = app::router(&cfg, shutdown.clone());
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let bound = listener.local_addr()?;
    let resource = cfg.resource();
    println!("mcpgate {} listening on {bound}", env!("CARGO_PKG_VERSION"));
    println!("  MCP endpoint:  {resource}");
    println!(
        "  connect a client: npx @modelcontextprotocol/inspector, transport Streamable HTTP, URL {resource}"
    );

    let signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        signal.cancel();
    });
    app::serve(listener, router, shutdown).await?;
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install SIGTERM handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
