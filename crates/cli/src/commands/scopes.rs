//! `mcpgate scope`: the scopes offered, the words the consent page shows for each, and
//! who may hold each (every signed-in person, or the members of some groups).

use anyhow::bail;
use clap::Subcommand;
use mcpgate_domain::Actor;
use mcpgate_domain::flows::{admin, groups};

use super::views::ScopeRow;
use super::{Context, print_list, refused};

#[derive(Debug, Subcommand)]
pub enum ScopeCmd {
    /// Add a scope or change it (an upsert): its description, and who may hold it.
    Add {
        name: String,
        /// What the consent page says of it (required for a new scope).
        #[arg(long)]
        description: Option<String>,
        /// Restrict the scope to the members of this group (repeatable); replaces the
        /// groups it had. People outside them lose it at once.
        #[arg(long = "group", value_name = "NAME", conflicts_with = "open")]
        groups: Vec<String>,
        /// Open the scope to every signed-in person again.
        #[arg(long)]
        open: bool,
    },
    List {
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(ctx: &Context, cmd: ScopeCmd) -> anyhow::Result<()> {
    match cmd {
        ScopeCmd::Add {
            name,
            description,
            groups: restrict_to,
            open,
        } => {
            let a = ctx.authority().await?;
            let by = Actor::Operator;
            let exists = a.store.scopes().await?.iter().any(|(n, _)| *n == name);
            match description {
                Some(d) => admin::set_scope(&a, &name, &d, &by)
                    .await
                    .map_err(|e| refused(&format!("adding scope {name}"), e))?,
                None if exists || a.cfg.default_scopes.contains(&name) => {}
                None => bail!("a new scope needs --description (what the consent page says)"),
            }
            if open || !restrict_to.is_empty() {
                groups::set_scope_groups(&a, &name, &restrict_to, &by)
                    .await
                    .map_err(|e| refused(&format!("setting who may hold {name}"), e))?;
            }
            match (open, restrict_to.as_slice()) {
                (true, _) => println!("scope {name} is open to every signed-in person"),
                (false, []) => println!("scope {name} added"),
                (false, g) => println!("scope {name} is restricted to {}", g.join(", ")),
            }
        }
        ScopeCmd::List { json } => {
            let a = ctx.authority().await?;
            let restrictions = a.store.scope_groups().await?;
            let rows: Vec<ScopeRow> = a
                .store
                .scopes()
                .await?
                .into_iter()
                .map(|(name, description)| {
                    let groups = restrictions
                        .iter()
                        .filter(|(s, _)| *s == name)
                        .map(|(_, g)| g.clone())
                        .collect();
                    ScopeRow {
                        name,
                        description,
                        groups,
                    }
                })
                .collect();
            print_list(&rows, json)?;
        }
    }
    Ok(())
}
