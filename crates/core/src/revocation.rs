//! Revoked grants and tokens, in memory, for the in-process guard.
//!
//! Access tokens are self-contained JWTs, so revoking one (or its whole grant) must be
//! remembered where tokens are verified. This set is that memory: filled by the
//! authorization server when it revokes, and by a background poll of the store for
//! revocations made elsewhere (the CLI, another instance). Entries are dropped once
//! every token they could match has expired anyway.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct RevocationList {
    /// id (grant id or token jti) → time after which it no longer matters.
    revoked: RwLock<HashMap<String, i64>>,
    /// Counts revocations, so that a caller who found a token clear at one
    /// generation need not look again until the next revocation.
    generation: AtomicU64,
}

impl RevocationList {
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks a grant id or jti revoked until `until` (the longest expiry it can affect),
    /// or extends an earlier entry. Applying the same revocation again (the periodic
    /// poll re-reads recent ones) changes nothing, so validators keep their cached
    /// answers.
    pub fn revoke(&self, id: &str, until: i64) {
        let mut map = self.revoked.write().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(id) {
            Some(u) if *u >= until => return,
            Some(u) => *u = until,
            None => {
                map.insert(id.to_owned(), until);
            }
        }
        // After the insert: whoever reads the new generation finds the id listed.
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Until when `id` is revoked, if it is.
    pub fn until(&self, id: &str) -> Option<i64> {
        self.revoked
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .copied()
    }

    /// The number of revocations so far. Read it *before* checking ids: a check
    /// made after reading generation `g` stays true for as long as the generation
    /// is still `g`.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn is_revoked(&self, id: &str) -> bool {
        self.revoked
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(id)
    }

    /// How many ids are listed.
    pub fn len(&self) -> usize {
        self.revoked.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops entries that can no longer match a live token (no generation change:
    /// nothing live becomes valid again).
    pub fn prune(&self, now: i64) {
        self.revoked
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, until| *until > now);
        // A burst of revocations must not keep its table once its entries are gone.
        let mut map = self.revoked.write().unwrap_or_else(|e| e.into_inner());
        if map.capacity() > 4 * map.len().max(64) {
            map.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruned_entries_give_their_memory_back() {
        let list = RevocationList::new();
        for i in 0..10_000 {
            list.revoke(&format!("grant-{i}"), if i < 9_990 { 100 } else { 200 });
        }
        assert_eq!(list.len(), 10_000);
        list.prune(150);
        assert_eq!(list.len(), 10);
        assert!(list.is_revoked("grant-9995") && !list.is_revoked("grant-5"));
        let capacity = list.revoked.read().unwrap().capacity();
        assert!(capacity < 1000, "the table shrank: capacity {capacity}");
        list.prune(300);
        assert!(list.is_empty());
    }
}
