//! The connection doctor: where a client's connection stopped. The flows note each
//! step as it happens ([`crate::Authority::note`]): registration, the authorization
//! request, the consent, the code exchange, the first call with the grant's token at an
//! MCP endpoint (noted by the guard when it first verifies a token, not on every call),
//! and refreshes. The notes are kept in memory and written in batches
//! ([`crate::Authority::flush_steps`], off the request path); [`report`] reads them back
//! and names the first step that did not complete, with what it usually means.

use std::sync::Mutex;

use serde::Serialize;

use crate::Authority;
use crate::model::{AuditFilter, ClientStep, Outcome, StepKind};
use crate::store::{STEPS_KEPT_SECS, StoreResult};

/// Most steps held in memory between two writes; beyond it new ones are dropped (and
/// counted): a flood of refusals must not grow the process.
const BUFFERED: usize = 10_000;
/// Longest detail kept of a step.
const MAX_DETAIL: usize = 300;
/// Most steps shown per client.
pub const STEPS_SHOWN: i64 = 50;
/// Most clients a report covers.
pub const CLIENTS_SHOWN: i64 = 50;

/// Steps noted and not yet written.
#[derive(Debug, Default)]
pub struct StepBuffer {
    pending: Mutex<(Vec<ClientStep>, u64)>,
}

impl StepBuffer {
    pub fn push(&self, step: ClientStep) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if p.0.len() < BUFFERED {
            p.0.push(step);
        } else {
            p.1 += 1;
        }
    }

    /// What was noted since the last call, and how many notes were dropped.
    pub fn take(&self) -> (Vec<ClientStep>, u64) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        (std::mem::take(&mut p.0), std::mem::take(&mut p.1))
    }
}

impl Authority {
    /// Notes a step of `client_id`'s connection (written later, in a batch).
    pub fn note(
        &self,
        client_id: &str,
        step: StepKind,
        outcome: Outcome,
        detail: impl Into<String>,
    ) {
        let mut detail: String = detail.into();
        if detail.len() > MAX_DETAIL {
            let mut cut = MAX_DETAIL;
            while !detail.is_char_boundary(cut) {
                cut -= 1;
            }
            detail.truncate(cut);
        }
        self.steps.push(ClientStep {
            client_id: client_id.chars().take(512).collect(),
            at: self.now(),
            step,
            outcome,
            detail,
        });
    }

    /// Writes the steps noted since the last flush.
    pub async fn flush_steps(&self) -> StoreResult<()> {
        let (steps, dropped) = self.steps.take();
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "connection steps dropped: more were noted than could be held"
            );
        }
        if steps.is_empty() {
            return Ok(());
        }
        self.store.record_steps(&steps).await
    }
}

/// One client's connection, as the doctor reads it.
#[derive(Debug, Clone, Serialize)]
pub struct ClientReport {
    pub client_id: String,
    pub client_name: Option<String>,
    pub steps: Vec<StepView>,
    /// The first step of the latest connection that did not complete; `None` when the
    /// client made a successful call (and nothing failed after it).
    pub stopped_at: Option<StepKind>,
    /// What that usually means, for people.
    pub advice: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepView {
    pub step: StepKind,
    pub at: i64,
    /// `true` done, `false` refused, `null` begun and not answered.
    pub ok: Option<bool>,
    pub detail: String,
}

impl From<&ClientStep> for StepView {
    fn from(s: &ClientStep) -> Self {
        StepView {
            step: s.step,
            at: s.at,
            ok: match s.outcome {
                Outcome::Ok => Some(true),
                Outcome::Refused => Some(false),
                Outcome::Pending => None,
            },
            detail: s.detail.clone(),
        }
    }
}

/// Recent clients' connections (the most recently active first), or one client's.
pub async fn report(s: &Authority, client_id: Option<&str>) -> StoreResult<Vec<ClientReport>> {
    let ids = match client_id {
        Some(c) => vec![c.to_owned()],
        None => {
            s.store
                .clients_with_steps(s.now() - STEPS_KEPT_SECS, CLIENTS_SHOWN)
                .await?
        }
    };
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let mut steps = s.store.client_steps(&id, STEPS_SHOWN).await?;
        steps.extend(tool_calls(s, &id).await?);
        steps.sort_by_key(|st| st.at);
        let name = s.store.client(&id).await?.map(|c| c.name);
        let (stopped_at, advice) = diagnose(&steps, s.now(), s.cfg.code_ttl_secs);
        out.push(ClientReport {
            client_id: id,
            client_name: name,
            steps: steps.iter().map(StepView::from).collect(),
            stopped_at,
            advice,
        });
    }
    Ok(out)
}

/// The client's tool calls the guards refused for a missing scope (the audit's
/// `tool_calls` records), as refused call steps naming the scope. Allowed calls are
/// already steps (each token's first use); the counts' records are written in batches,
/// so their time says when the count was written, not when each call was made.
async fn tool_calls(s: &Authority, client_id: &str) -> StoreResult<Vec<ClientStep>> {
    let f = AuditFilter {
        client_id: Some(client_id.to_owned()),
        event: Some("tool_calls".into()),
        from: Some(s.now() - STEPS_KEPT_SECS),
        ..Default::default()
    };
    let rows = s.store.search_audit(&f, STEPS_SHOWN).await?;
    Ok(rows
        .into_iter()
        .filter_map(|e| {
            let d: serde_json::Value = serde_json::from_str(&e.detail).ok()?;
            let tool = d["tool"].as_str().unwrap_or("?");
            let count = d["count"].as_u64().unwrap_or(1);
            if d["allowed"].as_bool()? {
                return None;
            }
            Some(ClientStep {
                client_id: client_id.to_owned(),
                at: e.at,
                step: StepKind::Call,
                outcome: Outcome::Refused,
                detail: format!(
                    "scope: {count} call(s) of {tool} refused, needing {}",
                    d["needed"].as_str().unwrap_or("a scope the token lacks")
                ),
            })
        })
        .collect())
}

/// The first step of the latest connection in `steps` (oldest first) that did not
/// complete, and what it usually means. A connection is the steps from the latest
/// authorization request on; registration before it counts once, and a client the
/// operator registered never registers. After a successful call, a later refused call
/// or refresh is where it stopped.
pub fn diagnose(
    steps: &[ClientStep],
    now: i64,
    code_ttl: i64,
) -> (Option<StepKind>, Option<String>) {
    if steps.is_empty() {
        return (
            Some(StepKind::Authorize),
            Some("Nothing recorded for this client in the last week.".into()),
        );
    }
    let latest = |kind: StepKind, from: usize| steps[from..].iter().rev().find(|s| s.step == kind);
    // A refused registration (a metadata document that could not be fetched) with
    // nothing after it.
    if let Some(r) = latest(StepKind::Register, 0)
        && r.outcome == Outcome::Refused
        && steps.last() == Some(r)
    {
        return stop(StepKind::Register, r, now, code_ttl);
    }
    let start = steps
        .iter()
        .rposition(|s| s.step == StepKind::Authorize)
        .unwrap_or(0);
    for kind in [
        StepKind::Authorize,
        StepKind::Consent,
        StepKind::Token,
        StepKind::Call,
    ] {
        match latest(kind, start) {
            Some(s) if s.outcome == Outcome::Ok => continue,
            Some(s) => return stop(kind, s, now, code_ttl),
            None => {
                // A call or refresh with the grant's tokens may come long after the
                // latest authorization: look at the whole record for those.
                if kind == StepKind::Call && latest(StepKind::Call, 0).is_some() {
                    continue;
                }
                return missing(kind, steps, now, code_ttl);
            }
        }
    }
    // The connection worked: did something fail since its last successful call?
    let last_ok_call = steps
        .iter()
        .rposition(|s| s.step == StepKind::Call && s.outcome == Outcome::Ok)
        .unwrap_or(0);
    if let Some(s) = steps[last_ok_call..]
        .iter()
        .rev()
        .find(|s| matches!(s.step, StepKind::Call | StepKind::Refresh))
        .filter(|s| s.outcome == Outcome::Refused)
    {
        return stop(s.step, s, now, code_ttl);
    }
    (None, None)
}

fn stop(
    kind: StepKind,
    s: &ClientStep,
    _now: i64,
    _code_ttl: i64,
) -> (Option<StepKind>, Option<String>) {
    let d = s.detail.as_str();
    let advice = match (kind, s.outcome) {
        (StepKind::Register, _) => format!(
            "The client's registration failed ({d}): for a metadata document, check that its URL serves the document with the client_id equal to that URL."
        ),
        (StepKind::Authorize, _) => format!(
            "The authorization request was refused ({d}): the client sends a redirect URI, scope or resource this server does not accept; compare them with its registration and this server's metadata."
        ),
        (StepKind::Consent, Outcome::Pending) => "The consent page was shown and never answered: the person left, or the page did not open in a browser they could see.".to_owned(),
        (StepKind::Consent, _) => format!("The person did not allow it ({d})."),
        (StepKind::Token, _) => format!(
            "The code exchange was refused ({d}): the client must send the same redirect_uri, its PKCE verifier and the same resource it used at /authorize, within the code's lifetime, once."
        ),
        (StepKind::Call, _) => format!(
            "The token was refused at an MCP endpoint ({d}): a token is valid only for the resource it was issued for (RFC 8707), until it expires or is revoked, and for its scopes."
        ),
        (StepKind::Refresh, _) => format!(
            "A refresh was refused ({d}): the client must start a new authorization (a refresh token is single use, bound to its client, and ends with its grant)."
        ),
    };
    (Some(kind), Some(advice))
}

fn missing(
    kind: StepKind,
    steps: &[ClientStep],
    now: i64,
    code_ttl: i64,
) -> (Option<StepKind>, Option<String>) {
    let last = steps.last().map_or(now, |s| s.at);
    let advice = match kind {
        StepKind::Authorize => "The client registered and never sent an authorization request: it may be waiting for its user, or it discovered another authorization server.".to_owned(),
        StepKind::Consent => "The authorization request was accepted and the consent page never answered: the person did not finish signing in.".to_owned(),
        StepKind::Token if now - last <= code_ttl => "A code was issued moments ago and not yet exchanged.".to_owned(),
        StepKind::Token => "A code was issued and never exchanged: the client did not complete the redirect; check its callback URL and that it handles iss.".to_owned(),
        StepKind::Call => "Tokens were issued and never presented at an MCP endpoint: the client sends them elsewhere (another URL than the resource it asked for) or not at all.".to_owned(),
        StepKind::Register | StepKind::Refresh => String::new(),
    };
    (Some(kind), Some(advice))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(step: StepKind, outcome: Outcome, at: i64) -> ClientStep {
        ClientStep {
            client_id: "c".into(),
            at,
            step,
            outcome,
            detail: "why".into(),
        }
    }

    use Outcome::*;
    use StepKind::*;

    #[test]
    fn where_each_connection_stopped() {
        let ok = |k, at| step(k, Ok, at);
        for (name, steps, now, want) in [
            (
                "complete",
                vec![
                    ok(Register, 1),
                    ok(Authorize, 2),
                    ok(Consent, 3),
                    ok(Token, 4),
                    ok(Call, 5),
                ],
                10,
                None,
            ),
            (
                "stops after consent, past the code's lifetime",
                vec![ok(Register, 1), ok(Authorize, 2), ok(Consent, 3)],
                1000,
                Some(Token),
            ),
            (
                "consent shown, never answered",
                vec![ok(Authorize, 2), step(Consent, Pending, 3)],
                1000,
                Some(Consent),
            ),
            (
                "denied",
                vec![ok(Authorize, 2), step(Consent, Refused, 3)],
                10,
                Some(Consent),
            ),
            (
                "token refused",
                vec![ok(Authorize, 2), ok(Consent, 3), step(Token, Refused, 4)],
                10,
                Some(Token),
            ),
            (
                "tokens never used",
                vec![ok(Authorize, 2), ok(Consent, 3), ok(Token, 4)],
                10,
                Some(Call),
            ),
            (
                "wrong resource after a good call",
                vec![
                    ok(Authorize, 2),
                    ok(Consent, 3),
                    ok(Token, 4),
                    ok(Call, 5),
                    step(Call, Refused, 6),
                ],
                10,
                Some(Call),
            ),
            (
                "a new authorization after calls, not finished",
                vec![
                    ok(Authorize, 2),
                    ok(Consent, 3),
                    ok(Token, 4),
                    ok(Call, 5),
                    ok(Authorize, 6),
                ],
                10,
                Some(Consent),
            ),
            (
                "calls long after, refresh fine",
                vec![
                    ok(Authorize, 2),
                    ok(Consent, 3),
                    ok(Token, 4),
                    ok(Call, 5),
                    ok(Refresh, 9),
                ],
                10,
                None,
            ),
            (
                "refresh refused",
                vec![
                    ok(Authorize, 2),
                    ok(Consent, 3),
                    ok(Token, 4),
                    ok(Call, 5),
                    step(Refresh, Refused, 9),
                ],
                10,
                Some(Refresh),
            ),
            (
                "metadata document not fetched",
                vec![step(Register, Refused, 1)],
                10,
                Some(Register),
            ),
        ] {
            let (stopped, advice) = diagnose(&steps, now, 60);
            assert_eq!(stopped, want, "{name}");
            assert_eq!(advice.is_some(), want.is_some(), "{name}");
        }
        let (_, advice) = diagnose(&[ok(Authorize, 2), ok(Consent, 3)], 1000, 60);
        assert!(advice.unwrap().contains("never exchanged"));
    }

    #[test]
    fn the_buffer_is_bounded() {
        let b = StepBuffer::default();
        for i in 0..(BUFFERED + 5) {
            b.push(step(Call, Ok, i as i64));
        }
        let (steps, dropped) = b.take();
        assert_eq!((steps.len(), dropped), (BUFFERED, 5));
        assert_eq!(b.take().0.len(), 0);
    }
}
