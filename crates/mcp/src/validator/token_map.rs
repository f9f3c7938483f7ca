//! A map of verified JWTs, for the JWT validators' caches.
//!
//! Looking a token up must cost little (it happens on every call) and must match the
//! whole token (a token that shares a signature with a cached one, its payload
//! altered, must miss). Entries are found by a keyed hash of the token's last 64
//! bytes — part of its signature — and then compared in full. That is sound because
//! only tokens that verified are inserted: two of them never share a signature, so
//! buckets hold one entry (a bound keeps it so whatever happens), and a presented
//! token with a copied signature lands in that bucket and fails the comparison.
//! Hashing 64 bytes instead of a whole token, and no SHA-256, makes a hit cost a small
//! fraction of a call. (Opaque tokens, whose ends may be alike, need a whole-token key:
//! the introspection cache has one.)

use std::hash::{BuildHasher, RandomState};

use crate::prehashed::PrehashedMap;

/// How many bytes of a token's end are hashed.
const HASHED_SUFFIX: usize = 64;

/// Most tokens kept per bucket; more are simply not cached.
const MAX_BUCKET: usize = 4;

pub struct TokenMap<V> {
    hasher: RandomState,
    buckets: PrehashedMap<Vec<(Box<str>, V)>>,
    len: usize,
}

impl<V> Default for TokenMap<V> {
    fn default() -> Self {
        Self {
            hasher: RandomState::new(),
            buckets: PrehashedMap::default(),
            len: 0,
        }
    }
}

impl<V> TokenMap<V> {
    fn key(&self, token: &str) -> u64 {
        let b = token.as_bytes();
        self.hasher
            .hash_one(&b[b.len().saturating_sub(HASHED_SUFFIX)..])
    }

    pub fn get(&self, token: &str) -> Option<&V> {
        self.buckets
            .get(&self.key(token))?
            .iter()
            .find(|(t, _)| **t == *token)
            .map(|(_, v)| v)
    }

    /// Inserts or replaces the entry of `token` (unless its bucket is full).
    pub fn insert(&mut self, token: &str, value: V) {
        let bucket = self.buckets.entry(self.key(token)).or_default();
        if let Some(i) = bucket.iter().position(|(t, _)| **t == *token) {
            bucket[i].1 = value;
        } else if bucket.len() < MAX_BUCKET {
            bucket.push((token.into(), value));
            self.len += 1;
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keeps only the entries `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&V) -> bool) {
        self.buckets.retain(|_, bucket| {
            bucket.retain(|(_, v)| keep(v));
            !bucket.is_empty()
        });
        self.len = self.buckets.values().map(Vec::len).sum();
    }

    pub fn clear(&mut self) {
        self.buckets.clear();
        self.len = 0;
    }

    /// Makes room for one more entry when the map holds `max`: first drops what
    /// `stale` names, then, if still full, everything.
    pub fn make_room(&mut self, max: usize, stale: impl Fn(&V) -> bool) {
        if self.len >= max {
            self.retain(|v| !stale(v));
            if self.len >= max {
                self.clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_whole_tokens_only() {
        let mut m = TokenMap::default();
        let sig = "S".repeat(86);
        let a = format!("header.payloadA.{sig}");
        let b = format!("header.payloadB.{sig}");
        m.insert(&a, 1);
        assert_eq!(m.get(&a), Some(&1));
        // Same signature, other payload: same bucket, no match.
        assert_eq!(m.get(&b), None);
        m.insert(&b, 2);
        assert_eq!((m.get(&a), m.get(&b), m.len()), (Some(&1), Some(&2), 2));
        m.insert(&a, 3);
        assert_eq!((m.get(&a), m.len()), (Some(&3), 2));
        for p in ["C", "D", "E"] {
            m.insert(&format!("header.payload{p}.{sig}"), 9);
        }
        assert_eq!(m.len(), MAX_BUCKET, "a bucket stays bounded");
        assert_eq!(m.get("short"), None);
        m.insert("short", 4);
        assert_eq!(m.get("short"), Some(&4));
    }

    #[test]
    fn room_is_made_from_stale_entries_first() {
        let mut m = TokenMap::default();
        for i in 0..10 {
            m.insert(&format!("t{i}"), i);
        }
        m.make_room(10, |v| *v < 5);
        assert_eq!(m.len(), 5);
        assert_eq!(m.get("t7"), Some(&7));
        m.make_room(5, |_| false);
        assert!(m.is_empty());
    }
}
