//! `mcpgate user`: people's accounts.

use anyhow::bail;
use clap::Subcommand;
use mcpgate_domain::Actor;
use mcpgate_domain::flows::accounts::{self, AccountOutcome};
use mcpgate_domain::flows::admin::{self, NewUser};

use super::views::UserRow;
use super::{Context, print_list, refused};

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

pub async fn run(ctx: &Context, cmd: UserCmd) -> anyhow::Result<()> {
    match cmd {
        UserCmd::Add {
            name,
            email,
            admin: is_admin,
            password_stdin,
            password_file,
        } => {
            let password = if password_stdin || password_file.is_some() {
                Some(crate::secrets::new_password(password_file.as_deref())?)
            } else {
                None
            };
            let new = NewUser {
                username: name.clone(),
                email,
                admin: is_admin,
                password,
            };
            admin::create_user(&ctx.authority().await?, new, &Actor::Operator)
                .await
                .map_err(|e| refused(&format!("creating user {name}"), e))?;
            println!("created user {name}");
        }
        UserCmd::List { json } => {
            let users = ctx.store().await?.users().await?;
            let rows: Vec<UserRow> = users.iter().map(UserRow::from).collect();
            print_list(&rows, json)?;
        }
        UserCmd::Disable { name } => {
            let a = ctx.authority().await?;
            done(
                &name,
                accounts::disable_user(&a, &name, &Actor::Operator).await,
            )?;
            println!("disabled {name}; its grants, tokens and sessions are ended");
        }
        UserCmd::Enable { name } => {
            let a = ctx.authority().await?;
            done(
                &name,
                accounts::enable_user(&a, &name, &Actor::Operator).await,
            )?;
            println!("enabled {name}");
        }
        UserCmd::Passwd {
            name,
            password_file,
            ..
        } => {
            let password = crate::secrets::new_password(password_file.as_deref())?;
            let a = ctx.authority().await?;
            done(
                &name,
                admin::reset_password(&a, &name, password, None, &Actor::Operator).await,
            )?;
            println!("password changed for {name}");
        }
    }
    Ok(())
}

/// An account act's outcome: a missing user is an error of its own.
fn done(name: &str, outcome: mcpgate_domain::OAuthResult<AccountOutcome>) -> anyhow::Result<()> {
    match outcome.map_err(|e| refused(&format!("changing user {name}"), e))? {
        AccountOutcome::Done => Ok(()),
        AccountOutcome::NoSuchUser => bail!("no user {name}"),
    }
}
