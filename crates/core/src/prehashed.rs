//! Maps keyed by `u64`s that are already keyed hashes (of a token's end, of a kind of
//! tool call): they are used as they are instead of being hashed a second time.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// For maps whose `u64` keys are already keyed hashes: uses them as they are, instead
/// of hashing them a second time.
#[derive(Default)]
pub struct PrehashedKey(u64);

impl Hasher for PrehashedKey {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is meant to be called; fold anything else in anyway.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A `HashMap` keyed by prehashed `u64`s.
pub type PrehashedMap<V> = HashMap<u64, V, BuildHasherDefault<PrehashedKey>>;
