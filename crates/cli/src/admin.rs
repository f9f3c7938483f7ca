//! Administration commands. They open the same data directory as `serve` (SQLite in
//! WAL mode allows it while the server runs); revocations, disabled users, removed
//! clients and key changes reach running servers at once, through the store's change
//! notifications (PostgreSQL `NOTIFY`, or the data directory's socket on SQLite),
//! and within their sync period (2 s) if a notification is missed.

use mcpgate::config::{Database, FileConfig};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use mcpgate_core::clock::{Clock, SystemClock};
use mcpgate_core::redirect_uri::{AllowEntry, PRESETS};
use mcpgate_core::secret::Secret;
use mcpgate_domain::Authority;
use mcpgate_server::AuthServer;
use mcpgate_server::flows::{accounts, admin, keys};
use mcpgate_store::{Client, Store};
use serde_json::json;

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Create a user; the password is read from standard input.
    Add {
        name: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        admin: bool,
        /// Read the password from standard input (passwords never go in arguments).
        /// Without it the user has no password and signs in through an identity
        /// provider (an invitation: the provider's verified email must match --email).
        #[arg(long)]
        password_stdin: bool,
        /// Read the password from this file instead (env MCPGATE_USER_PASSWORD_FILE).
        #[arg(
            long,
            env = "MCPGATE_USER_PASSWORD_FILE",
            conflicts_with = "password_stdin"
        )]
        password_file: Option<std::path::PathBuf>,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    /// Disable an account and revoke every grant it made.
    Disable {
        name: String,
    },
    Enable {
        name: String,
    },
    /// Set a new password, read from standard input or a file.
    Passwd {
        name: String,
        #[arg(long, required_unless_present = "password_file")]
        password_stdin: bool,
        /// Read the password from this file instead (env MCPGATE_USER_PASSWORD_FILE).
        #[arg(
            long,
            env = "MCPGATE_USER_PASSWORD_FILE",
            conflicts_with = "password_stdin"
        )]
        password_file: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClientCmd {
    /// Register a client by hand (for AI clients that take a client id, or a
    /// resource server's introspection credentials). A secret is shown once.
    Add {
        #[arg(long)]
        name: String,
        /// Redirect URI (repeatable); must be on the allowed list.
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// A confidential client, with a secret.
        #[arg(long)]
        confidential: bool,
        /// May call the introspection endpoint (implies --confidential).
        #[arg(long)]
        introspection: bool,
        #[arg(long)]
        json: bool,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    Show {
        // Ids are base64url and may begin with '-': never read as a flag.
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
    Remove {
        // Ids are base64url and may begin with '-': never read as a flag.
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AllowedCmd {
    /// Enabled presets and custom redirect URIs.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Enable a preset (see `list` for names).
    Enable {
        preset: String,
    },
    Disable {
        preset: String,
    },
    /// Allow a custom redirect URI (loopback URIs match any port).
    Add {
        uri: String,
    },
    Remove {
        uri: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ScopeCmd {
    Add {
        name: String,
        #[arg(long)]
        description: String,
    },
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum GrantsCmd {
    List {
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Revoke one grant, or every grant of a user (--user U --all).
    Revoke {
        // Ids are base64url and may begin with '-': never read as a flag.
        #[arg(allow_hyphen_values = true)]
        grant_id: Option<String>,
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        all: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Add a new signing key; the previous one keeps verifying until it is retired.
    Rotate,
    /// Stop a key verifying at once, everywhere (a leaked key); the tokens it signed
    /// are refused. The signing key cannot be retired: rotate first.
    Retire {
        // Ids are base64url and may begin with '-': never read as a flag.
        #[arg(allow_hyphen_values = true)]
        kid: String,
    },
    List,
}

async fn open(db: &Database) -> anyhow::Result<Store> {
    db.open().await
}

fn now() -> i64 {
    SystemClock.now()
}

pub async fn user(ctx: &Context, cmd: UserCmd) -> anyhow::Result<()> {
    let store = open(&ctx.db).await?;
    match cmd {
        UserCmd::Add {
            name,
            email,
            admin: is_admin,
            password_stdin,
            password_file,
        } => {
            let password = if password_stdin || password_file.is_some() {
                Some(mcpgate::secrets::new_password(password_file.as_deref())?)
            } else {
                None
            };
            let s = auth_server(ctx, store.clone()).await?;
            let new = admin::NewUser {
                username: name.clone(),
                email,
                admin: is_admin,
                password,
            };
            admin::create_user(&s, new, "operator")
                .await
                .map_err(|e| anyhow::anyhow!("cannot create {name}: {}", e.description))?;
            println!("created user {name}");
        }
        UserCmd::List { json } => {
            let users = store.users().await?;
            if json {
                let v: Vec<_> = users.iter().map(|u| json!({"id": u.id, "username": u.username, "email": u.email, "admin": u.is_admin, "disabled": u.disabled, "created_at": u.created_at})).collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for u in users {
                    println!(
                        "{}\t{}{}",
                        u.username,
                        if u.is_admin { "admin" } else { "user" },
                        if u.disabled { "\tdisabled" } else { "" }
                    );
                }
            }
        }
        UserCmd::Disable { name } => {
            account_act(ctx, &store, &name, |s, n| async move {
                accounts::disable_user(&s, &n, "operator").await
            })
            .await?;
            println!("disabled {name}; its grants, tokens and sessions are ended");
        }
        UserCmd::Enable { name } => {
            account_act(ctx, &store, &name, |s, n| async move {
                accounts::enable_user(&s, &n, "operator").await
            })
            .await?;
            println!("enabled {name}");
        }
        UserCmd::Passwd {
            name,
            password_file,
            ..
        } => {
            let password = mcpgate::secrets::new_password(password_file.as_deref())?;
            account_act(ctx, &store, &name, |s, n| async move {
                admin::reset_password(&s, &n, password, None, "operator").await
            })
            .await?;
            println!("password changed for {name}");
        }
    }
    Ok(())
}

pub async fn client(ctx: &Context, cmd: ClientCmd) -> anyhow::Result<()> {
    let store = open(&ctx.db).await?;
    match cmd {
        ClientCmd::Add {
            name,
            redirect_uris,
            confidential,
            introspection,
            json,
        } => {
            let s = auth_server(ctx, store.clone()).await?;
            let new = admin::NewClient {
                name,
                redirect_uris,
                confidential,
                introspection,
                owner: None,
            };
            let (c, secret) = admin::create_client(&s, new, "operator")
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.description))?;
            if json {
                println!(
                    "{}",
                    json!({"client_id": c.client_id, "client_secret": secret.as_ref().map(Secret::expose)})
                );
            } else {
                println!("client_id:     {}", c.client_id);
                if let Some(s) = &secret {
                    println!("client_secret: {}", s.expose());
                    println!("(the secret is shown once and stored only as a hash)");
                }
            }
        }
        ClientCmd::List { json } => {
            let clients = store.clients(None).await?;
            if json {
                let v: Vec<_> = clients.iter().map(client_json).collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for c in clients {
                    println!(
                        "{}\t{}\t{}\t{}",
                        c.client_id,
                        c.kind.as_str(),
                        c.name,
                        c.redirect_uris.join(" ")
                    );
                }
            }
        }
        ClientCmd::Show { client_id } => {
            let c = store
                .client(&client_id)
                .await?
                .with_context(|| format!("no client {client_id}"))?;
            println!("{}", serde_json::to_string_pretty(&client_json(&c))?);
        }
        ClientCmd::Remove { client_id } => {
            let s = auth_server(ctx, store.clone()).await?;
            if !mcpgate_server::flows::revoke::delete_client(&s, &client_id, None, "operator")
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.description))?
            {
                bail!("no client {client_id}");
            }
            println!("removed {client_id} and revoked its grants");
        }
    }
    Ok(())
}

fn client_json(c: &Client) -> serde_json::Value {
    json!({"client_id": c.client_id, "name": c.name, "kind": c.kind.as_str(), "redirect_uris": c.redirect_uris,
           "confidential": !c.is_public(), "introspection": c.can_introspect, "created_at": c.created_at, "last_used_at": c.last_used_at})
}

pub async fn allowed(ctx: &Context, cmd: AllowedCmd) -> anyhow::Result<()> {
    let store = open(&ctx.db).await?;
    // The operator edits the seeded list, whether or not the server ever ran.
    mcpgate::app::seed_allowed_presets(&store, now()).await?;
    match cmd {
        AllowedCmd::List { json } => {
            let entries = store.allowed_redirects().await?;
            let (on, custom) = AllowEntry::partition(&entries);
            let enabled = |name: &str| on.iter().any(|e| e == name);
            if json {
                let presets: Vec<_> = PRESETS.iter().map(|p| json!({"preset": p.name, "title": p.title, "enabled": enabled(p.name), "redirect_uris": p.redirect_uris})).collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({"presets": presets, "custom": custom}))?
                );
            } else {
                for p in PRESETS {
                    println!(
                        "[{}] {:<14} {}  ({})",
                        if enabled(p.name) { "x" } else { " " },
                        p.name,
                        p.title,
                        p.redirect_uris.join(", ")
                    );
                }
                for c in custom {
                    println!("[x] custom         {c}");
                }
            }
        }
        AllowedCmd::Enable { preset } => {
            admin::set_preset(&auth_server(ctx, store).await?, &preset, true, "operator")
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.description))?;
            println!("enabled {preset}");
        }
        AllowedCmd::Disable { preset } => {
            if !admin::set_preset(&auth_server(ctx, store).await?, &preset, false, "operator")
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.description))?
            {
                bail!("preset {preset} is not enabled");
            }
            println!("disabled {preset}");
        }
        AllowedCmd::Add { uri } => {
            admin::set_redirect_uri(&auth_server(ctx, store).await?, &uri, true, "operator")
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.description))?;
            println!("allowed {uri}");
        }
        AllowedCmd::Remove { uri } => {
            if !admin::set_redirect_uri(&auth_server(ctx, store).await?, &uri, false, "operator")
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.description))?
            {
                bail!("{uri} is not on the list");
            }
            println!("removed {uri}");
        }
    }
    Ok(())
}

pub async fn scope(ctx: &Context, cmd: ScopeCmd) -> anyhow::Result<()> {
    let store = open(&ctx.db).await?;
    match cmd {
        ScopeCmd::Add { name, description } => {
            admin::set_scope(
                &auth_server(ctx, store).await?,
                &name,
                &description,
                "operator",
            )
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.description))?;
            println!("scope {name} added");
        }
        ScopeCmd::List { json } => {
            let scopes = store.scopes().await?;
            if json {
                let v: Vec<_> = scopes
                    .iter()
                    .map(|(n, d)| json!({"name": n, "description": d}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for (n, d) in scopes {
                    println!("{n}\t{d}");
                }
            }
        }
    }
    Ok(())
}

/// Runs one account act (the same function the pages call) and reports a missing user.
async fn account_act<F, Fut>(ctx: &Context, store: &Store, name: &str, act: F) -> anyhow::Result<()>
where
    F: FnOnce(Authority, String) -> Fut,
    Fut: std::future::Future<Output = mcpgate_domain::OAuthResult<accounts::AccountOutcome>>,
{
    let s = auth_server(ctx, store.clone()).await?;
    match act(s, name.to_owned())
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.description))?
    {
        accounts::AccountOutcome::Done => Ok(()),
        accounts::AccountOutcome::NoSuchUser => bail!("no user {name}"),
    }
}

/// What the administration commands act with: the data directory and the
/// configuration file, read as `serve` reads them.
pub struct Context {
    pub db: Database,
    pub file: FileConfig,
}

/// The rules over the store, with the settings `serve` would have in this environment
/// (the same configuration file and `MCPGATE_*` variables): a grant revoked here is
/// remembered as long as the server's own tokens live, not a default's.
pub(crate) async fn auth_server(ctx: &Context, store: Store) -> anyhow::Result<Authority> {
    let args = crate::serve::from_environment()?;
    let (_, cfg) = crate::serve::app_config(&args, &ctx.file, &ctx.db)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    Ok(
        AuthServer::start(store, mcpgate::app::as_config(&cfg)?, clock)
            .await?
            .auth,
    )
}

pub async fn grants(ctx: &Context, cmd: GrantsCmd) -> anyhow::Result<()> {
    let store = open(&ctx.db).await?;
    let user_id = |name: Option<String>| {
        let store = store.clone();
        async move {
            match name {
                None => Ok::<_, anyhow::Error>(None),
                Some(n) => Ok(Some(
                    store
                        .user_by_name(&n)
                        .await?
                        .with_context(|| format!("no user {n}"))?
                        .id,
                )),
            }
        }
    };
    match cmd {
        GrantsCmd::List { user, json } => {
            let uid = user_id(user).await?;
            let grants = store.grant_views(uid.as_deref()).await?;
            if json {
                let v: Vec<_> = grants.iter().map(|g| json!({"grant_id": g.id, "user": g.username, "client_id": g.client_id, "client_name": g.client_name, "scope": g.scope, "resource": g.resource, "created_at": g.created_at, "last_used_at": g.last_used_at})).collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for g in grants {
                    println!("{}\t{}\t{}\t{}", g.id, g.username, g.client_name, g.scope);
                }
            }
        }
        GrantsCmd::Revoke {
            grant_id,
            user,
            all,
        } => {
            let s = auth_server(ctx, store.clone()).await?;
            let ids: Vec<String> = match (grant_id, user, all) {
                (Some(id), None, false) => vec![id],
                (None, Some(u), true) => {
                    let uid = user_id(Some(u)).await?;
                    store
                        .grant_views(uid.as_deref())
                        .await?
                        .into_iter()
                        .map(|g| g.id)
                        .collect()
                }
                _ => bail!("give a GRANT_ID, or --user U --all"),
            };
            let mut n = 0;
            for id in ids {
                if mcpgate_server::flows::revoke::revoke_grant(&s, &id, "operator")
                    .await
                    .map_err(|e| anyhow::anyhow!("{}", e.description))?
                {
                    n += 1;
                }
            }
            if n == 0 {
                bail!("nothing to revoke");
            }
            println!("revoked {n} grant(s)");
        }
    }
    Ok(())
}

pub async fn keys(ctx: &Context, cmd: KeysCmd) -> anyhow::Result<()> {
    let store = open(&ctx.db).await?;
    match cmd {
        KeysCmd::Rotate => {
            let s = auth_server(ctx, store.clone()).await?;
            let kid = keys::rotate(&s, "operator")
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.description))?;
            println!("new signing key {kid}; running servers sign with it at once");
        }
        KeysCmd::Retire { kid } => {
            let s = auth_server(ctx, store.clone()).await?;
            if !keys::retire(&s, &kid, "operator")
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.description))?
            {
                match s.keys.current_kid() == kid {
                    true => bail!("{kid} is the signing key: run `mcpgate keys rotate` first"),
                    false => bail!("no live key {kid} (see `mcpgate keys list`)"),
                }
            }
            println!("retired {kid}; tokens it signed are refused");
        }
        KeysCmd::List => {
            // Oldest first: the last one signs.
            let live = store.signing_keys().await?;
            for (i, k) in live.iter().enumerate() {
                let signing = if i + 1 == live.len() { "\tsigning" } else { "" };
                let when = mcpgate_server::pages::when(Some(k.created_at));
                println!("{}\t{when}{signing}", k.kid);
            }
        }
    }
    Ok(())
}

pub async fn audit(ctx: &Context, limit: i64, json: bool) -> anyhow::Result<()> {
    let store = open(&ctx.db).await?;
    let events = store.audit_events(limit.clamp(1, 10_000)).await?;
    for e in events.iter().rev() {
        if json {
            println!(
                "{}",
                json!({"seq": e.seq, "at": e.at, "event": e.event, "user_id": e.user_id, "client_id": e.client_id,
                                  "detail": serde_json::from_str::<serde_json::Value>(&e.detail).unwrap_or_default()})
            );
        } else {
            println!(
                "{}\t{}\tuser={}\tclient={}\t{}",
                mcpgate_server::pages::when(Some(e.at)),
                e.event,
                e.user_id.as_deref().unwrap_or("-"),
                e.client_id.as_deref().unwrap_or("-"),
                e.detail
            );
        }
    }
    Ok(())
}
