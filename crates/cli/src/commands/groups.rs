//! `mcpgate group`: groups of people, to which scopes can be restricted
//! (`mcpgate scope add SCOPE --group NAME`).

use anyhow::bail;
use clap::Subcommand;
use mcpgate_domain::Actor;
use mcpgate_domain::flows::groups;

use super::views::GroupRow;
use super::{Context, print_list, refused};

#[derive(Debug, Subcommand)]
pub enum GroupCmd {
    /// Create a group.
    Add {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        /// Let this identity provider's groups claim set the group's members at each
        /// sign-in through it (see `mcpgate idp add --groups-claim`).
        #[arg(long = "from-idp", value_name = "PROVIDER")]
        from_idp: Option<String>,
    },
    /// Remove a group (refused while a scope is restricted to it alone).
    Remove { name: String },
    /// Groups, their members and the scopes restricted to them.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Add or remove members.
    #[command(subcommand)]
    Member(MemberCmd),
}

#[derive(Debug, Subcommand)]
pub enum MemberCmd {
    /// Add a person (by user name) to a group.
    Add { group: String, user: String },
    /// Remove a person from a group: what they may no longer hold is taken back at
    /// once (their tokens carrying it are revoked, their grants narrowed).
    Remove { group: String, user: String },
}

pub async fn run(ctx: &Context, cmd: GroupCmd) -> anyhow::Result<()> {
    let a = ctx.authority().await?;
    let by = Actor::Operator;
    match cmd {
        GroupCmd::Add {
            name,
            description,
            from_idp,
        } => {
            groups::add_group(&a, &name, &description, from_idp.as_deref(), &by)
                .await
                .map_err(|e| refused(&format!("adding group {name}"), e))?;
            println!("group {name} added");
        }
        GroupCmd::Remove { name } => {
            if !groups::remove_group(&a, &name, &by)
                .await
                .map_err(|e| refused(&format!("removing group {name}"), e))?
            {
                bail!("no group named {name}");
            }
            println!("group {name} removed");
        }
        GroupCmd::List { json } => {
            let rows: Vec<GroupRow> = groups::list(&a)
                .await?
                .into_iter()
                .map(GroupRow::from)
                .collect();
            print_list(&rows, json)?;
        }
        GroupCmd::Member(MemberCmd::Add { group, user }) => {
            let added = groups::add_member(&a, &group, &user, &by)
                .await
                .map_err(|e| refused(&format!("adding {user} to {group}"), e))?;
            if added {
                println!("{user} added to {group}");
            } else {
                println!("{user} is already a member of {group}");
            }
        }
        GroupCmd::Member(MemberCmd::Remove { group, user }) => {
            if !groups::remove_member(&a, &group, &user, &by)
                .await
                .map_err(|e| refused(&format!("removing {user} from {group}"), e))?
            {
                bail!("{user} is not a member of {group} (added by hand)");
            }
            println!("{user} removed from {group}");
        }
    }
    Ok(())
}
