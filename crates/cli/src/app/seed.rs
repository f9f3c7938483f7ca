//! First-run data, through the same domain flows (and the same audit) as an operator's
//! commands: the scopes this deployment offers, the allowed-client presets, and the
//! first administrator. Idempotent: a later start changes nothing it need not.

use mcpgate_core::secret::Secret;
use mcpgate_domain::Actor;
use mcpgate_domain::Authority;
use mcpgate_domain::flows::admin::{self, Offered};
use mcpgate_domain::flows::groups;

use super::AppConfig;

/// The administrator account created on first run, with its one-time password.
pub struct FirstRun {
    pub username: String,
    pub password: Secret,
}

/// Seeds what `cfg` offers; the first administrator when there is nobody yet.
pub async fn first_run(auth: &Authority, cfg: &AppConfig) -> anyhow::Result<Option<FirstRun>> {
    catalog(auth, cfg).await?;
    let first = admin::create_first_administrator(auth)
        .await
        .map_err(|e| crate::commands::refused("seeding the database", e))?;
    Ok(first.map(|(user, password)| FirstRun {
        username: user.username,
        password,
    }))
}

/// What this deployment offers, as `serve` seeds it: its scopes (and who may hold an
/// upstream's, as its configuration says) and the allowed-client presets. The
/// administration commands seed it too, so that an operator who configures before the
/// first start sees the same lists.
pub async fn catalog(auth: &Authority, cfg: &AppConfig) -> anyhow::Result<()> {
    let refused =
        |e: mcpgate_domain::OAuthError| crate::commands::refused("seeding the database", e);
    if cfg.upstreams.is_empty() {
        // The calculator's scopes only where it is served: a gateway advertises its own.
        admin::offer_scopes(auth, &mcpgate_calculator::SCOPES, Offered::Missing)
            .await
            .map_err(refused)?;
    }
    for u in &cfg.upstreams {
        let scopes: Vec<(&str, &str)> = u
            .scopes
            .iter()
            .map(|s| (s.name.as_str(), s.description.as_str()))
            .collect();
        // The configuration is the source of truth: its descriptions win, and so do
        // the groups it names for a scope.
        admin::offer_scopes(auth, &scopes, Offered::AsDeclared)
            .await
            .map_err(refused)?;
        for decl in &u.scopes {
            let Some(names) = &decl.groups else {
                continue;
            };
            for g in names {
                if auth.store.group(g).await?.is_none() {
                    groups::add_group(auth, g, "", None, &Actor::Operator)
                        .await
                        .map_err(refused)?;
                }
            }
            groups::set_scope_groups(auth, &decl.name, names, &Actor::Operator)
                .await
                .map_err(refused)?;
        }
    }
    admin::seed_allowed_presets(auth).await.map_err(refused)?;
    Ok(())
}
