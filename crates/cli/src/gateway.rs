//! Gateway mode of `serve`: each configured upstream MCP server becomes a protected
//! resource of its own — its path, its RFC 9728 metadata, its scopes and audience, its
//! guard — forwarded to by `mcpgate-gateway`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use axum::Router;
use mcpgate_core::ScopeSet;
use mcpgate_core::jwt::Expectations;
use mcpgate_domain::flows::{connections, upstream_oauth};
use mcpgate_domain::store::Store;
use mcpgate_gateway::{
    Elicitation, EmailDirectory, Identity, JwtSigner, PersonalCredentials, Upstream, UpstreamAudit,
    UpstreamConfig, credentials::Unavailable,
};
use mcpgate_mcp::validator::local::LocalJwt;
use mcpgate_mcp::{EndpointConfig, metadata};
use mcpgate_server::AuthServer;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::app::protect::{Resource, protect};
use crate::app::{AppConfig, ToolCallAudit};

/// The name of an upstream given by `--upstream` / `--upstream-command`: it is served
/// at the MCP endpoint itself (`/mcp`).
pub const FLAG_UPSTREAM: &str = "default";

/// Each upstream with the canonical URL of its endpoint: `/mcp` for the one given by
/// flags, `/mcp/<name>` for those of the configuration file.
pub fn resources(cfg: &AppConfig) -> anyhow::Result<Vec<(UpstreamConfig, Url)>> {
    mcpgate_gateway::config::validate_all(&cfg.upstreams)?;
    let base = cfg.resource();
    let mut out = Vec::new();
    for u in &cfg.upstreams {
        let mut url = base.clone();
        if u.name != FLAG_UPSTREAM {
            url.set_path(&format!("{}/{}", base.path().trim_end_matches('/'), u.name));
        }
        out.push((u.clone(), url));
    }
    // An identity JWT is for its upstream alone: an audience that is also a resource
    // mcpgate issues tokens for (`/mcp`, any upstream's path, a `--resource`) would
    // let that upstream present it there.
    let protected: Vec<String> = std::iter::once(metadata::canonical_resource(&base))
        .chain(out.iter().map(|(_, url)| metadata::canonical_resource(url)))
        .chain(cfg.extra_resources.iter().cloned())
        .collect();
    for (u, _) in &out {
        let audience = u.audience();
        let canonical = Url::parse(&audience)
            .map(|a| metadata::canonical_resource(&a))
            .unwrap_or_else(|_| audience.clone());
        if protected.iter().any(|r| *r == audience || *r == canonical) {
            bail!(
                "upstream {:?}: its identity audience {audience:?} is a resource this server \
                 protects; an identity JWT must not be accepted anywhere but at its upstream",
                u.name
            );
        }
        u.check_isolation(&secret_paths(cfg))?;
    }
    Ok(out)
}

/// What a stdio upstream's working directory must not hold: the data directory and
/// the key-encryption key file.
fn secret_paths(cfg: &AppConfig) -> Vec<std::path::PathBuf> {
    let mut paths = vec![cfg.data_dir.clone()];
    paths.extend(cfg.key_encryption.file.clone());
    paths
}

/// Every scope the upstreams declare: the authorization server's default scopes.
pub fn all_scopes(cfg: &AppConfig) -> ScopeSet {
    ScopeSet::from_tokens(
        cfg.upstreams
            .iter()
            .flat_map(|u| u.scopes.iter().map(|s| s.name.as_str())),
    )
}

/// The routes of every upstream: endpoint (guarded) and metadata document.
pub fn router(
    cfg: &AppConfig,
    auth: &AuthServer,
    audit: &ToolCallAudit,
    cancel: CancellationToken,
) -> anyhow::Result<Router> {
    let client = mcpgate_gateway::http_client();
    let emails: Arc<dyn EmailDirectory> = Arc::new(StoreEmails::new(auth.auth.store.clone()));
    let mut router = Router::new();
    let calls = Arc::new(crate::app::doctor::CallSteps::new(auth.auth.clone()));
    let several = cfg.upstreams.len() > 1;
    let base = cfg.base_path();
    for (u, resource) in resources(cfg)? {
        let validator = Arc::new(
            LocalJwt::new(
                auth.auth.keys.clone(),
                auth.auth.revoked.clone(),
                Expectations::new(cfg.issuer(), metadata::canonical_resource(&resource)),
                cfg.clock.clone(),
            )
            .with_observer(calls.clone()),
        );
        let audit_sink = Arc::new(UpstreamAudit {
            name: u.name.clone(),
            sink: audit.sink(),
        });
        let p = protect(
            Resource {
                url: &resource,
                issuer: cfg.issuer(),
                policy: u.policy(),
                // Tools, prompts and resources: every scope a call here can need.
                scopes: u.gateway_policy().all_scopes(),
                name: format!("mcpgate gateway: {}", u.name),
                root_metadata_under: (!several).then_some(base.as_str()),
                max_body_bytes: cfg.max_body_bytes,
                dpop: crate::app::protect::DpopSetup::shared(auth, cfg.clock.clone()),
            },
            validator,
            audit_sink,
            cancel.clone(),
            |_| {},
        );
        let mut endpoint = EndpointConfig::new(resource.clone());
        endpoint.extra_origins = cfg.extra_origins.clone();
        endpoint.max_body_bytes = cfg.max_body_bytes;
        endpoint.cancel = cancel.clone();
        let identity = Identity::new(
            u.identity,
            u.audience(),
            Some(JwtSigner {
                keys: auth.auth.keys.clone(),
                issuer: cfg.issuer().to_owned(),
                clock: cfg.clock.clone(),
            }),
        )
        .with_emails(emails.clone());
        let path = resource.path().to_owned();
        tracing::info!(upstream = u.name, %resource, "protecting upstream MCP server");
        if u.command.is_some() && u.prompt_default.is_none() && u.resource_default.is_none() {
            tracing::info!(
                upstream = u.name,
                "prompts and resources no rule names follow the tools' default; set \
                 prompt_default / resource_default to decide otherwise"
            );
        }
        let credentials = u.credentials.per_person().then(|| {
            if u.credentials == mcpgate_gateway::CredentialsMode::TokenExchange {
                tracing::info!(
                    upstream = u.name,
                    "each person's token is exchanged for theirs at this upstream's authorization server (RFC 8693)"
                );
                return Arc::new(ExchangedTokens {
                    auth: auth.auth.clone(),
                    upstream: u.name.clone(),
                }) as Arc<dyn PersonalCredentials>;
            }
            if u.credentials == mcpgate_gateway::CredentialsMode::OAuth {
                tracing::info!(
                    upstream = u.name,
                    "each person signs in at this upstream through {}/connections/{}; \
                     its authorization server must allow the redirect URI {}",
                    cfg.issuer(),
                    u.name,
                    mcpgate_domain::flows::upstream_oauth::callback_uri(&auth.auth, &u.name),
                );
            } else {
                tracing::info!(
                    upstream = u.name,
                    "each person gives their own token for this upstream, at {}/connections/{}",
                    cfg.issuer(),
                    u.name
                );
            }
            Arc::new(PersonalTokens {
                auth: auth.auth.clone(),
                upstream: u.name.clone(),
            }) as Arc<dyn PersonalCredentials>
        });
        let up = Upstream::new(
            u,
            &endpoint,
            identity,
            credentials,
            client.clone(),
            cancel.clone(),
        );
        router = router
            .merge(p.metadata)
            .merge(mcpgate_gateway::router(up, &path, &p.guard, &endpoint));
    }
    Ok(router)
}

/// The authorization server's vault of people's upstream tokens, for one upstream.
struct PersonalTokens {
    auth: mcpgate_domain::Authority,
    upstream: String,
}

impl PersonalTokens {
    /// The person's token read (refreshed if due) in a task of its own: a client that
    /// goes away mid-call must not drop a refresh the upstream has already answered
    /// (its refresh token rotated there and lost here would end the person's grant).
    async fn detached(
        &self,
        subject: &str,
        refused: Option<&str>,
    ) -> Result<Option<String>, Unavailable> {
        let (auth, upstream) = (self.auth.clone(), self.upstream.clone());
        let (subject, refused) = (subject.to_owned(), refused.map(str::to_owned));
        let task = tokio::spawn(async move {
            connections::token_for(&auth, &subject, &upstream, refused.as_deref()).await
        });
        match task.await {
            Ok(Ok(t)) => Ok(t),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, upstream = self.upstream, "could not read a person's upstream token");
                Err(Unavailable)
            }
            Err(_) => Err(Unavailable),
        }
    }
}

#[async_trait::async_trait]
impl PersonalCredentials for PersonalTokens {
    async fn token(&self, subject: &str, _presented: &str) -> Result<Option<String>, Unavailable> {
        if let Some(t) = connections::cached(&self.auth, subject, &self.upstream) {
            return Ok(Some(t));
        }
        self.detached(subject, None).await
    }

    async fn elicit(&self, subject: &str) -> Result<Elicitation, Unavailable> {
        match connections::elicit(&self.auth, subject, &self.upstream).await {
            Ok(e) => Ok(Elicitation {
                id: e.elicitation_id,
                url: e.url,
                message: e.message,
            }),
            Err(e) => {
                tracing::warn!(error = %e, upstream = self.upstream, "could not make a connect page");
                Err(Unavailable)
            }
        }
    }

    async fn insufficient(
        &self,
        subject: &str,
        scope: &str,
    ) -> Result<Option<Elicitation>, Unavailable> {
        match connections::elicit_more(&self.auth, subject, &self.upstream, scope).await {
            Ok(e) => Ok(e.map(|e| Elicitation {
                id: e.elicitation_id,
                url: e.url,
                message: e.message,
            })),
            Err(e) => {
                tracing::warn!(error = %e, upstream = self.upstream, "could not make a step-up page");
                Err(Unavailable)
            }
        }
    }

    async fn refused(
        &self,
        subject: &str,
        _presented: &str,
        token: &str,
    ) -> Result<Option<String>, Unavailable> {
        self.detached(subject, Some(token)).await
    }
}

/// Each person's token exchanged for the upstream's (RFC 8693), for one upstream.
struct ExchangedTokens {
    auth: mcpgate_domain::Authority,
    upstream: String,
}

impl ExchangedTokens {
    async fn exchange(
        &self,
        presented: &str,
        refused: Option<&str>,
    ) -> Result<Option<String>, Unavailable> {
        upstream_oauth::exchanged(&self.auth, &self.upstream, presented, refused)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, upstream = self.upstream, "could not exchange a person's token");
                Unavailable
            })
    }
}

#[async_trait::async_trait]
impl PersonalCredentials for ExchangedTokens {
    async fn token(&self, _subject: &str, presented: &str) -> Result<Option<String>, Unavailable> {
        self.exchange(presented, None).await
    }

    fn elicits(&self) -> bool {
        false
    }

    async fn elicit(&self, _subject: &str) -> Result<Elicitation, Unavailable> {
        Err(Unavailable)
    }

    async fn refused(
        &self,
        _subject: &str,
        presented: &str,
        token: &str,
    ) -> Result<Option<String>, Unavailable> {
        self.exchange(presented, Some(token)).await
    }
}

/// People's emails, for `X-Forwarded-Email`: mcpgate's access tokens name the person
/// by subject only, so the gateway asks the store, and remembers the answer a minute
/// (bounded) so that a session of calls costs one lookup.
struct StoreEmails {
    store: Arc<dyn Store>,
    seen: std::sync::Mutex<std::collections::HashMap<String, (Option<String>, Instant)>>,
}

/// How long a looked-up email is reused, and how many are kept.
const EMAIL_TTL: Duration = Duration::from_secs(60);
const MAX_EMAILS: usize = 10_000;

impl StoreEmails {
    fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            seen: Default::default(),
        }
    }
}

#[async_trait::async_trait]
impl EmailDirectory for StoreEmails {
    async fn email(&self, subject: &str) -> Option<String> {
        let lock = || self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((email, at)) = lock().get(subject)
            && at.elapsed() < EMAIL_TTL
        {
            return email.clone();
        }
        let email = match self.store.user(subject).await {
            Ok(u) => u.and_then(|u| u.email),
            Err(e) => {
                tracing::warn!(error = %e, "could not look up an email for X-Forwarded-Email");
                return None;
            }
        };
        let mut seen = lock();
        if seen.len() >= MAX_EMAILS {
            seen.retain(|_, (_, at)| at.elapsed() < EMAIL_TTL);
        }
        if seen.len() < MAX_EMAILS {
            seen.insert(subject.to_owned(), (email.clone(), Instant::now()));
        }
        email
    }
}
