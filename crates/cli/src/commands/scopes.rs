//! `mcpgate scope`: the scopes offered, the words the consent page shows for each, and
//! who may hold each (every signed-in person, or the members of some groups), and the
//! narrower scopes each includes.

use anyhow::bail;
use clap::Subcommand;
use mcpgate_domain::Actor;
use mcpgate_domain::flows::{admin, groups, hierarchy};

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
        /// A narrower scope this one includes (repeatable; replaces what it included):
        /// granting this scope grants that one too, so a call needing it passes.
        #[arg(
            long = "includes",
            value_name = "SCOPE",
            conflicts_with = "includes_nothing"
        )]
        includes: Vec<String>,
        /// The scope includes no other any more.
        #[arg(long)]
        includes_nothing: bool,
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
            includes,
            includes_nothing,
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
            if includes_nothing || !includes.is_empty() {
                hierarchy::set_includes(&a, &name, &includes, &by)
                    .await
                    .map_err(|e| refused(&format!("setting what {name} includes"), e))?;
                match includes.as_slice() {
                    [] => println!("scope {name} includes no other"),
                    n => println!("scope {name} includes {}", n.join(", ")),
                }
            }
            match (open, restrict_to.as_slice()) {
                (true, _) => println!("scope {name} is open to every signed-in person"),
                (false, []) if includes_nothing || !includes.is_empty() => {}
                (false, []) => println!("scope {name} added"),
                (false, g) => println!("scope {name} is restricted to {}", g.join(", ")),
            }
        }
        ScopeCmd::List { json } => {
            let a = ctx.authority().await?;
            let restrictions = a.store.scope_groups().await?;
            let hierarchy = hierarchy::Hierarchy::load(&a).await?;
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
                    let includes = hierarchy
                        .includes(&name)
                        .map(|n| n.iter().cloned().collect())
                        .unwrap_or_default();
                    ScopeRow {
                        name,
                        description,
                        groups,
                        includes,
                    }
                })
                .collect();
            print_list(&rows, json)?;
        }
    }
    Ok(())
}
