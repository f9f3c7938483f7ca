//! `mcpgate`: one binary for the authorization server, the guarded MCP server and the
//! administration commands. `main` parses arguments and hands over; the work lives in
//! the library crates.

use mcpgate::commands::{self, allowed, clients, grants, groups, idp, keys, scopes, users};
use mcpgate::{config, observe};

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "mcpgate", version, about = "OAuth 2.1 in front of MCP servers")]
struct Cli {
    /// Directory holding the SQLite database and keys.
    #[arg(long, global = true, env = "MCPGATE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// PostgreSQL URL (postgres://…) to use instead of SQLite in the data directory,
    /// for several instances serving one deployment.
    #[arg(
        long,
        global = true,
        env = "MCPGATE_DATABASE_URL",
        hide_env_values = true
    )]
    database: Option<String>,
    /// A file holding the PostgreSQL URL (which may carry a password).
    #[arg(
        long,
        global = true,
        env = "MCPGATE_DATABASE_URL_FILE",
        conflicts_with = "database"
    )]
    database_file: Option<PathBuf>,
    /// TOML configuration file; flags and environment override it.
    #[arg(long, global = true, env = "MCPGATE_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    kek: mcpgate::secrets::KeyEncryptionArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the authorization server and the calculator MCP server on one port.
    Serve(commands::serve::ServeArgs),
    /// Run the calculator alone, protected by an external authorization server.
    Mcp(commands::resource_server::McpArgs),
    /// Manage users.
    #[command(subcommand)]
    User(users::UserCmd),
    /// Manage registered clients.
    #[command(subcommand)]
    Client(clients::ClientCmd),
    /// The allow-list of MCP clients' redirect URIs.
    Clients {
        #[command(subcommand)]
        cmd: ClientsCmd,
    },
    /// Manage scopes, their descriptions and who may hold them.
    #[command(subcommand)]
    Scope(scopes::ScopeCmd),
    /// Groups of people, to which scopes can be restricted.
    #[command(subcommand)]
    Group(groups::GroupCmd),
    /// List and revoke people's grants.
    #[command(subcommand)]
    Grants(grants::GrantsCmd),
    /// Identity providers people may sign in with (OpenID Connect, Google, Entra ID, GitHub).
    #[command(subcommand)]
    Idp(idp::IdpCmd),
    /// Signing keys.
    #[command(subcommand)]
    Keys(keys::KeysCmd),
    /// Where each recent client's connection stopped (register, authorize, consent,
    /// token, call, refresh), with what it usually means.
    Doctor {
        /// One client only.
        #[arg(long = "client", value_name = "CLIENT_ID", allow_hyphen_values = true)]
        client: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show recent audit events.
    Audit {
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Apply database migrations (serve does this on start too).
    Migrate,
}

#[derive(Debug, Subcommand)]
enum ClientsCmd {
    /// Which AI clients may register (redirect URI allow-list).
    #[command(subcommand)]
    Allowed(allowed::AllowedCmd),
}

/// mimalloc rather than the system allocator: allocation was a fifth of a call's
/// instructions under glibc's (callgrind: 57k instructions per unguarded call, 48k with
/// mimalloc). Built without transparent huge pages, which cost 7 MB of idle RSS.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let file = config::FileConfig::load(cli.config.as_deref())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // Traces are exported by the serving commands only, when an endpoint is set.
    let otlp = match &cli.command {
        Command::Serve(a) => a.net.operating(&file).otlp_endpoint,
        Command::Mcp(a) => a.net.operating(&file).otlp_endpoint,
        _ => None,
    };
    let telemetry = observe::otel::init(otlp.as_deref(), rt.handle())?;
    if telemetry.exporting() {
        mcpgate_mcp::trace::continue_from_meta_with(observe::otel::continue_from_meta);
    }
    let result = run(cli, file, &rt);
    telemetry.shutdown();
    result
}

fn run(cli: Cli, file: config::FileConfig, rt: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let data_dir = cli
        .data_dir
        .or_else(|| file.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_DATA_DIR));
    let storage = config::Storage {
        url: match &cli.database_file {
            Some(f) => Some(
                mcpgate::secrets::read_secret_file(f, "database URL")?
                    .expose()
                    .trim()
                    .to_owned(),
            ),
            None => cli.database.or_else(|| file.database.clone()),
        },
        dir: data_dir,
        kek: mcpgate::secrets::KeyEncryption::resolve(
            &cli.kek,
            file.key_encryption_key_file.as_deref(),
        ),
    };
    let ctx = commands::Context { storage, file };
    rt.block_on(async {
        match cli.command {
            Command::Serve(args) => commands::serve::run(args, ctx.file, ctx.storage).await,
            Command::Mcp(args) => commands::resource_server::run(args, ctx.file).await,
            Command::User(c) => users::run(&ctx, c).await,
            Command::Client(c) => clients::run(&ctx, c).await,
            Command::Clients {
                cmd: ClientsCmd::Allowed(c),
            } => allowed::run(&ctx, c).await,
            Command::Scope(c) => scopes::run(&ctx, c).await,
            Command::Group(c) => groups::run(&ctx, c).await,
            Command::Grants(c) => grants::run(&ctx, c).await,
            Command::Idp(c) => idp::run(&ctx, c).await,
            Command::Keys(c) => keys::run(&ctx, c).await,
            Command::Audit { limit, json } => commands::audit::run(&ctx, limit, json).await,
            Command::Doctor { client, json } => commands::doctor::run(&ctx, client, json).await,
            Command::Migrate => {
                let db = ctx.storage.open().await?;
                println!(
                    "migrations applied ({}: {})",
                    db.backend(),
                    ctx.storage.describe()
                );
                Ok(())
            }
        }
    })
}
