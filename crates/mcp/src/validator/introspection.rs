//! Token introspection (RFC 7662) against any standards-compliant authorization server.
//!
//! The guard authenticates to the introspection endpoint with its own client
//! credentials (HTTP Basic, RFC 7662 §2.1), checks `active`, `aud`, `iss`, `exp` and
//! `token_type`, and caches answers keyed by the token's SHA-256: positive ones for at
//! most `positive_ttl` and never past the token's `exp`, negative ones briefly. So a
//! token costs at most one introspection call per cache period: concurrent requests
//! that miss the cache for one token wait for a single call (when the cache is off,
//! every request asks).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mcpgate_core::ScopeSet;
use mcpgate_core::clock::Clock;
use mcpgate_core::jwt::Audience;
use mcpgate_core::secret::Secret;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use super::{Rejection, TokenValidator};
use crate::principal::Principal;

/// Settings of the introspection validator.
#[derive(Debug, Clone)]
pub struct IntrospectionConfig {
    pub endpoint: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// Exact issuer string; an `iss` in the answer must equal it.
    pub issuer: String,
    /// The canonical URI of this resource; `aud` must contain it.
    pub audience: String,
    /// How long an active answer may be reused (0 disables caching).
    pub positive_ttl_secs: i64,
    /// How long an inactive answer may be reused.
    pub negative_ttl_secs: i64,
    /// Bound on cached tokens.
    pub max_entries: usize,
}

#[derive(Debug, Deserialize)]
struct IntrospectionResponse {
    active: bool,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    exp: Option<i64>,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    sid: Option<String>,
}

#[derive(Clone)]
struct Cached {
    outcome: Result<Arc<Principal>, Rejection>,
    until: i64,
}

pub struct Introspection {
    http: reqwest::Client,
    cfg: IntrospectionConfig,
    clock: Arc<dyn Clock>,
    /// Keyed by the SHA-256 of the token: tokens themselves are not kept.
    cache: Mutex<HashMap<[u8; 32], Cached>>,
    /// Introspection calls under way, which requests for the same token join.
    inflight: Mutex<HashMap<[u8; 32], Arc<OnceCell<Outcome>>>>,
}

type Outcome = Result<Arc<Principal>, Rejection>;

impl Introspection {
    pub fn new(http: reqwest::Client, cfg: IntrospectionConfig, clock: Arc<dyn Clock>) -> Self {
        Self {
            http,
            cfg,
            clock,
            cache: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
        }
    }

    fn judge(&self, r: IntrospectionResponse, now: i64) -> Result<Arc<Principal>, Rejection> {
        if !r.active {
            return Err(Rejection::Invalid("inactive"));
        }
        // Refresh tokens and other kinds are not access tokens.
        if r.token_type
            .as_deref()
            .is_some_and(|t| !t.eq_ignore_ascii_case("bearer") && t != "access_token")
        {
            return Err(Rejection::Invalid("not an access token"));
        }
        if r.iss.as_deref().is_some_and(|i| i != self.cfg.issuer) {
            return Err(Rejection::Invalid("wrong issuer"));
        }
        // MCP: the resource MUST check that the token was issued for it; an answer
        // without an audience cannot show that.
        if !r
            .aud
            .as_ref()
            .is_some_and(|a| a.contains(&self.cfg.audience))
        {
            return Err(Rejection::Invalid("wrong audience"));
        }
        let exp = r.exp.unwrap_or(i64::MAX);
        if exp <= now {
            return Err(Rejection::Invalid("expired"));
        }
        let scopes = r
            .scope
            .as_deref()
            .map(ScopeSet::parse)
            .transpose()
            .map_err(|_| Rejection::Invalid("bad scope"))?;
        Ok(Arc::new(Principal {
            subject: r.sub.ok_or(Rejection::Invalid("no subject"))?,
            username: r.username,
            client_id: r.client_id.unwrap_or_default(),
            scopes: scopes.unwrap_or_default(),
            session_id: r.sid,
            expires_at: exp,
        }))
    }

    /// One introspection call for `token` however many requests wait for it. The
    /// first caller makes it; if that caller goes away, a waiting one takes over.
    async fn ask_once(&self, key: [u8; 32], token: &str, now: i64) -> Outcome {
        let cell = self
            .inflight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_default()
            .clone();
        let outcome = cell
            .get_or_init(|| async { self.ask(token).await.and_then(|r| self.judge(r, now)) })
            .await
            .clone();
        // Cached before the call is forgotten, so no request between the two asks again.
        self.remember(key, &outcome, now);
        let mut inflight = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
        if inflight.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            inflight.remove(&key);
        }
        outcome
    }

    async fn ask(&self, token: &str) -> Result<IntrospectionResponse, Rejection> {
        let resp = self
            .http
            .post(&self.cfg.endpoint)
            .basic_auth(&self.cfg.client_id, Some(self.cfg.client_secret.expose()))
            .form(&[("token", token), ("token_type_hint", "access_token")])
            .send()
            .await
            .map_err(|e| Rejection::Unavailable(format!("introspection request failed: {e}")))?;
        if !resp.status().is_success() {
            return Err(Rejection::Unavailable(format!(
                "introspection answered HTTP {}",
                resp.status()
            )));
        }
        resp.json()
            .await
            .map_err(|e| Rejection::Unavailable(format!("introspection answer unreadable: {e}")))
    }
}

#[async_trait::async_trait]
impl TokenValidator for Introspection {
    async fn validate(&self, token: &str) -> Result<Arc<Principal>, Rejection> {
        if token.len() > 8 * 1024 {
            return Err(Rejection::Invalid("too long"));
        }
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = self.clock.now();
        if let Some(hit) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            && hit.until > now
        {
            return hit.outcome.clone();
        }
        if self.cfg.positive_ttl_secs == 0 {
            let outcome = self.ask(token).await.and_then(|r| self.judge(r, now));
            self.remember(key, &outcome, now);
            return outcome;
        }
        self.ask_once(key, token, now).await
    }
}

impl Introspection {
    fn remember(&self, key: [u8; 32], outcome: &Outcome, now: i64) {
        let until = match outcome {
            Ok(p) => (now + self.cfg.positive_ttl_secs).min(p.expires_at),
            Err(Rejection::Invalid(_)) => now + self.cfg.negative_ttl_secs,
            Err(Rejection::Unavailable(_)) => now, // never cache an outage
        };
        if until <= now {
            return;
        }
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= self.cfg.max_entries {
            cache.retain(|_, c| c.until > now);
            if cache.len() >= self.cfg.max_entries {
                cache.clear();
            }
        }
        cache.insert(
            key,
            Cached {
                outcome: outcome.clone(),
                until,
            },
        );
    }
}
