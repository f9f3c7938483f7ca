//! Which person opened which upstream session. A session id is a bearer handle to the
//! upstream's state, so a request naming one must come from the subject that opened it
//! (MCP security best practices, "Session Hijacking": bind sessions to the user).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::errors::GatewayError;

/// Most sessions remembered per upstream; past it the least recently used is
/// forgotten (its next request gets 404 and the client starts a new session).
pub const MAX_SESSIONS: usize = 10_000;

#[derive(Default)]
pub struct SessionBook {
    inner: Mutex<HashMap<String, Owner>>,
}

struct Owner {
    subject: String,
    last: Instant,
}

impl SessionBook {
    /// Whether `subject` may use session `id`.
    pub fn check(&self, id: &str, subject: &str) -> Result<(), GatewayError> {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(id) {
            None => Err(GatewayError::UnknownSession),
            Some(o) if o.subject != subject => Err(GatewayError::ForeignSession),
            Some(o) => {
                o.last = Instant::now();
                Ok(())
            }
        }
    }

    /// Records that `subject` opened session `id` (an id already bound stays bound
    /// to its first owner).
    pub fn bind(&self, id: &str, subject: &str) {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if map.contains_key(id) {
            return;
        }
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, o)| o.last)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(
            id.to_owned(),
            Owner {
                subject: subject.to_owned(),
                last: Instant::now(),
            },
        );
    }

    pub fn forget(&self, id: &str) {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_serves_only_its_owner() {
        let b = SessionBook::default();
        assert_eq!(b.check("s", "alice"), Err(GatewayError::UnknownSession));
        b.bind("s", "alice");
        b.bind("s", "mallory");
        assert_eq!(b.check("s", "alice"), Ok(()));
        assert_eq!(b.check("s", "mallory"), Err(GatewayError::ForeignSession));
        b.forget("s");
        assert_eq!(b.check("s", "alice"), Err(GatewayError::UnknownSession));
    }
}
