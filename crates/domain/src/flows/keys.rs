//! Signing keys: created on first start, rotated with overlap, retired at once when
//! one leaks, and kept in step with what other processes did.

use std::collections::HashSet;

use mcpgate_core::jwt::{StoredKey, key_handle};

use crate::Actor;
use crate::audit::Event;
use crate::store::{Store, StoreError};
use crate::{Authority, OAuthResult};

/// Keys stay published this long after being superseded: far longer than any access
/// token lives, so rotation never invalidates a token before it expires.
pub const KEY_RETIREMENT_SECS: i64 = 24 * 3600;

/// The stored signing keys, creating the first one on an empty database.
pub async fn load(store: &dyn Store, now: i64) -> Result<Vec<StoredKey>, StoreError> {
    let keys = store.signing_keys().await?;
    if !keys.is_empty() {
        return Ok(keys);
    }
    store.insert_signing_key(&StoredKey::generate(now)).await?;
    // Instances starting together may each have made one: use them all, so every
    // instance verifies the others' tokens at once and they agree on the newest.
    store.signing_keys().await
}

/// Adds a new signing key, which signs from now on here and, as soon as they hear of
/// it, on every other instance; the previous ones keep verifying until they have been
/// superseded for [`KEY_RETIREMENT_SECS`] (rotation with overlap). Returns its id.
pub async fn rotate(s: &Authority, by: &Actor) -> OAuthResult<String> {
    let kid = add_key(s.store.as_ref(), s.now()).await?;
    sync(s).await?;
    s.audit(
        Event::KeyRotated {
            kid: kid.clone(),
            by: by.clone(),
        },
        None,
        None,
    )
    .await;
    Ok(kid)
}

async fn add_key(store: &dyn Store, now: i64) -> Result<String, StoreError> {
    let mut k = StoredKey::generate(now);
    // Keys made in the same second must still order after the current one.
    let latest = store
        .signing_keys()
        .await?
        .iter()
        .map(|k| k.created_at)
        .max()
        .unwrap_or(0);
    k.created_at = now.max(latest + 1);
    store.insert_signing_key(&k).await?;
    store
        .retire_superseded_keys(now, KEY_RETIREMENT_SECS)
        .await?;
    Ok(k.kid)
}

/// Retires a signing key at once: it stops verifying on every instance, and tokens it
/// signed are refused even where they were already verified. The key that signs is
/// never retired this way (rotate first). False when `kid` is not a retirable key.
pub async fn retire(s: &Authority, kid: &str, by: &Actor) -> OAuthResult<bool> {
    if !s.store.retire_key(kid, s.now()).await? {
        return Ok(false);
    }
    // The handle as a revocation too: a process that polls (rather than listens)
    // learns of it with the revocations, and every instance keeps it as long as
    // its own tokens live.
    s.revoke_handles(&[key_handle(kid)]).await?;
    sync(s).await?;
    s.audit(
        Event::KeyRetired {
            kid: kid.to_owned(),
            by: by.clone(),
        },
        None,
        None,
    )
    .await;
    Ok(true)
}

/// Makes the key ring match the stored live keys: a key rotated elsewhere starts
/// signing; a key retired elsewhere stops verifying, and the tokens it signed are
/// revoked (validators may remember them as verified).
pub async fn sync(s: &Authority) -> Result<(), StoreError> {
    let keys = s.store.signing_keys().await?;
    if keys.is_empty() {
        return Ok(());
    }
    let live: HashSet<&str> = keys.iter().map(|k| k.kid.as_str()).collect();
    let held = s.keys.kids();
    let newest = keys.iter().max_by_key(|k| (k.created_at, k.kid.clone()));
    let same = held.len() == live.len() && held.iter().all(|k| live.contains(k.as_str()));
    if same && newest.is_some_and(|k| k.kid == s.keys.current_kid()) {
        return Ok(());
    }
    let until = s.now() + s.cfg.revocation_cover();
    for gone in held.iter().filter(|k| !live.contains(k.as_str())) {
        tracing::info!(kid = %gone, "signing key retired: its tokens are refused");
        s.revoked.revoke(&key_handle(gone), until);
    }
    s.keys.reload(&keys);
    Ok(())
}
