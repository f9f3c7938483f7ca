//! Others' public keys, fetched and kept: a `private_key_jwt` client's JWK Set (given,
//! or at its `jwks_uri`), a trusted identity provider's. A set is kept for its
//! `Cache-Control: max-age` (clamped to 5 minutes-1 day); a token naming a key the set
//! lacks makes one early refetch, at most once a minute per set, so a rotation at the
//! provider is picked up without letting strangers' tokens drive the fetches.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mcpgate_core::jose::PublicKeys;
use mcpgate_core::{OAuthError, jose};

use crate::model::ClientKeys;
use crate::ports::DocumentError;
use crate::{Authority, OAuthResult};

const MIN_KEEP_SECS: i64 = 300;
const MAX_KEEP_SECS: i64 = 86_400;
/// Least time between two fetches of one set.
const REFETCH_SECS: i64 = 60;
/// Most sets kept at once.
const MAX_SETS: usize = 1_000;

/// Where a set comes from, and whose choice that was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The operator configured the URL: any address.
    Operator,
    /// A stranger's document named it: public addresses only.
    Stranger,
}

struct Kept {
    keys: Arc<PublicKeys>,
    fetched_at: i64,
    until: i64,
}

/// The sets fetched, by URL.
#[derive(Default)]
pub struct KeySets {
    kept: Mutex<HashMap<String, Kept>>,
}

/// The keys of a `private_key_jwt` client: its given set, or the one at its URI (a
/// metadata document's client fetches as a stranger).
pub async fn of_client(
    s: &Authority,
    keys: &ClientKeys,
    origin: Origin,
    kid: Option<&str>,
) -> OAuthResult<Arc<PublicKeys>> {
    match keys {
        ClientKeys::Set(set) => Ok(Arc::new(PublicKeys::from_jwks(set))),
        ClientKeys::Uri(uri) => at(s, uri, origin, kid, OAuthError::invalid_client).await,
    }
}

/// The set at `uri`, from memory while fresh and while it has the key `kid` names. A
/// set that cannot be fetched is `blame`d on whoever presented what it should verify:
/// a client's own keys are the client's (`invalid_client`); a provider's keys behind
/// an assertion are not the client's, whose credentials stay good (`invalid_grant`).
pub async fn at(
    s: &Authority,
    uri: &str,
    origin: Origin,
    kid: Option<&str>,
    blame: fn(String) -> OAuthError,
) -> OAuthResult<Arc<PublicKeys>> {
    let now = s.now();
    {
        let kept = s.key_sets.kept.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(k) = kept.get(uri) {
            let fresh = k.until > now;
            let has_kid = kid.is_none_or(|kid| k.keys.has(kid));
            let may_refetch = now - k.fetched_at >= REFETCH_SECS;
            if fresh && (has_kid || !may_refetch) {
                return Ok(k.keys.clone());
            }
        }
    }
    let fetched = match origin {
        Origin::Operator => s.documents.fetch_configured(uri).await,
        Origin::Stranger => s.documents.fetch(uri).await,
    }
    .map_err(|e| match e {
        DocumentError::Store(e) => OAuthError::from(e),
        DocumentError::Fetch(m) | DocumentError::Invalid(m) => blame(format!(
            "the signing keys at {uri} could not be fetched ({m}); try again later"
        )),
    })?;
    let keys = Arc::new(jose::PublicKeys::from_jwks(&fetched.body));
    let keep = fetched
        .max_age
        .unwrap_or(MIN_KEEP_SECS)
        .clamp(MIN_KEEP_SECS, MAX_KEEP_SECS);
    let mut kept = s.key_sets.kept.lock().unwrap_or_else(|e| e.into_inner());
    if kept.len() >= MAX_SETS {
        kept.retain(|_, k| k.until > now);
        if kept.len() >= MAX_SETS {
            kept.clear();
        }
    }
    kept.insert(
        uri.to_owned(),
        Kept {
            keys: keys.clone(),
            fetched_at: now,
            until: now + keep,
        },
    );
    Ok(keys)
}
