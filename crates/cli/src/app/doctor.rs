//! What the guards see of clients' calls, noted for the connection doctor: each new
//! token's first use and each refusal of a token our keys signed. At most one note per
//! client, outcome and detail a minute, so a client retrying a refused token does not
//! fill the record; the notes go to the authorization server's step buffer, written in
//! batches by its background task.

use std::collections::HashMap;
use std::sync::Mutex;

use mcpgate_domain::Authority;
use mcpgate_domain::model::{Outcome, StepKind};
use mcpgate_mcp::validator::local::CallObserver;

/// How long the same note is not repeated.
const QUIET_SECS: i64 = 60;
/// Most remembered notes before the memory is cleared.
const REMEMBERED: usize = 10_000;

pub struct CallSteps {
    auth: Authority,
    recent: Mutex<HashMap<(String, bool, String), i64>>,
}

impl CallSteps {
    pub fn new(auth: Authority) -> Self {
        Self {
            auth,
            recent: Mutex::new(HashMap::new()),
        }
    }
}

impl CallObserver for CallSteps {
    fn seen(&self, client_id: &str, accepted: bool, detail: String) {
        let now = self.auth.now();
        let key = (client_id.to_owned(), accepted, detail);
        {
            let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            if recent.get(&key).is_some_and(|at| now - at < QUIET_SECS) {
                return;
            }
            if recent.len() >= REMEMBERED {
                recent.clear();
            }
            recent.insert(key.clone(), now);
        }
        let outcome = if accepted {
            Outcome::Ok
        } else {
            Outcome::Refused
        };
        self.auth.note(client_id, StepKind::Call, outcome, key.2);
    }
}
