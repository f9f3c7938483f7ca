//! JWTs of an external authorization server, verified against its published keys
//! (RS256, PS256, ES256, ES384, EdDSA; rules in [`super::jose`]). Keys are fetched and
//! parsed when the validator starts and again only when a token names an unknown `kid`
//! (a rotation), at most once per `min_refetch`, so a stream of made-up key ids cannot
//! turn the guard into a load on the issuer. Verified tokens are remembered until they
//! expire or the key set changes: a repeated token costs no key parsing and no
//! signature check.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use mcpgate_core::clock::Clock;
use mcpgate_core::jwt::{JwtError, LEEWAY_SECS};

use super::discovery::{MAX_DOCUMENT_BYTES, read_json};
use super::jose::{self, ProviderKeys, TokenRules};
use super::local::jwt_reason;
use super::token_map::TokenMap;
use super::{Rejection, TokenValidator};
use crate::memory::CacheSize;
use crate::principal::Principal;

pub struct Jwks {
    http: reqwest::Client,
    jwks_uri: String,
    rules: TokenRules,
    clock: Arc<dyn Clock>,
    keys: RwLock<Arc<ProviderKeys>>,
    last_fetch: Mutex<Option<Instant>>,
    min_refetch: Duration,
    verified: Mutex<TokenMap<Arc<Principal>>>,
}

/// Most verified tokens remembered at once, and most bytes they may hold.
const MAX_CACHED: usize = 20_000;
const MAX_CACHED_BYTES: usize = 8 << 20;

impl Jwks {
    /// Fetches the key set once; fails if it cannot be read.
    pub async fn start(
        http: reqwest::Client,
        jwks_uri: String,
        rules: TokenRules,
        clock: Arc<dyn Clock>,
        min_refetch: Duration,
    ) -> Result<Self, String> {
        let v = Self {
            http,
            jwks_uri,
            rules,
            clock,
            keys: RwLock::new(Arc::new(ProviderKeys::default())),
            last_fetch: Mutex::new(None),
            min_refetch,
            verified: Mutex::new(TokenMap::default()),
        };
        v.claim_refetch();
        v.refetch().await?;
        Ok(v)
    }

    #[tracing::instrument(level = "debug", target = "mcpgate::outbound", name = "jwks",
        skip_all, fields(otel.kind = "client"))]
    async fn refetch(&self) -> Result<(), String> {
        let resp = self
            .http
            .get(&self.jwks_uri)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("{}: HTTP {}", self.jwks_uri, resp.status()));
        }
        let body = read_json(resp, MAX_DOCUMENT_BYTES)
            .await
            .map_err(|e| format!("{}: {e}", self.jwks_uri))?;
        let keys = ProviderKeys::from_jwks(&body, &self.rules);
        if keys.is_empty() {
            return Err(format!(
                "{} has no usable signing keys (RSA of 2048 bits or more, P-256, P-384, Ed25519)",
                self.jwks_uri
            ));
        }
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
        // A key the issuer withdrew must not keep its tokens valid through the cache.
        self.verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        Ok(())
    }

    /// Whether a fetch may start now; if so, the next one must wait `min_refetch`.
    /// Checked and recorded under one lock, so concurrent requests with unknown key
    /// ids start one fetch between them.
    fn claim_refetch(&self) -> bool {
        let mut last = self.last_fetch.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| t.elapsed() < self.min_refetch) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    fn check(&self, token: &str) -> Result<Arc<Principal>, JwtError> {
        let now = self.clock.now();
        if let Some(p) = self
            .verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(token)
        {
            return if p.expires_at + LEEWAY_SECS > now {
                Ok(p.clone())
            } else {
                Err(JwtError::Expired)
            };
        }
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner()).clone();
        let p: Arc<Principal> = Arc::new(jose::verify(token, &keys, &self.rules, now)?);
        let value_bytes = p.heap_bytes();
        let weight = TokenMap::<Arc<Principal>>::weight(token, value_bytes);
        let mut map = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        map.make_room(MAX_CACHED, MAX_CACHED_BYTES, weight, |c| {
            c.expires_at + LEEWAY_SECS <= now
        });
        map.insert(token, p.clone(), value_bytes);
        Ok(p)
    }
}

#[async_trait::async_trait]
impl TokenValidator for Jwks {
    async fn validate(&self, token: &str) -> Result<Arc<Principal>, Rejection> {
        match self.check(token) {
            Err(JwtError::UnknownKey) if self.claim_refetch() => {
                // A kid we have not seen: perhaps the issuer rotated. Refetch once.
                if let Err(e) = self.refetch().await {
                    tracing::warn!(error = %e, "JWKS refetch failed");
                }
                self.check(token)
                    .map_err(|e| Rejection::Invalid(jwt_reason(&e)))
            }
            other => other.map_err(|e| Rejection::Invalid(jwt_reason(&e))),
        }
    }

    fn cache_size(&self) -> CacheSize {
        let map = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        CacheSize {
            entries: map.len(),
            bytes: map.bytes(),
        }
    }

    fn sweep(&self) {
        let now = self.clock.now();
        self.verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|p| p.expires_at + LEEWAY_SECS > now);
    }
}
