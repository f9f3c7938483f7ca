//! `mcpgate grants`: people's live grants, and revoking them.

use anyhow::{Context as _, bail};
use clap::Subcommand;
use mcpgate_domain::Actor;
use mcpgate_domain::flows::{activity, revoke};
use mcpgate_domain::store::Store;

use super::views::GrantRow;
use super::{Context, print_list, refused};

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

/// The id of the user named `name`, if a name is given.
async fn user_id(store: &dyn Store, name: Option<String>) -> anyhow::Result<Option<String>> {
    let Some(n) = name else {
        return Ok(None);
    };
    let u = store
        .user_by_name(&n)
        .await?
        .with_context(|| format!("no user {n}"))?;
    Ok(Some(u.id))
}

pub async fn run(ctx: &Context, cmd: GrantsCmd) -> anyhow::Result<()> {
    match cmd {
        GrantsCmd::List { user, json } => {
            let a = ctx.authority().await?;
            let uid = user_id(a.store.as_ref(), user).await?;
            let grants = a.store.grant_views(uid.as_deref()).await?;
            let calls = activity::by_app(&a, uid.as_deref()).await?;
            let now = a.now();
            let rows: Vec<GrantRow> = grants
                .iter()
                .filter(|g| g.expires_at.is_none_or(|e| e > now))
                .map(|g| {
                    let key = (g.user_id.clone(), g.client_id.clone());
                    GrantRow::new(g, &calls.get(&key).cloned().unwrap_or_default())
                })
                .collect();
            print_list(&rows, json)?;
        }
        GrantsCmd::Revoke {
            grant_id,
            user,
            all,
        } => {
            let a = ctx.authority().await?;
            let ids: Vec<String> = match (grant_id, user, all) {
                (Some(id), None, false) => vec![id],
                (None, Some(u), true) => {
                    let uid = user_id(a.store.as_ref(), Some(u)).await?;
                    a.store
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
                if revoke::revoke_grant(&a, &id, &Actor::Operator)
                    .await
                    .map_err(|e| refused(&format!("revoking {id}"), e))?
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
