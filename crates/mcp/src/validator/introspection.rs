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

use super::{Reason, Rejection, TokenValidator};
use crate::housekeeping::CacheSize;
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
    /// Bound on cached tokens (and [`MAX_CACHED_BYTES`] on the bytes they hold).
    pub max_entries: usize,
}

/// Most bytes the cached answers may hold.
pub const MAX_CACHED_BYTES: usize = 8 << 20;

#[derive(Debug, Deserialize)]
struct IntrospectionResponse {
    active: bool,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    username: Option<String>,
    /// mcpgate's introspection adds it when the person has one.
    #[serde(default)]
    email: Option<String>,
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
    /// RFC 9449 §6.2: the DPoP key a token is bound to.
    #[serde(default)]
    cnf: Option<mcpgate_core::jwt::Confirmation>,
}

#[derive(Clone)]
struct Cached {
    outcome: Result<Arc<Principal>, Rejection>,
    until: i64,
    /// Heap bytes this entry holds, the principal included.
    bytes: usize,
}

/// Cached answers, and the heap bytes they hold.
#[derive(Default)]
struct Answers {
    map: HashMap<[u8; 32], Cached>,
    bytes: usize,
}

impl Answers {
    /// Keeps the answers still valid at `now`; gives back the table's memory when
    /// most of it is empty.
    fn sweep(&mut self, now: i64) {
        self.map.retain(|_, c| c.until > now);
        self.bytes = self.map.values().map(|c| c.bytes).sum();
        if self.map.capacity() > 4 * self.map.len().max(64) {
            self.map.shrink_to_fit();
        }
    }

    /// Caches `c`, first making room when `max_entries` or [`MAX_CACHED_BYTES`] would
    /// be passed: expired answers go, then, if still full, everything.
    fn put(&mut self, key: [u8; 32], c: Cached, max_entries: usize, now: i64) {
        let full = |a: &Self| a.map.len() >= max_entries || a.bytes + c.bytes > MAX_CACHED_BYTES;
        if full(self) {
            self.sweep(now);
            if full(self) {
                *self = Self::default();
            }
        }
        self.bytes += c.bytes;
        if let Some(old) = self.map.insert(key, c) {
            self.bytes -= old.bytes;
        }
    }
}

pub struct Introspection {
    http: reqwest::Client,
    cfg: IntrospectionConfig,
    clock: Arc<dyn Clock>,
    /// Keyed by the SHA-256 of the token: tokens themselves are not kept.
    cache: Mutex<Answers>,
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
            cache: Mutex::new(Answers::default()),
            inflight: Mutex::new(HashMap::new()),
        }
    }

    fn judge(&self, r: IntrospectionResponse, now: i64) -> Result<Arc<Principal>, Rejection> {
        if !r.active {
            return Err(Rejection::Invalid(Reason::Inactive));
        }
        // Refresh tokens and other kinds are not access tokens.
        if r.token_type
            .as_deref()
            .is_some_and(|t| !t.eq_ignore_ascii_case("bearer") && t != "access_token")
        {
            return Err(Rejection::Invalid(Reason::NotAnAccessToken));
        }
        if r.iss.as_deref().is_some_and(|i| i != self.cfg.issuer) {
            return Err(Rejection::Invalid(Reason::WrongIssuer));
        }
        // MCP: the resource MUST check that the token was issued for it; an answer
        // without an audience cannot show that.
        if !r
            .aud
            .as_ref()
            .is_some_and(|a| a.contains(&self.cfg.audience))
        {
            return Err(Rejection::Invalid(Reason::WrongAudience));
        }
        let exp = r.exp.unwrap_or(i64::MAX);
        if exp <= now {
            return Err(Rejection::Invalid(Reason::Expired));
        }
        let scopes = r
            .scope
            .as_deref()
            .map(ScopeSet::parse)
            .transpose()
            .map_err(|_| Rejection::Invalid(Reason::BadScope))?;
        Ok(Arc::new(Principal {
            subject: r.sub.ok_or(Rejection::Invalid(Reason::NoSubject))?,
            username: r.username,
            email: r.email.filter(|e| e.len() <= super::MAX_EMAIL_LEN),
            client_id: r.client_id.unwrap_or_default(),
            scopes: scopes.unwrap_or_default(),
            session_id: r.sid,
            expires_at: exp,
            jkt: r.cnf.map(|c| c.jkt),
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

    #[tracing::instrument(level = "debug", target = "mcpgate::outbound", name = "introspection",
        skip_all, fields(otel.kind = "client"))]
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
            return Err(Rejection::Invalid(Reason::Malformed));
        }
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = self.clock.now();
        if let Some(hit) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map
            .get(&key)
            && hit.until > now
        {
            cache_counter(true).increment(1);
            return hit.outcome.clone();
        }
        cache_counter(false).increment(1);
        if self.cfg.positive_ttl_secs == 0 {
            let outcome = self.ask(token).await.and_then(|r| self.judge(r, now));
            self.remember(key, &outcome, now);
            return outcome;
        }
        self.ask_once(key, token, now).await
    }

    fn cache_size(&self) -> CacheSize {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        CacheSize {
            entries: cache.map.len(),
            bytes: cache.bytes,
        }
    }

    fn sweep(&self) {
        let now = self.clock.now();
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .sweep(now);
    }
}

/// `mcpgate_introspection_cache_total{result}`: handles registered on first use (the
/// deployment installs its recorder before serving), so a validation only adds to an
/// atomic.
fn cache_counter(hit: bool) -> &'static metrics::Counter {
    static HIT: std::sync::OnceLock<metrics::Counter> = std::sync::OnceLock::new();
    static MISS: std::sync::OnceLock<metrics::Counter> = std::sync::OnceLock::new();
    if hit {
        HIT.get_or_init(
            || metrics::counter!("mcpgate_introspection_cache_total", "result" => "hit"),
        )
    } else {
        MISS.get_or_init(
            || metrics::counter!("mcpgate_introspection_cache_total", "result" => "miss"),
        )
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
        let bytes =
            32 + std::mem::size_of::<Cached>() + outcome.as_ref().map_or(0, |p| p.heap_bytes());
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).put(
            key,
            Cached {
                outcome: outcome.clone(),
                until,
                bytes,
            },
            self.cfg.max_entries,
            now,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(i: usize, until: i64) -> Cached {
        let p = Arc::new(Principal {
            subject: format!("user-{i}"),
            username: Some("alice".into()),
            email: None,
            client_id: "client".into(),
            scopes: ScopeSet::parse("op:add op:sub").unwrap(),
            session_id: Some(format!("{i:0>40}")),
            expires_at: until,
            jkt: None,
        });
        let bytes = 32 + std::mem::size_of::<Cached>() + p.heap_bytes();
        Cached {
            outcome: Ok(p),
            until,
            bytes,
        }
    }

    fn key(i: usize) -> [u8; 32] {
        Sha256::digest(i.to_le_bytes()).into()
    }

    #[test]
    fn answers_expire_from_the_cache() {
        let mut a = Answers::default();
        for i in 0..10 {
            // Half the answers end before the others.
            a.put(
                key(i),
                answer(i, if i % 2 == 0 { 1030 } else { 1060 }),
                1000,
                1000,
            );
        }
        let full = a.bytes;
        a.sweep(1030);
        assert_eq!(a.map.len(), 5, "the answers that ended are gone");
        assert!(a.bytes < full * 6 / 10);
        a.sweep(1060);
        assert_eq!((a.map.len(), a.bytes), (0, 0));
    }

    #[test]
    fn the_cache_is_bounded_by_bytes_and_entries() {
        let mut a = Answers::default();
        let one = answer(0, 5000).bytes;
        assert!((200..2000).contains(&one), "{one} bytes an answer");
        for i in 0..MAX_CACHED_BYTES / one * 3 {
            a.put(key(i), answer(i, 5000), usize::MAX, 1000);
            assert!(a.bytes <= MAX_CACHED_BYTES);
        }
        let held: usize = a.map.values().map(|c| c.bytes).sum();
        assert_eq!(held, a.bytes, "the count matches what is held");
        for i in 0..1000 {
            a.put(key(i), answer(i, 5000), 100, 1000);
            assert!(a.map.len() <= 100);
        }
        // Past the bound, expired answers make room before live ones are dropped.
        let mut a = Answers::default();
        for i in 0..100 {
            a.put(
                key(i),
                answer(i, if i < 50 { 1010 } else { 5000 }),
                100,
                1000,
            );
        }
        a.put(key(1000), answer(1000, 5000), 100, 1020);
        assert_eq!(a.map.len(), 51);
    }
}
