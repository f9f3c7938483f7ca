//! JWTs of an external authorization server, verified against its published keys.
//! Keys are fetched and parsed when the validator starts and again only when a token
//! names an unknown `kid` (a rotation), at most once per `min_refetch`. Verified
//! tokens are remembered until they expire or the key set changes.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use mcpgate_core::clock::Clock;
use mcpgate_core::jwt::{self, Expectations, JwtError, LEEWAY_SECS, VerifyingKeys};

use super::local::jwt_reason;
use super::token_map::TokenMap;
use super::{Rejection, TokenValidator};
use crate::memory::CacheSize;
use crate::principal::Principal;

pub struct Jwks {
    http: reqwest::Client,
    jwks_uri: String,
    expect: Expectations,
    clock: Arc<dyn Clock>,
    keys: RwLock<Arc<VerifyingKeys>>,
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
        expect: Expectations,
        clock: Arc<dyn Clock>,
        min_refetch: Duration,
    ) -> Result<Self, String> {
        let v = Self {
            http,
            jwks_uri,
            expect,
            clock,
            keys: RwLock::new(Arc::new(VerifyingKeys::default())),
            last_fetch: Mutex::new(None),
            min_refetch,
            verified: Mutex::new(TokenMap::default()),
        };
        v.refetch().await?;
        Ok(v)
    }

    async fn refetch(&self) -> Result<(), String> {
        *self.last_fetch.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        let resp = self
            .http
            .get(&self.jwks_uri)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("{}: HTTP {}", self.jwks_uri, resp.status()));
        }
        let body: serde_json::Value = resp.json().await.map_err(|e| e.to_string())?;
        let keys = VerifyingKeys::from_jwks(&body);
        if keys.is_empty() {
            return Err(format!(
                "{} has no usable Ed25519 signing keys",
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

    fn may_refetch(&self) -> bool {
        self.last_fetch
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none_or(|t| t.elapsed() >= self.min_refetch)
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
        let p: Arc<Principal> = Arc::new(jwt::verify(token, &keys, &self.expect, now)?.into());
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
            Err(JwtError::UnknownKey) if self.may_refetch() => {
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
