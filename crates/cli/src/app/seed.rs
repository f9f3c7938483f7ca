//! First-run data, through the same domain flows (and the same audit) as an operator's
//! commands: the scopes this deployment offers, the allowed-client presets, and the
//! first administrator. Idempotent: a later start changes nothing it need not.

use mcpgate_core::secret::Secret;
use mcpgate_domain::Authority;
use mcpgate_domain::flows::admin::{self, Offered};

use super::AppConfig;

/// The administrator account created on first run, with its one-time password.
pub struct FirstRun {
    pub username: String,
    pub password: Secret,
}

/// Seeds what `cfg` offers; the first administrator when there is nobody yet.
pub async fn first_run(auth: &Authority, cfg: &AppConfig) -> anyhow::Result<Option<FirstRun>> {
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
        // The configuration is the source of truth: its descriptions win.
        admin::offer_scopes(auth, &scopes, Offered::AsDeclared)
            .await
            .map_err(refused)?;
    }
    admin::seed_allowed_presets(auth).await.map_err(refused)?;
    let first = admin::create_first_administrator(auth)
        .await
        .map_err(refused)?;
    Ok(first.map(|(user, password)| FirstRun {
        username: user.username,
        password,
    }))
}
