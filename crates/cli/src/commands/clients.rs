//! `mcpgate client`: clients registered by hand (an AI client that takes a client id,
//! a resource server's introspection credentials).

use anyhow::{Context as _, bail};
use clap::Subcommand;
use mcpgate_core::ScopeSet;
use mcpgate_core::secret::Secret;
use mcpgate_domain::Actor;
use mcpgate_domain::flows::{admin, revoke};
use mcpgate_domain::model::{ClientKeys, Machine};
use serde_json::json;

use super::views::ClientRow;
use super::{Context, print_list, refused};

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
        /// A machine: gets tokens with the client_credentials grant, acting as itself,
        /// for the --scope and --resource given (a secret, unless --jwks-uri or
        /// --jwks-file).
        #[arg(long, requires_all = ["scopes", "resources"])]
        machine: bool,
        /// A scope the machine may get (repeatable).
        #[arg(long = "scope", value_name = "SCOPE", requires = "machine")]
        scopes: Vec<String>,
        /// A resource the machine may get tokens for (repeatable).
        #[arg(long = "resource", value_name = "URL", requires = "machine")]
        resources: Vec<String>,
        /// Authenticate with private_key_jwt (RFC 7523) and the JWK Set at this URL,
        /// instead of a secret.
        #[arg(long, value_name = "URL", conflicts_with = "jwks_file")]
        jwks_uri: Option<String>,
        /// Authenticate with private_key_jwt and the JWK Set in this file.
        #[arg(long, value_name = "FILE")]
        jwks_file: Option<std::path::PathBuf>,
        /// How a client with a secret sends it: in the Authorization header
        /// (client_secret_basic, the default) or in the request body
        /// (client_secret_post). It may use that one only.
        #[arg(long, value_name = "METHOD", value_parser = ["client_secret_basic", "client_secret_post"],
              conflicts_with_all = ["jwks_uri", "jwks_file"])]
        auth_method: Option<String>,
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

pub async fn run(ctx: &Context, cmd: ClientCmd) -> anyhow::Result<()> {
    match cmd {
        ClientCmd::Add {
            name,
            redirect_uris,
            confidential,
            introspection,
            machine,
            scopes,
            resources,
            jwks_uri,
            jwks_file,
            auth_method,
            json,
        } => {
            let keys = match (jwks_uri, jwks_file) {
                (Some(u), _) => Some(ClientKeys::Uri(u)),
                (None, Some(f)) => {
                    let text = std::fs::read_to_string(&f)
                        .with_context(|| format!("reading {}", f.display()))?;
                    Some(ClientKeys::Set(serde_json::from_str(&text).with_context(
                        || format!("{} is not a JWK Set (JSON)", f.display()),
                    )?))
                }
                (None, None) => None,
            };
            let machine = machine
                .then(|| -> anyhow::Result<Machine> {
                    Ok(Machine {
                        scopes: ScopeSet::parse(&scopes.join(" "))
                            .map_err(|e| anyhow::anyhow!("--scope: {e}"))?,
                        resources: resources
                            .iter()
                            .map(|r| {
                                mcpgate_core::resource::indicator(r).with_context(|| {
                                    format!("--resource {r} is not a resource URL")
                                })
                            })
                            .collect::<anyhow::Result<_>>()?,
                    })
                })
                .transpose()?;
            let new = admin::NewClient {
                name,
                redirect_uris,
                confidential,
                introspection,
                owner: None,
                machine,
                keys,
                secret_in_body: auth_method.as_deref() == Some("client_secret_post"),
            };
            let (c, secret) = admin::create_client(&ctx.authority().await?, new, &Actor::Operator)
                .await
                .map_err(|e| refused("creating the client", e))?;
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
            let clients = ctx.store().await?.clients(None).await?;
            let rows: Vec<ClientRow> = clients.iter().map(ClientRow::from).collect();
            print_list(&rows, json)?;
        }
        ClientCmd::Show { client_id } => {
            let c = ctx
                .store()
                .await?
                .client(&client_id)
                .await?
                .with_context(|| format!("no client {client_id}"))?;
            println!("{}", serde_json::to_string_pretty(&ClientRow::from(&c))?);
        }
        ClientCmd::Remove { client_id } => {
            let a = ctx.authority().await?;
            if !revoke::delete_client(&a, &client_id, None, &Actor::Operator)
                .await
                .map_err(|e| refused(&format!("removing {client_id}"), e))?
            {
                bail!("no client {client_id}");
            }
            println!("removed {client_id} and revoked its grants");
        }
    }
    Ok(())
}
