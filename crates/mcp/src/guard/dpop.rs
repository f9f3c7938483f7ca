//! DPoP at the resource (RFC 9449 §7): a token bound to a key (`cnf.jkt`) is valid only
//! with the `DPoP` scheme and a proof signed by that key, made for this request (the
//! method, this resource's URL, the token's hash, within the time window), never used
//! before, and carrying this process's nonce when nonces are required. A bound token
//! sent as a bearer token is refused (§7.2), and so is an unbound one sent with the
//! `DPoP` scheme (there is no key to check the proof against).
//!
//! Only requests that use DPoP pay for it: a bearer call costs one branch.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use http::HeaderMap;
use mcpgate_core::clock::Clock;
use mcpgate_core::dpop::{self, DpopError, Expected, Nonces};

use super::challenge::Refusal;

/// Remembers proofs' ids, so that a proof is used once. A store shared by the
/// instances makes a replay at another instance fail too.
#[async_trait]
pub trait ProofReplay: Send + Sync + 'static {
    /// False when `jti` of the key `jkt` was seen before; kept until `until`.
    async fn first_use(&self, jkt: &str, jti: &str, until: i64) -> bool;
}

/// A process's own memory of proofs (a process alone, or before a shared store).
#[derive(Default)]
pub struct LocalReplay {
    seen: Mutex<HashMap<(String, String), i64>>,
}

/// Most proof ids remembered by one process; the oldest go first past it.
const REMEMBERED: usize = 100_000;

#[async_trait]
impl ProofReplay for LocalReplay {
    async fn first_use(&self, jkt: &str, jti: &str, until: i64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        // A proof kept until `until` was made about now: what was kept until before
        // then can be forgotten.
        let now = until - dpop::MAX_AGE_SECS - dpop::MAX_AHEAD_SECS;
        if seen.len() >= REMEMBERED {
            seen.retain(|_, u| *u > now);
            if seen.len() >= REMEMBERED {
                seen.clear();
            }
        }
        seen.insert((jkt.to_owned(), jti.to_owned()), until)
            .is_none()
    }
}

/// The `DPoP` header, named once (a lookup by string parses the name every time).
static DPOP: http::HeaderName = http::HeaderName::from_static("dpop");

/// How a guard checks DPoP proofs.
#[derive(Clone)]
pub struct DpopCheck {
    /// This resource's URL as clients call it: what proofs' `htu` must name.
    pub url: String,
    pub nonces: Option<Arc<Nonces>>,
    pub replay: Arc<dyn ProofReplay>,
    pub clock: Arc<dyn Clock>,
}

/// The scheme of the `Authorization` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Bearer,
    Dpop,
}

impl DpopCheck {
    /// Checks the request's proof for `token`, bound to `jkt`.
    pub async fn check(
        &self,
        method: &http::Method,
        headers: &HeaderMap,
        token: &str,
        jkt: &str,
    ) -> Result<(), Refusal> {
        let proof = dpop::the_proof(headers.get_all(&DPOP).iter().map(|v| v.as_bytes()))
            .map_err(|why| Refusal::DpopProof(why.into()))?
            .ok_or_else(|| Refusal::DpopProof("send one DPoP proof".into()))?;
        let now = self.clock.now();
        let p = dpop::verify(
            proof,
            Expected {
                method: method.as_str(),
                url: &self.url,
                now,
                nonces: self.nonces.as_deref(),
                access_token: Some(token),
            },
        )
        .map_err(|e| match (e, &self.nonces) {
            (DpopError::Nonce, Some(n)) => Refusal::UseDpopNonce(n.current(now)),
            (e, _) => Refusal::DpopProof(e.to_string()),
        })?;
        if p.jkt != jkt {
            return Err(Refusal::DpopProof(
                "the DPoP proof is signed by another key than the token is bound to".into(),
            ));
        }
        if !self.replay.first_use(&p.jkt, &p.jti, p.kept_until()).await {
            return Err(Refusal::DpopProof(
                "this DPoP proof was already used".into(),
            ));
        }
        Ok(())
    }
}
