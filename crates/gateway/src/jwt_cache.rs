//! Identity JWTs, signed once per caller and reused: a client makes many calls with
//! one access token, and an Ed25519 signature per forwarded request would be most of
//! the gateway's own cost. A token is reused while at least [`MIN_REMAINING_SECS`] of
//! its life remain (the upstream gets time to verify it whatever its clock's skew),
//! and only for the exact claims it carries: subject, client, scopes and username
//! (the audience is the upstream's, one cache per upstream). The cache is bounded in
//! entries and bytes, like the guard's token caches; a full cache signs per request.

use std::collections::HashMap;
use std::sync::Mutex;

use mcpgate_mcp::Principal;

/// A cached token is handed out only while this much of its lifetime is left.
pub const MIN_REMAINING_SECS: i64 = 15;
/// Most callers remembered at once...
const MAX_ENTRIES: usize = 10_000;
/// ...and most bytes their tokens and keys may hold.
const MAX_BYTES: usize = 4 << 20;

#[derive(Default)]
pub struct JwtCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    map: HashMap<Key, Entry>,
    bytes: usize,
}

#[derive(Hash, PartialEq, Eq)]
struct Key {
    subject: Box<str>,
    client_id: Box<str>,
    scopes: Box<str>,
    username: Option<Box<str>>,
}

struct Entry {
    token: String,
    exp: i64,
    bytes: usize,
}

impl Key {
    fn of(p: &Principal) -> Self {
        Self {
            subject: p.subject.as_str().into(),
            client_id: p.client_id.as_str().into(),
            scopes: p.scopes.to_string().into(),
            username: p.username.as_deref().map(Into::into),
        }
    }

    fn bytes(&self) -> usize {
        self.subject.len()
            + self.client_id.len()
            + self.scopes.len()
            + self.username.as_ref().map_or(0, |u| u.len())
    }
}

impl JwtCache {
    /// The cached token for `p`, if it has enough life left at `now`.
    pub fn get(&self, p: &Principal, now: i64) -> Option<String> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let e = inner.map.get(&Key::of(p))?;
        (e.exp - MIN_REMAINING_SECS > now).then(|| e.token.clone())
    }

    /// Remembers `token` (expiring at `exp`) for `p`, making room by dropping tokens
    /// too old to hand out; when that is not enough, the token is not cached.
    pub fn put(&self, p: &Principal, token: String, exp: i64, now: i64) {
        let key = Key::of(p);
        let bytes = key.bytes() + token.len() + std::mem::size_of::<(Key, Entry)>();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = inner.map.remove(&key) {
            inner.bytes -= old.bytes;
        }
        if inner.map.len() >= MAX_ENTRIES || inner.bytes + bytes > MAX_BYTES {
            inner.map.retain(|_, e| e.exp - MIN_REMAINING_SECS > now);
            inner.bytes = inner.map.values().map(|e| e.bytes).sum();
            if inner.map.len() >= MAX_ENTRIES || inner.bytes + bytes > MAX_BYTES {
                return;
            }
        }
        inner.bytes += bytes;
        inner.map.insert(key, Entry { token, exp, bytes });
    }

    /// Entries and bytes held.
    pub fn size(&self) -> (usize, usize) {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        (inner.map.len(), inner.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcpgate_core::ScopeSet;

    fn p(i: usize) -> Principal {
        Principal {
            subject: format!("user-{i}"),
            username: None,
            email: None,
            client_id: "c".into(),
            scopes: ScopeSet::parse("a").unwrap(),
            session_id: None,
            expires_at: 0,
            jkt: None,
        }
    }

    #[test]
    fn the_cache_is_bounded_and_makes_room_from_expired_tokens() {
        let c = JwtCache::default();
        for i in 0..MAX_ENTRIES + 10 {
            c.put(&p(i), "t".repeat(100), 1_060, 1_000);
        }
        assert_eq!(c.size().0, MAX_ENTRIES, "a full cache takes no more");
        assert!(c.size().1 <= MAX_BYTES);
        assert!(c.get(&p(MAX_ENTRIES + 5), 1_000).is_none());
        // Once the old tokens are too old to hand out, new ones take their place.
        c.put(&p(MAX_ENTRIES + 5), "new".into(), 1_200, 1_050);
        assert_eq!(c.size().0, 1);
        assert_eq!(c.get(&p(MAX_ENTRIES + 5), 1_050).as_deref(), Some("new"));
        assert!(c.get(&p(0), 1_050).is_none());
    }
}
