//! Keeping this process's in-memory state (revocation list, signing keys) in step
//! with changes made elsewhere: other instances, the CLI.
//!
//! Two paths, both off the request path, both reading the store:
//! - **notifications** ([`mcpgate_domain::store::ChangeListener`]): hints that something committed
//!   (PostgreSQL `LISTEN`, or the data directory's socket on SQLite), acted on at once
//!   by reading the revocations since the cursor, or the keys. A notification is never
//!   applied as such: any role that can connect to the database can send one, so what
//!   is revoked is only what the revocation table says. A burst of notifications
//!   (forged or real) is folded into one read at a time ([`Pending`]);
//! - **a poll** every sync period, the safety net for anything a notification missed
//!   (connection lost, process starting), run at once after a reconnect.
//!
//! PostgreSQL takes sequence values before commit, so a revocation may become visible
//! after one with a higher number. Every read therefore starts from the highest
//! number seen at least [`OVERLAP`] ago, never from the highest seen, so a revocation
//! committed up to that long out of order is still found (re-reading one changes
//! nothing).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use mcpgate_domain::StoreError;
use mcpgate_domain::store::Change;
use mcpgate_domain::store::ListenError;
use tokio_util::sync::CancellationToken;

use crate::state::AuthServer;

/// How far back each poll reads revocations again.
pub const OVERLAP: Duration = Duration::from_secs(60);

/// First wait before reopening a lost notification connection; doubles up to 30 s.
const RECONNECT_FIRST: Duration = Duration::from_secs(1);
const RECONNECT_MAX: Duration = Duration::from_secs(30);

/// Where the poll starts reading: the highest sequence number seen by each recent
/// poll, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Cursor {
    marks: VecDeque<(Instant, i64)>,
}

impl Cursor {
    /// The highest number seen by a poll at least [`OVERLAP`] ago (0 before then).
    fn floor(&mut self, now: Instant) -> i64 {
        while self.marks.len() >= 2 && now.duration_since(self.marks[1].0) >= OVERLAP {
            self.marks.pop_front();
        }
        match self.marks.front() {
            Some(&(at, seq)) if now.duration_since(at) >= OVERLAP => seq,
            _ => 0,
        }
    }

    fn saw(&mut self, now: Instant, seq: i64) {
        let highest = self.marks.back().map_or(0, |m| m.1).max(seq);
        // At most one mark per second however often changes arrive (a bounded list;
        // a floor at most a second later than exact).
        match self.marks.back_mut() {
            Some(last) if now.duration_since(last.0) < Duration::from_secs(1) => last.1 = highest,
            _ => self.marks.push_back((now, highest)),
        }
    }
}

/// The state of the notification connection, for `/readyz` and the log.
#[derive(Debug, Default)]
pub struct Notifications(AtomicU8);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyState {
    /// Not opened yet.
    Starting,
    Connected,
    /// Lost or refused; changes arrive by the poll until it is back.
    Disconnected,
    /// This database has no notifications (in-memory SQLite); the poll alone serves.
    NotUsed,
}

impl Notifications {
    pub fn get(&self) -> NotifyState {
        match self.0.load(Ordering::Relaxed) {
            1 => NotifyState::Connected,
            2 => NotifyState::Disconnected,
            3 => NotifyState::NotUsed,
            _ => NotifyState::Starting,
        }
    }

    fn set(&self, s: NotifyState) {
        let v = match s {
            NotifyState::Starting => 0,
            NotifyState::Connected => 1,
            NotifyState::Disconnected => 2,
            NotifyState::NotUsed => 3,
        };
        self.0.store(v, Ordering::Relaxed);
    }
}

impl NotifyState {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyState::Starting => "starting",
            NotifyState::Connected => "connected",
            NotifyState::Disconnected => "disconnected",
            NotifyState::NotUsed => "not used",
        }
    }
}

/// Reads announced but not made yet. The listener only marks what to read and wakes
/// the reader, which runs one read at a time: however many notifications arrive
/// meanwhile, they cost one more read, not one each.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    revocations: AtomicBool,
    keys: AtomicBool,
    wake: tokio::sync::Notify,
}

impl Pending {
    /// Marks what `change` says to read again (`None`: everything), and wakes the reader.
    fn hint(&self, change: Option<Change>) {
        let (revocations, keys) = match change {
            Some(Change::Revocations) => (true, false),
            Some(Change::Keys) => (false, true),
            // Users, clients and the scope catalogue the store remembers: its
            // listener forgot them on this hint, before passing it on. Nothing else
            // in this process holds them.
            Some(Change::Config) => return,
            None => (true, true),
        };
        if revocations {
            self.revocations.store(true, Ordering::Release);
        }
        if keys {
            self.keys.store(true, Ordering::Release);
        }
        self.wake.notify_one();
    }
}

impl AuthServer {
    /// Applies one revocation, for at least this server's token lifetime whatever the
    /// process that made it assumed.
    pub fn apply_revocation(&self, handle: &str, until: i64, created_at: i64) {
        self.auth.revoked.revoke(
            handle,
            until.max(created_at + self.cfg.rules.revocation_cover()),
        );
    }

    /// Applies revocations and key changes made by other processes (the CLI, other
    /// instances), reading the store, and drops revocations that no longer matter.
    pub async fn sync(&self) -> Result<(), StoreError> {
        // Expired entries go whether or not the store answers.
        self.auth.introspected.sweep(self.auth.now());
        self.sync_revocations().await?;
        self.auth.revoked.prune(self.auth.now());
        self.sync_keys().await
    }

    /// Applies the revocations recorded since the cursor (see the module's
    /// documentation), as the table holds them.
    pub async fn sync_revocations(&self) -> Result<(), StoreError> {
        let floor = self.cursor().floor(Instant::now());
        let started = Instant::now();
        let rows = self.auth.store.revocations_since(floor).await?;
        for r in &rows {
            self.apply_revocation(&r.handle, r.until, r.created_at);
        }
        let highest = rows.iter().map(|r| r.seq).max().unwrap_or(0);
        self.cursor().saw(started, highest);
        Ok(())
    }

    /// Makes the key ring match the stored live keys (see
    /// [`mcpgate_domain::flows::keys::sync`]).
    pub async fn sync_keys(&self) -> Result<(), StoreError> {
        mcpgate_domain::flows::keys::sync(&self.auth).await
    }

    /// Reads what notifications marked, one read at a time, until cancelled.
    fn spawn_reader(&self, cancel: CancellationToken) {
        let s = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = s.pending.wake.notified() => {}
                }
                if s.pending.revocations.swap(false, Ordering::AcqRel)
                    && let Err(e) = s.sync_revocations().await
                {
                    tracing::warn!(error = %e, "reading revocations after a notification failed");
                }
                if s.pending.keys.swap(false, Ordering::AcqRel)
                    && let Err(e) = s.sync_keys().await
                {
                    tracing::warn!(error = %e, "reading keys after a notification failed");
                }
            }
        });
    }

    /// Runs [`Self::sync`] and housekeeping every `period`, and listens for change
    /// notifications, until cancelled.
    pub fn spawn_background(&self, period: Duration, cancel: CancellationToken) {
        self.spawn_listener(cancel.clone());
        let s = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            let mut n: u64 = 0;
            loop {
                tokio::select! { _ = cancel.cancelled() => break, _ = tick.tick() => {} }
                if let Err(e) = s.sync().await {
                    tracing::warn!(error = %e, "revocation sync failed");
                }
                if let Err(e) = s.auth.flush_steps().await {
                    tracing::warn!(error = %e, "writing connection steps failed");
                }
                n += 1;
                // SQLite: the write-ahead log is folded back into the database every
                // few ticks, or it grows without end under continuous writes.
                if n.is_multiple_of(5)
                    && let Err(e) = s.auth.store.checkpoint().await
                {
                    tracing::warn!(error = %e, "database checkpoint failed");
                }
                if n.is_multiple_of(60)
                    && let Err(e) = s.housekeeping(s.auth.now()).await
                {
                    tracing::warn!(error = %e, "housekeeping failed");
                }
            }
        });
    }

    /// Deletes what no longer counts at `now`: expired codes, tokens, sessions and
    /// revocations, registrations never used, connection steps past their week or
    /// their bounds, and rate-limit windows that have passed
    /// (every source address makes one row a minute: without this the table grows
    /// without end under load).
    /// Each part runs whether or not another failed; the first failure is returned.
    pub async fn housekeeping(&self, now: i64) -> Result<(), StoreError> {
        let expired = self
            .auth
            .store
            .delete_expired(now, self.cfg.rules.revocation_cover())
            .await;
        let unused = self
            .auth
            .store
            .sweep_unused_dynamic_clients(now - self.cfg.rules.unused_client_ttl_secs)
            .await;
        let windows = self
            .auth
            .store
            .sweep_rate_limits(now - 2 * crate::limits::WINDOW_SECS)
            .await;
        let steps = self
            .auth
            .store
            .prune_steps(now - mcpgate_domain::store::STEPS_KEPT_SECS)
            .await;
        expired?;
        unused?;
        windows?;
        steps?;
        Ok(())
    }

    /// Keeps a notification connection open, reopening it (with backoff) when lost;
    /// after each reopening, catches up from the store.
    fn spawn_listener(&self, cancel: CancellationToken) {
        self.spawn_reader(cancel.clone());
        let s = self.clone();
        tokio::spawn(async move {
            let mut delay = RECONNECT_FIRST;
            let mut reconnecting = false;
            loop {
                let opened = tokio::select! {
                    _ = cancel.cancelled() => return,
                    r = s.auth.store.listen() => r,
                };
                match opened {
                    Ok(None) => {
                        s.notifications.set(NotifyState::NotUsed);
                        return;
                    }
                    Ok(Some(mut l)) => {
                        s.notifications.set(NotifyState::Connected);
                        delay = RECONNECT_FIRST;
                        if reconnecting {
                            tracing::info!("notification connection restored; catching up");
                            if let Err(e) = s.sync().await {
                                tracing::warn!(error = %e, "catching up after reconnect failed");
                            }
                        }
                        let lost = loop {
                            let r = tokio::select! {
                                _ = cancel.cancelled() => return,
                                r = l.recv() => r,
                            };
                            match r {
                                Ok(hint) => s.pending.hint(hint),
                                Err(ListenError::Lost(e)) => break e,
                            }
                        };
                        s.notifications.set(NotifyState::Disconnected);
                        tracing::warn!(
                            error = %lost,
                            "notification connection lost: changes made elsewhere arrive by \
                             the periodic poll until it is back"
                        );
                    }
                    Err(e) => {
                        s.notifications.set(NotifyState::Disconnected);
                        tracing::warn!(error = %e, "cannot open the notification connection");
                    }
                }
                reconnecting = true;
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(RECONNECT_MAX);
            }
        });
    }

    fn cursor(&self) -> std::sync::MutexGuard<'_, Cursor> {
        self.cursor.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Shared handles, created with the server.
pub(crate) fn new_cursor() -> Arc<std::sync::Mutex<Cursor>> {
    Arc::default()
}

pub(crate) fn new_pending() -> Arc<Pending> {
    Arc::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_poll_reads_again_from_a_point_overlap_back() {
        let t0 = Instant::now();
        let mut c = Cursor::default();
        assert_eq!(c.floor(t0), 0);
        c.saw(t0, 10);
        c.saw(t0 + Duration::from_secs(30), 20);
        assert_eq!(
            c.floor(t0 + Duration::from_secs(59)),
            0,
            "nothing is old enough"
        );
        assert_eq!(c.floor(t0 + Duration::from_secs(61)), 10);
        c.saw(t0 + Duration::from_secs(61), 15);
        assert_eq!(c.floor(t0 + Duration::from_secs(95)), 20);
        assert_eq!(c.marks.len(), 2, "old marks are dropped");
    }
}
