//! `mcpgate scope`: the scopes offered and the words the consent page shows for each.

use clap::Subcommand;
use mcpgate_domain::Actor;
use mcpgate_domain::flows::admin;

use super::views::ScopeRow;
use super::{Context, print_list, refused};

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

pub async fn run(ctx: &Context, cmd: ScopeCmd) -> anyhow::Result<()> {
    match cmd {
        ScopeCmd::Add { name, description } => {
            admin::set_scope(
                &ctx.authority().await?,
                &name,
                &description,
                &Actor::Operator,
            )
            .await
            .map_err(|e| refused(&format!("adding scope {name}"), e))?;
            println!("scope {name} added");
        }
        ScopeCmd::List { json } => {
            let rows: Vec<ScopeRow> = ctx
                .store()
                .await?
                .scopes()
                .await?
                .into_iter()
                .map(|(name, description)| ScopeRow { name, description })
                .collect();
            print_list(&rows, json)?;
        }
    }
    Ok(())
}
