//! JWTs of an external authorization server, verified against its published keys
//! (RS256, PS256, ES256, ES384, EdDSA; rules in [`super::jose`]).
//!
//! The key set is fetched when the validator starts, then:
//! - **periodically**, in the background, as the issuer's `Cache-Control: max-age`
//!   says (RFC 9111 §5.2.2.1), clamped to [`Refresh::min`]–[`Refresh::max`] (5 to 15
//!   minutes by default), so a key the issuer withdrew (compromised, retired) stops
//!   verifying tokens within `max`, whether or not a token with a new `kid` ever
//!   arrives. A failed fetch keeps the keys in hand and is tried again soon;
//! - **on an unknown `kid`** (a rotation), at most once per
//!   [`Refresh::unknown_kid_floor`] (at least a second), so a stream of made-up key ids
//!   cannot turn the guard into a load on the issuer.
//!
//! Verified tokens are remembered until they expire or the key set changes: a repeated
//! token costs no key parsing and no signature check.

use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use http::HeaderMap;
use mcpgate_core::clock::Clock;
use mcpgate_core::jwt::{JwtError, LEEWAY_SECS};
use serde_json::Value;

use super::discovery::{MAX_DOCUMENT_BYTES, read_json};
use super::jose::{self, ProviderKeys, TokenRules};

use super::token_map::TokenMap;
use super::{Reason, Rejection, TokenValidator};
use crate::housekeeping::CacheSize;
use crate::principal::Principal;

/// When the key set is fetched again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refresh {
    /// Shortest time between two periodic fetches, whatever `max-age` says (an issuer
    /// answering `no-store` is not fetched continuously).
    pub min: Duration,
    /// Longest time between two periodic fetches, whatever `max-age` says: the bound
    /// on how long a withdrawn key keeps verifying.
    pub max: Duration,
    /// Least time between two fetches triggered by tokens naming an unknown `kid`.
    pub unknown_kid_floor: Duration,
}

/// Why refresh settings are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefreshError {
    /// No floor would let every token with a made-up `kid` fetch the key set.
    #[error("the least time between key-set fetches on unknown key ids must be at least 1 second")]
    FloorTooShort,
    #[error("the periodic key-set refresh needs 0 < min <= max")]
    BadBounds,
}

impl Refresh {
    /// 5 minutes: the shortest periodic interval by default.
    pub const DEFAULT_MIN: Duration = Duration::from_secs(5 * 60);
    /// 15 minutes: the longest periodic interval by default.
    pub const DEFAULT_MAX: Duration = Duration::from_secs(15 * 60);
    /// The smallest floor on unknown-`kid` fetches.
    pub const MIN_FLOOR: Duration = Duration::from_secs(1);
    /// After a failed periodic fetch, the next try comes this soon (or at `min`).
    const RETRY: Duration = Duration::from_secs(30);

    /// The default periodic bounds, with `unknown_kid_floor` (at least a second).
    pub fn new(unknown_kid_floor: Duration) -> Result<Self, RefreshError> {
        Self {
            min: Self::DEFAULT_MIN,
            max: Self::DEFAULT_MAX,
            unknown_kid_floor,
        }
        .checked()
    }

    /// These settings, if usable.
    pub fn checked(self) -> Result<Self, RefreshError> {
        if self.unknown_kid_floor < Self::MIN_FLOOR {
            return Err(RefreshError::FloorTooShort);
        }
        if self.min.is_zero() || self.min > self.max {
            return Err(RefreshError::BadBounds);
        }
        Ok(self)
    }

    /// How long a key set fetched with `headers` is used before the periodic refresh:
    /// `max-age`, or `max` when the answer names none, within `min`–`max`. `no-store`
    /// and `no-cache` (RFC 9111 §5.2.2.4, §5.2.2.5) count as zero, so `min`.
    pub fn interval(&self, headers: &HeaderMap) -> Duration {
        max_age(headers)
            .unwrap_or(self.max)
            .clamp(self.min, self.max)
    }
}

/// The `max-age` of a `Cache-Control` answer (RFC 9111 §5.2.2.1), zero for `no-store`
/// or `no-cache`; `None` when it names neither or cannot be read.
fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let mut age = None;
    for value in headers.get_all(http::header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else {
            continue;
        };
        for directive in value.split(',') {
            let (name, arg) = match directive.trim().split_once('=') {
                Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                None => (directive.trim(), None),
            };
            if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
                return Some(Duration::ZERO);
            }
            if name.eq_ignore_ascii_case("max-age")
                && let Some(secs) = arg.and_then(|a| a.parse::<u64>().ok())
            {
                age = Some(Duration::from_secs(secs));
            }
        }
    }
    age
}

pub struct Jwks {
    http: reqwest::Client,
    jwks_uri: String,
    rules: TokenRules,
    clock: Arc<dyn Clock>,
    refresh: Refresh,
    keys: RwLock<Arc<ProviderKeys>>,
    /// The last key set read, to tell a change from the same set served again.
    last_set: Mutex<Option<Value>>,
    /// When the last unknown-`kid` fetch began.
    last_fetch: Mutex<Option<Instant>>,
    /// When the periodic refresh is due next.
    next_refresh: Mutex<Instant>,
    verified: Mutex<TokenMap<Arc<Principal>>>,
}

/// Most verified tokens remembered at once, and most bytes they may hold.
const MAX_CACHED: usize = 20_000;
const MAX_CACHED_BYTES: usize = 8 << 20;

impl Jwks {
    /// Fetches the key set once (failing if it cannot be read), then keeps it fresh in
    /// the background for as long as the validator lives.
    pub async fn start(
        http: reqwest::Client,
        jwks_uri: String,
        rules: TokenRules,
        clock: Arc<dyn Clock>,
        refresh: Refresh,
    ) -> Result<Arc<Self>, String> {
        let refresh = refresh.checked().map_err(|e| e.to_string())?;
        let v = Arc::new(Self {
            http,
            jwks_uri,
            rules,
            clock,
            refresh,
            keys: RwLock::new(Arc::new(ProviderKeys::default())),
            last_set: Mutex::new(None),
            last_fetch: Mutex::new(None),
            next_refresh: Mutex::new(Instant::now() + refresh.max),
            verified: Mutex::new(TokenMap::default()),
        });
        v.claim_refetch();
        v.refetch().await?;
        tokio::spawn(refresh_periodically(Arc::downgrade(&v)));
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
        let interval = self.refresh.interval(resp.headers());
        let body = read_json(resp, MAX_DOCUMENT_BYTES)
            .await
            .map_err(|e| format!("{}: {e}", self.jwks_uri))?;
        let keys = ProviderKeys::from_jwks(&body);
        if keys.is_empty() {
            return Err(format!(
                "{} has no usable signing keys (RSA of 2048 bits or more, P-256, P-384, Ed25519)",
                self.jwks_uri
            ));
        }
        *self.next_refresh.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now() + interval;
        let mut last = self.last_set.lock().unwrap_or_else(|e| e.into_inner());
        if last.as_ref() == Some(&body) {
            return Ok(());
        }
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
        *last = Some(body);
        // A key the issuer withdrew must not keep its tokens valid through the cache.
        self.verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        Ok(())
    }

    /// Whether a fetch for an unknown `kid` may start now; if so, the next one must
    /// wait `unknown_kid_floor`. Checked and recorded under one lock, so concurrent
    /// requests with unknown key ids start one fetch between them.
    fn claim_refetch(&self) -> bool {
        let mut last = self.last_fetch.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| t.elapsed() < self.refresh.unknown_kid_floor) {
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
        // Keys replaced while this token was being verified (a withdrawn key, perhaps):
        // the answer stands for this call, but is not remembered past the change.
        if !Arc::ptr_eq(&keys, &self.keys.read().unwrap_or_else(|e| e.into_inner())) {
            return Ok(p);
        }
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
                    .map_err(|e| Rejection::Invalid(Reason::from(&e)))
            }
            other => other.map_err(|e| Rejection::Invalid(Reason::from(&e))),
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

/// Fetches the key set whenever the periodic refresh is due, until the validator is
/// dropped. It holds only a weak reference, so it never keeps the validator alive.
async fn refresh_periodically(jwks: Weak<Jwks>) {
    loop {
        let due = match jwks.upgrade() {
            Some(j) => *j.next_refresh.lock().unwrap_or_else(|e| e.into_inner()),
            None => return,
        };
        tokio::time::sleep_until(due.into()).await;
        let Some(j) = jwks.upgrade() else {
            return;
        };
        // An unknown-kid fetch may have moved the date meanwhile.
        if Instant::now() < *j.next_refresh.lock().unwrap_or_else(|e| e.into_inner()) {
            continue;
        }
        if let Err(e) = j.refetch().await {
            tracing::warn!(error = %e, "periodic JWKS refresh failed; keeping the keys in hand");
            *j.next_refresh.lock().unwrap_or_else(|e| e.into_inner()) =
                Instant::now() + j.refresh.min.min(Refresh::RETRY);
        }
    }
}

#[cfg(test)]
#[path = "jwks_tests.rs"]
mod tests;
