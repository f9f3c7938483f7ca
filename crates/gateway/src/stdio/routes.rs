//! Where a stdio server's messages go: a response to the POST that asked for it,
//! anything else to the newest open POST, the session's GET stream, or a bounded
//! backlog until one opens.

use std::collections::VecDeque;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use crate::errors::GatewayError;

/// Server messages kept for a GET stream not yet open.
pub(super) const BACKLOG: usize = 256;

#[derive(Default)]
pub(super) struct Routes {
    /// Open requests: the JSON text of the id, and the stream of that POST.
    pub(super) pending: Vec<(String, mpsc::Sender<Bytes>)>,
    pub(super) get: Option<mpsc::Sender<Bytes>>,
    pub(super) backlog: VecDeque<Bytes>,
}

/// What the gateway reads of a line from the server.
#[derive(Deserialize)]
pub(super) struct Peek<'a> {
    #[serde(borrow, default)]
    pub(super) id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(super) method: Option<&'a RawValue>,
}

/// The id's JSON text in one normal form, so that `1` and `1` and `"a"` and `"a"` match
/// however each side spaced or escaped them.
pub(super) fn id_key(raw: &str) -> Option<String> {
    let v: Value = serde_json::from_str(raw).ok()?;
    (!v.is_null()).then(|| v.to_string())
}

impl Routes {
    /// Sends a server message on its way: a response to the POST that asked; any other
    /// message to the newest open POST (it is most likely about that request), else the
    /// GET stream, else the backlog.
    pub(super) fn route(&mut self, line: Bytes) {
        let Ok(peek) = serde_json::from_slice::<Peek>(&line) else {
            tracing::warn!("a stdio upstream wrote a line that is not JSON-RPC; dropped");
            return;
        };
        if peek.method.is_none() {
            let Some(key) = peek.id.and_then(|r| id_key(r.get())) else {
                return;
            };
            if let Some(i) = self.pending.iter().position(|(k, _)| *k == key) {
                let (_, tx) = self.pending.remove(i);
                let _ = tx.try_send(line);
            }
            return;
        }
        self.pending.retain(|(_, tx)| !tx.is_closed());
        if let Some((_, tx)) = self.pending.last() {
            let _ = tx.try_send(line);
            return;
        }
        if let Some(tx) = &self.get {
            if tx.try_send(line.clone()).is_ok() {
                return;
            }
            self.get = None;
        }
        if self.backlog.len() == BACKLOG {
            self.backlog.pop_front();
        }
        self.backlog.push_back(line);
    }

    /// The process died: every open request gets a JSON-RPC error now, not a hang.
    pub(super) fn fail_all(&mut self) {
        for (key, tx) in self.pending.drain(..) {
            let id: Value = serde_json::from_str(&key).unwrap_or(Value::Null);
            let _ = tx.try_send(Bytes::from(
                GatewayError::BadGateway.body(Some(&id)).to_string(),
            ));
        }
    }
}
