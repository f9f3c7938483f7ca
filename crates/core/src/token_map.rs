//! A map of verified JWTs, for the JWT validators' caches and introspection's.
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

/// A map of tokens to what their verification established, with the heap bytes it
/// holds counted, so that it can be bounded by bytes as well as by entries (tokens
/// are as long as their issuer makes them).
pub struct TokenMap<V> {
    hasher: RandomState,
    buckets: PrehashedMap<Vec<Entry<V>>>,
    len: usize,
    bytes: usize,
}

struct Entry<V> {
    token: Box<str>,
    value: V,
    /// The heap bytes this entry holds: the token, the entry, the value's own.
    bytes: usize,
}

impl<V> Default for TokenMap<V> {
    fn default() -> Self {
        Self {
            hasher: RandomState::new(),
            buckets: PrehashedMap::default(),
            len: 0,
            bytes: 0,
        }
    }
}

impl<V> TokenMap<V> {
    fn key(&self, token: &str) -> u64 {
        let b = token.as_bytes();
        self.hasher
            .hash_one(&b[b.len().saturating_sub(HASHED_SUFFIX)..])
    }

    /// What an entry for `token` whose value holds `value_bytes` on the heap costs.
    pub fn weight(token: &str, value_bytes: usize) -> usize {
        token.len() + std::mem::size_of::<Entry<V>>() + value_bytes
    }

    pub fn get(&self, token: &str) -> Option<&V> {
        self.buckets
            .get(&self.key(token))?
            .iter()
            .find(|e| *e.token == *token)
            .map(|e| &e.value)
    }

    /// Inserts or replaces the entry of `token` (unless its bucket is full);
    /// `value_bytes` is what `value` holds on the heap besides itself.
    pub fn insert(&mut self, token: &str, value: V, value_bytes: usize) {
        let bytes = Self::weight(token, value_bytes);
        // Buckets hold one entry in practice: room for one, not the default four.
        let bucket = self
            .buckets
            .entry(self.key(token))
            .or_insert_with(|| Vec::with_capacity(1));
        if let Some(e) = bucket.iter_mut().find(|e| *e.token == *token) {
            self.bytes = self.bytes - e.bytes + bytes;
            (e.value, e.bytes) = (value, bytes);
        } else if bucket.len() < MAX_BUCKET {
            bucket.push(Entry {
                token: token.into(),
                value,
                bytes,
            });
            self.len += 1;
            self.bytes += bytes;
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The heap bytes the entries hold (not counting the table itself).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Keeps only the entries `keep` says yes to, and gives back the table's memory
    /// when most of it is empty (a burst of tokens must not keep its table forever).
    pub fn retain(&mut self, mut keep: impl FnMut(&V) -> bool) {
        let (mut len, mut bytes) = (0, 0);
        self.buckets.retain(|_, bucket| {
            bucket.retain(|e| keep(&e.value));
            len += bucket.len();
            bytes += bucket.iter().map(|e| e.bytes).sum::<usize>();
            !bucket.is_empty()
        });
        (self.len, self.bytes) = (len, bytes);
        if self.buckets.capacity() > 4 * self.buckets.len().max(64) {
            self.buckets.shrink_to_fit();
        }
    }

    pub fn clear(&mut self) {
        self.buckets = PrehashedMap::default();
        (self.len, self.bytes) = (0, 0);
    }

    /// Makes room for one more entry of `incoming` bytes when the map would hold more
    /// than `max` entries or `max_bytes`: first drops what `stale` names, then, if
    /// still full, everything.
    pub fn make_room(
        &mut self,
        max: usize,
        max_bytes: usize,
        incoming: usize,
        stale: impl Fn(&V) -> bool,
    ) {
        let full = |m: &Self| m.len >= max || m.bytes + incoming > max_bytes;
        if full(self) {
            self.retain(|v| !stale(v));
            if full(self) {
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
        m.insert(&a, 1, 0);
        assert_eq!(m.get(&a), Some(&1));
        // Same signature, other payload: same bucket, no match.
        assert_eq!(m.get(&b), None);
        m.insert(&b, 2, 0);
        assert_eq!((m.get(&a), m.get(&b), m.len()), (Some(&1), Some(&2), 2));
        m.insert(&a, 3, 0);
        assert_eq!((m.get(&a), m.len()), (Some(&3), 2));
        for p in ["C", "D", "E"] {
            m.insert(&format!("header.payload{p}.{sig}"), 9, 0);
        }
        assert_eq!(m.len(), MAX_BUCKET, "a bucket stays bounded");
        assert_eq!(m.get("short"), None);
        m.insert("short", 4, 0);
        assert_eq!(m.get("short"), Some(&4));
    }

    #[test]
    fn room_is_made_from_stale_entries_first() {
        let mut m = TokenMap::default();
        for i in 0..10 {
            m.insert(&format!("t{i}"), i, 0);
        }
        m.make_room(10, usize::MAX, 0, |v| *v < 5);
        assert_eq!(m.len(), 5);
        assert_eq!(m.get("t7"), Some(&7));
        m.make_room(5, usize::MAX, 0, |_| false);
        assert!(m.is_empty());
        assert_eq!(m.bytes(), 0);
    }

    #[test]
    fn bytes_are_counted_and_bounded() {
        let mut m: TokenMap<u64> = TokenMap::default();
        let max_bytes = 64 * 1024;
        let token = |i: usize| format!("{i:0>8}.{}", "x".repeat(600 + i % 300));
        for i in 0..10_000 {
            let t = token(i);
            let w = TokenMap::<u64>::weight(&t, 100);
            m.make_room(usize::MAX, max_bytes, w, |v| *v % 2 == 0);
            m.insert(&t, i as u64, 100);
            assert!(m.bytes() <= max_bytes, "{} bytes after {i}", m.bytes());
        }
        let expected: usize = (0..10_000)
            .map(token)
            .filter(|t| m.get(t).is_some())
            .map(|t| TokenMap::<u64>::weight(&t, 100))
            .sum();
        assert_eq!(m.bytes(), expected, "the count matches what is held");
        assert!(!m.is_empty(), "room is made, not everything refused");
        m.retain(|_| false);
        assert_eq!((m.len(), m.bytes()), (0, 0));
    }
}
