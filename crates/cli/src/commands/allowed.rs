//! `mcpgate clients allowed`: which AI clients may register (the redirect URI
//! allow-list: presets of known clients, and custom URIs).

use anyhow::bail;
use clap::Subcommand;
use mcpgate_core::redirect_uri::{AllowEntry, PRESETS};
use mcpgate_domain::Actor;
use mcpgate_domain::flows::admin;
use serde_json::json;

use super::views::PresetRow;
use super::{Context, refused};

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

pub async fn run(ctx: &Context, cmd: AllowedCmd) -> anyhow::Result<()> {
    // The operator edits the seeded list, whether or not the server ever ran.
    let a = ctx.authority().await?;
    let by = Actor::Operator;
    match cmd {
        AllowedCmd::List { json } => {
            let entries = a.store.allowed_redirects().await?;
            let (on, custom) = AllowEntry::partition(&entries);
            let presets: Vec<PresetRow> = PRESETS
                .iter()
                .map(|p| PresetRow {
                    preset: p.name,
                    title: p.title,
                    enabled: on.iter().any(|e| e == p.name),
                    redirect_uris: p.redirect_uris,
                })
                .collect();
            if json {
                let v = json!({"presets": presets, "custom": custom});
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for p in presets {
                    println!("{p}");
                }
                for c in custom {
                    println!("[x] custom         {c}");
                }
            }
        }
        AllowedCmd::Enable { preset } => {
            let changed = admin::set_preset(&a, &preset, true, &by)
                .await
                .map_err(|e| refused(&format!("enabling {preset}"), e))?;
            println!(
                "{} {preset}",
                if changed {
                    "enabled"
                } else {
                    "already enabled:"
                }
            );
        }
        AllowedCmd::Disable { preset } => {
            if !admin::set_preset(&a, &preset, false, &by)
                .await
                .map_err(|e| refused(&format!("disabling {preset}"), e))?
            {
                bail!("preset {preset} is not enabled");
            }
            println!("disabled {preset}");
        }
        AllowedCmd::Add { uri } => {
            let changed = admin::set_redirect_uri(&a, &uri, true, &by)
                .await
                .map_err(|e| refused(&format!("allowing {uri}"), e))?;
            println!(
                "{} {uri}",
                if changed {
                    "allowed"
                } else {
                    "already allowed:"
                }
            );
        }
        AllowedCmd::Remove { uri } => {
            if !admin::set_redirect_uri(&a, &uri, false, &by)
                .await
                .map_err(|e| refused(&format!("removing {uri}"), e))?
            {
                bail!("{uri} is not on the list");
            }
            println!("removed {uri}");
        }
    }
    Ok(())
}
