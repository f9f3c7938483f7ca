//! `mcpgate keys`: the signing keys.

use anyhow::bail;
use clap::Subcommand;
use mcpgate_domain::Actor;
use mcpgate_domain::flows::keys;

use super::views::KeyRow;
use super::{Context, print_list, refused};

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
    /// Live keys, oldest first; the last one signs.
    List {
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(ctx: &Context, cmd: KeysCmd) -> anyhow::Result<()> {
    match cmd {
        KeysCmd::Rotate => {
            let a = ctx.authority().await?;
            let kid = keys::rotate(&a, &Actor::Operator)
                .await
                .map_err(|e| refused("rotating the signing key", e))?;
            println!("new signing key {kid}; running servers sign with it at once");
        }
        KeysCmd::Retire { kid } => {
            let a = ctx.authority().await?;
            if !keys::retire(&a, &kid, &Actor::Operator)
                .await
                .map_err(|e| refused(&format!("retiring {kid}"), e))?
            {
                match a.keys.current_kid() == kid {
                    true => bail!("{kid} is the signing key: run `mcpgate keys rotate` first"),
                    false => bail!("no live key {kid} (see `mcpgate keys list`)"),
                }
            }
            println!("retired {kid}; tokens it signed are refused");
        }
        KeysCmd::List { json } => {
            let live = ctx.store().await?.signing_keys().await?;
            print_list(&KeyRow::list(&live), json)?;
        }
    }
    Ok(())
}
