//! Which person opened which upstream session. A session id is a bearer handle to the
//! upstream's state, so a request naming one must come from the subject that opened it
//! (MCP security best practices, "Session Hijacking": bind sessions to the user).
//!
//! The book is bounded, per person as well as in all: one person opening sessions
//! without end only ends their own oldest idle ones, never someone else's, and a
//! session with a request or stream open is never the one dropped. A binding dropped
//! is a session the gateway will refuse from now on, so the upstream is told to end
//! it too (the caller sends it `DELETE`: MCP transport, "Session Management").

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::errors::GatewayError;

/// Most sessions remembered per upstream; past it the least recently used idle one
/// is forgotten (its next request gets 404 and the client starts a new session).
pub const MAX_SESSIONS: usize = 10_000;

/// Most sessions one person holds at one HTTP upstream, unless the upstream's
/// `max_sessions_per_person` says otherwise.
pub const DEFAULT_PER_PERSON: usize = 64;

pub struct SessionBook {
    inner: Mutex<HashMap<String, Owner>>,
    per_person: usize,
    total: usize,
}

impl Default for SessionBook {
    fn default() -> Self {
        Self::new(DEFAULT_PER_PERSON, MAX_SESSIONS)
    }
}

struct Owner {
    subject: String,
    last: Instant,
    /// Requests and streams of this session the gateway is carrying now.
    open: Arc<AtomicUsize>,
}

/// A request or stream of a session in flight: while it lives, the session is not
/// idle and is not dropped to make room.
pub struct InUse(Arc<AtomicUsize>);

impl Drop for InUse {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What [`SessionBook::bind`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Bound {
    /// Recorded; these sessions were dropped to make room (to be ended upstream).
    Yes(Vec<String>),
    /// No room without dropping a session in use: the new one is not recorded (to
    /// be ended upstream, and the client told to retry).
    Full,
}

impl SessionBook {
    pub fn new(per_person: usize, total: usize) -> Self {
        Self {
            inner: Mutex::default(),
            per_person: per_person.max(1),
            total: total.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Owner>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `subject` may use session `id`; while the returned ticket lives, the
    /// session counts as in use.
    pub fn check(&self, id: &str, subject: &str) -> Result<InUse, GatewayError> {
        let mut map = self.lock();
        match map.get_mut(id) {
            None => Err(GatewayError::UnknownSession),
            Some(o) if o.subject != subject => Err(GatewayError::ForeignSession),
            Some(o) => {
                o.last = Instant::now();
                o.open.fetch_add(1, Ordering::Relaxed);
                Ok(InUse(o.open.clone()))
            }
        }
    }

    /// Records that `subject` opened session `id` (an id already bound stays bound
    /// to its first owner), making room first: the person's own least recently used
    /// idle session when they hold their share, anyone's when the book is full.
    pub fn bind(&self, id: &str, subject: &str) -> Bound {
        let mut map = self.lock();
        if map.contains_key(id) {
            return Bound::Yes(Vec::new());
        }
        let mut dropped = Vec::new();
        let held = map.values().filter(|o| o.subject == subject).count();
        if held >= self.per_person {
            match oldest_idle(&map, Some(subject)) {
                Some(k) => {
                    map.remove(&k);
                    dropped.push(k);
                }
                None => return Bound::Full,
            }
        }
        if map.len() >= self.total {
            match oldest_idle(&map, None) {
                Some(k) => {
                    map.remove(&k);
                    dropped.push(k);
                }
                None => return Bound::Full,
            }
        }
        map.insert(
            id.to_owned(),
            Owner {
                subject: subject.to_owned(),
                last: Instant::now(),
                open: Arc::default(),
            },
        );
        Bound::Yes(dropped)
    }

    pub fn forget(&self, id: &str) {
        self.lock().remove(id);
    }

    /// How many sessions are bound.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The least recently used session with nothing in flight, of `subject` if given.
fn oldest_idle(map: &HashMap<String, Owner>, subject: Option<&str>) -> Option<String> {
    map.iter()
        .filter(|(_, o)| subject.is_none_or(|s| o.subject == s))
        .filter(|(_, o)| o.open.load(Ordering::Relaxed) == 0)
        .min_by_key(|(_, o)| o.last)
        .map(|(k, _)| k.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_serves_only_its_owner() {
        let b = SessionBook::default();
        assert!(matches!(
            b.check("s", "alice"),
            Err(GatewayError::UnknownSession)
        ));
        b.bind("s", "alice");
        b.bind("s", "mallory");
        assert!(b.check("s", "alice").is_ok());
        assert!(matches!(
            b.check("s", "mallory"),
            Err(GatewayError::ForeignSession)
        ));
        b.forget("s");
        assert!(matches!(
            b.check("s", "alice"),
            Err(GatewayError::UnknownSession)
        ));
    }

    /// Before, a book of 10,000 let one person's new sessions push out everyone's.
    #[test]
    fn one_person_filling_the_book_drops_only_their_own_idle_sessions() {
        let b = SessionBook::new(3, 10);
        assert_eq!(b.bind("alice-1", "alice"), Bound::Yes(vec![]));
        for i in 0..20 {
            let dropped = b.bind(&format!("mallory-{i}"), "mallory");
            if let Bound::Yes(d) = dropped {
                assert!(d.iter().all(|s| s.starts_with("mallory-")), "{d:?}");
            }
        }
        assert!(
            b.check("alice-1", "alice").is_ok(),
            "alice keeps her session"
        );
        assert_eq!(b.len(), 4, "three of mallory's and alice's");
    }

    #[test]
    fn a_session_in_use_is_never_the_one_dropped() {
        let b = SessionBook::new(2, 10);
        b.bind("a", "alice");
        b.bind("b", "alice");
        let stream = b.check("a", "alice").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let _busy = b.check("b", "alice").unwrap();
        // Both in use: no room for a third without cutting one.
        assert_eq!(b.bind("c", "alice"), Bound::Full);
        drop(stream);
        // `a` is idle again (and older): it goes, `b` stays.
        assert_eq!(b.bind("c", "alice"), Bound::Yes(vec!["a".to_owned()]));
        assert!(b.check("b", "alice").is_ok());
    }

    #[test]
    fn a_full_book_makes_room_from_the_least_recently_used_idle_session() {
        let b = SessionBook::new(10, 2);
        b.bind("x", "p1");
        std::thread::sleep(std::time::Duration::from_millis(5));
        b.bind("y", "p2");
        assert_eq!(b.bind("z", "p3"), Bound::Yes(vec!["x".to_owned()]));
    }
}
