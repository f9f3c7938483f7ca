//! `mcpgate idp`: the identity providers people may sign in with, and the same from the
//! configuration file (`[[idp]]` tables). Client secrets are read from standard input,
//! an environment variable or a file, never from the command line, and never printed.

use std::io::Read;

use anyhow::{Context, bail};
use clap::Subcommand;
use mcpgate_core::secret::Secret;
use mcpgate_domain::Actor;
use mcpgate_domain::flows::identities::{self, LinkOutcome, ProviderIdentity};
use mcpgate_server::ServerConfig;
use mcpgate_server::idp::{IdpSettings, Preset};
use serde_json::json;

use super::views::{ProviderRow, TrustedRow};
use super::{Context as Ctx, print_list, refused};
use crate::config::{self, FileConfig, IdpFileEntry};
use mcpgate_domain::model::TrustedIssuer;

#[derive(Debug, Subcommand)]
pub enum IdpCmd {
    /// Add (or replace) a provider; prints the redirect URI to register at the provider.
    Add {
        /// Short name, used in URLs (a-z, 0-9, -).
        name: String,
        /// The provider's issuer (OpenID discovery); optional for google and github.
        #[arg(long)]
        issuer: Option<String>,
        #[arg(long)]
        client_id: String,
        /// Read the client secret from standard input (else --client-secret-file, else
        /// MCPGATE_IDP_CLIENT_SECRET).
        #[arg(long)]
        client_secret_stdin: bool,
        /// Read the client secret from this file.
        #[arg(
            long,
            env = "MCPGATE_IDP_CLIENT_SECRET_FILE",
            conflicts_with = "client_secret_stdin"
        )]
        client_secret_file: Option<std::path::PathBuf>,
        /// oidc (default), google, entra or github.
        #[arg(long, default_value = "oidc")]
        preset: String,
        /// Shown on the sign-in page: "Continue with <display name>".
        #[arg(long)]
        display_name: Option<String>,
        /// Email domain whose people may get an account on first sign-in (repeatable).
        #[arg(long = "allowed-domain")]
        allowed_domains: Vec<String>,
        /// Create accounts on first sign-in for verified emails of an allowed domain.
        #[arg(long)]
        auto_create: bool,
        /// The claim listing the person's groups (`groups`; Entra: `groups` or `roles`):
        /// each sign-in sets the person's memberships of the groups created with
        /// `mcpgate group add NAME --from-idp PROVIDER`.
        #[arg(long)]
        groups_claim: Option<String>,
        /// A scope to ask for so that the provider sends the groups claim (Okta:
        /// `groups`).
        #[arg(long, requires = "groups_claim")]
        groups_scope: Option<String>,
        /// The public URL of this server, for the redirect URI printed.
        #[arg(long, env = "MCPGATE_PUBLIC_URL")]
        public_url: Option<String>,
        #[arg(long)]
        json: bool,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    Remove {
        name: String,
    },
    /// Trust a provider's ID-JAGs (enterprise-managed authorization): its people get
    /// tokens for the clients it names, with no browser, by its policy.
    Trust {
        /// Short name (a-z, 0-9, -); the same name as a sign-in provider makes its people
        /// the same accounts.
        name: String,
        /// The `iss` of its ID-JAGs.
        #[arg(long)]
        issuer: String,
        /// Where its signing keys are (a JWK Set).
        #[arg(long)]
        jwks_uri: String,
        /// Email domain whose people it may vouch for (repeatable; none: any).
        #[arg(long = "allowed-domain")]
        allowed_domains: Vec<String>,
        /// Create an account for a verified email of an allowed domain.
        #[arg(long)]
        auto_create: bool,
        /// An audience of its access tokens that may be exchanged here for ours (RFC
        /// 8693 token exchange; repeatable): another mcpgate's resource, whose people
        /// then reach this server with no pop-up.
        #[arg(long = "exchange-audience")]
        exchange_audiences: Vec<String>,
        /// A client of this server (its id) that may exchange those tokens (repeatable;
        /// needed with --exchange-audience): the gateway in front, made with
        /// `mcpgate client add --confidential`.
        #[arg(long = "exchange-client")]
        exchange_clients: Vec<String>,
    },
    /// Stop trusting a provider's ID-JAGs.
    Distrust {
        name: String,
    },
    /// The providers whose ID-JAGs are trusted.
    Trusted {
        #[arg(long)]
        json: bool,
    },
    /// Link a person's identity at a provider to an existing account by hand: the only
    /// way for an administrator's account, which is never linked by email. The subject
    /// is in the audit record of the refused sign-in (`mcpgate audit`).
    Link {
        /// The provider's name.
        name: String,
        /// The person's identifier at the provider (the ID token's `sub`; GitHub's
        /// numeric user id).
        #[arg(long)]
        subject: String,
        /// The account to link it to.
        #[arg(long)]
        user: String,
    },
}

/// What a provider is trusted for and how it is shown, from flags or from the file.
#[derive(Debug, Default)]
struct Options {
    display_name: Option<String>,
    allowed_domains: Vec<String>,
    auto_create: bool,
    groups_claim: Option<String>,
    groups_scope: Option<String>,
}

/// Builds and checks a provider's settings, from flags or from the file.
fn settings(
    name: &str,
    preset: &str,
    issuer: Option<String>,
    client_id: &str,
    secret: Secret,
    o: Options,
) -> anyhow::Result<IdpSettings> {
    let preset = Preset::parse(preset)
        .with_context(|| format!("unknown preset {preset:?} (oidc, google, entra, github)"))?;
    let issuer = issuer
        .or_else(|| preset.default_issuer().map(str::to_owned))
        .context("--issuer is required for this preset")?;
    let display_name = o.display_name.unwrap_or_else(|| match preset {
        Preset::Oidc => name.to_owned(),
        p => p.default_display_name().to_owned(),
    });
    let s = IdpSettings {
        name: name.to_owned(),
        display_name,
        preset,
        issuer: issuer.trim_end_matches('/').to_owned(),
        client_id: client_id.to_owned(),
        client_secret: secret,
        allowed_domains: o
            .allowed_domains
            .into_iter()
            .map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase())
            .collect(),
        auto_create: o.auto_create,
        groups_claim: o.groups_claim,
        groups_scope: o.groups_scope,
    };
    s.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(s)
}

/// The providers of the configuration file; each secret from `client_secret_env` or
/// `client_secret_file`.
pub fn from_file(file: &FileConfig) -> anyhow::Result<Vec<IdpSettings>> {
    file.idp
        .iter()
        .flatten()
        .map(|e: &IdpFileEntry| {
            let secret = match (&e.client_secret_env, &e.client_secret_file) {
                (Some(var), None) => std::env::var(var).with_context(|| {
                    format!("idp {}: environment variable {var} is not set", e.name)
                })?,
                (None, Some(path)) => std::fs::read_to_string(path)
                    .with_context(|| format!("idp {}: reading {}", e.name, path.display()))?
                    .trim_end_matches(['\n', '\r'])
                    .to_owned(),
                _ => bail!(
                    "idp {}: give exactly one of client_secret_env or client_secret_file",
                    e.name
                ),
            };
            settings(
                &e.name,
                e.preset.as_deref().unwrap_or("oidc"),
                e.issuer.clone(),
                &e.client_id,
                Secret::new(secret),
                Options {
                    display_name: e.display_name.clone(),
                    allowed_domains: e.allowed_domains.clone().unwrap_or_default(),
                    auto_create: e.auto_create.unwrap_or(false),
                    groups_claim: e.groups_claim.clone(),
                    groups_scope: e.groups_scope.clone(),
                },
            )
            .with_context(|| format!("idp {}", e.name))
        })
        .collect()
}

fn redirect_uri(public_url: Option<&str>, file: &FileConfig, name: &str) -> anyhow::Result<String> {
    let url = config::parse_public_url(
        public_url
            .or(file.public_url.as_deref())
            .unwrap_or(config::DEFAULT_PUBLIC_URL),
    )?;
    let as_cfg = ServerConfig::new(&config::origin_string(&url), "", Default::default());
    Ok(as_cfg
        .rules
        .endpoint(&format!("/login/idp/{name}/callback")))
}

pub async fn run(ctx: &Ctx, cmd: IdpCmd) -> anyhow::Result<()> {
    let file = &ctx.file;
    match cmd {
        IdpCmd::Add {
            name,
            issuer,
            client_id,
            client_secret_stdin,
            client_secret_file,
            preset,
            display_name,
            allowed_domains,
            auto_create,
            groups_claim,
            groups_scope,
            public_url,
            json,
        } => {
            let secret = if let Some(f) = &client_secret_file {
                crate::secrets::read_secret_file(f, "client secret")?
                    .expose()
                    .to_owned()
            } else if client_secret_stdin {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s)?;
                s.trim_end_matches(['\n', '\r']).to_owned()
            } else {
                std::env::var("MCPGATE_IDP_CLIENT_SECRET").context(
                    "give the client secret on standard input (--client-secret-stdin), in a file (--client-secret-file) or in MCPGATE_IDP_CLIENT_SECRET",
                )?
            };
            if secret.len() > 4096 {
                bail!("the client secret is too long");
            }
            let s = settings(
                &name,
                &preset,
                issuer,
                &client_id,
                Secret::new(secret),
                Options {
                    display_name,
                    allowed_domains,
                    auto_create,
                    groups_claim,
                    groups_scope,
                },
            )?;
            let a = ctx.authority().await?;
            identities::add_provider(&a, &s.to_row(a.now()), &Actor::Operator)
                .await
                .map_err(|e| refused(&format!("adding identity provider {name}"), e))?;
            let redirect = redirect_uri(public_url.as_deref(), file, &name)?;
            if json {
                println!("{}", json!({"name": s.name, "redirect_uri": redirect}));
            } else {
                println!("added identity provider {} ({})", s.name, s.preset.as_str());
                println!("register this redirect URI at the provider: {redirect}");
            }
        }
        IdpCmd::List { json } => {
            let rows = ctx.store().await?.identity_providers().await?;
            let list: Vec<ProviderRow> = rows
                .iter()
                .filter_map(IdpSettings::from_row)
                .map(|p| ProviderRow::from(&p))
                .collect();
            print_list(&list, json)?;
        }
        IdpCmd::Trust {
            name,
            issuer,
            jwks_uri,
            allowed_domains,
            auto_create,
            exchange_audiences,
            exchange_clients,
        } => {
            let a = ctx.authority().await?;
            let t = TrustedIssuer {
                name: name.clone(),
                issuer,
                jwks_uri,
                allowed_domains: allowed_domains
                    .iter()
                    .map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase())
                    .collect(),
                auto_create,
                exchange_audiences,
                exchange_clients,
                created_at: a.now(),
            };
            identities::trust_issuer(&a, &t, &Actor::Operator)
                .await
                .map_err(|e| refused(&format!("trusting {name}"), e))?;
            println!("trusting ID-JAGs of {name} ({})", t.issuer);
        }
        IdpCmd::Distrust { name } => {
            let a = ctx.authority().await?;
            if !identities::distrust_issuer(&a, &name, &Actor::Operator)
                .await
                .map_err(|e| refused(&format!("distrusting {name}"), e))?
            {
                bail!("no trusted provider named {name}");
            }
            println!("no longer trusting ID-JAGs of {name}");
        }
        IdpCmd::Trusted { json } => {
            let rows: Vec<TrustedRow> = ctx
                .store()
                .await?
                .trusted_issuers()
                .await?
                .into_iter()
                .map(TrustedRow::from)
                .collect();
            print_list(&rows, json)?;
        }
        IdpCmd::Remove { name } => {
            let a = ctx.authority().await?;
            if !identities::remove_provider(&a, &name, &Actor::Operator)
                .await
                .map_err(|e| refused(&format!("removing identity provider {name}"), e))?
            {
                bail!("no identity provider named {name}");
            }
            println!("removed identity provider {name}");
        }
        IdpCmd::Link {
            name,
            subject,
            user,
        } => {
            let a = ctx.authority().await?;
            let configured = file.idp.iter().flatten().any(|e| e.name == name);
            // A sign-in provider, or an issuer trusted for ID-JAGs or token exchange:
            // its people are known by the same subject.
            let stored = a
                .store
                .identity_providers()
                .await?
                .iter()
                .any(|r| r.name == name)
                || a.store
                    .trusted_issuers()
                    .await?
                    .iter()
                    .any(|t| t.name == name);
            if !configured && !stored {
                bail!("no identity provider named {name}");
            }
            if subject.is_empty() || subject.len() > 255 {
                bail!("--subject must be 1-255 characters");
            }
            let u = a
                .store
                .user_by_name(&user)
                .await?
                .with_context(|| format!("no user {user}"))?;
            let id = ProviderIdentity {
                provider: &name,
                subject: &subject,
                email: None,
            };
            match identities::link_by_operator(&a, id, &u)
                .await
                .map_err(|e| refused(&format!("linking {subject} to {user}"), e))?
            {
                LinkOutcome::Linked => {
                    println!("linked {name} identity {subject} to {user}")
                }
                LinkOutcome::AlreadyLinked => {
                    bail!("the {name} identity {subject} is linked to an account already")
                }
            }
        }
    }
    Ok(())
}
