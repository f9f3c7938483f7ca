//! Signing in, and the browser sessions that follow.
//!
//! A password sign-in is one flow: the attempt is reserved (counted as a failure)
//! atomically before the password is checked, so concurrent guesses cannot all pass a
//! check made before any of them failed; failures past [`FREE_FAILURES`] lock the
//! account name for a doubling time, at most [`MAX_LOCK_SECS`]; an unknown name and a
//! wrong password get the same answer and take the same time (a dummy hash is checked
//! for an unknown name); a disabled account does not enter; each failure is audited.
//! Per-source limits and the bound on hashes computed at once are the HTTP edge's
//! (they are about addresses and this process).
//!
//! Whichever way a person proved who they are (a password, an identity provider), a
//! session is opened by [`open_session`], which records how.

use mcpgate_core::secret::Secret;

use crate::audit::Event;
use crate::model::{Reservation, User};
use crate::{Authority, OAuthError};

/// Failures allowed before each further attempt must wait.
pub const FREE_FAILURES: i64 = 5;
/// Longest wait, in seconds.
pub const MAX_LOCK_SECS: i64 = 900;
/// Longest user name read from a sign-in form.
pub const MAX_USERNAME_LEN: usize = 128;

/// The lock after the n-th counted failure: doubling from 2 s, at most 15 minutes.
pub fn lock_after(n: i64) -> i64 {
    if n > FREE_FAILURES {
        (1i64 << (n - FREE_FAILURES).min(10)).min(MAX_LOCK_SECS)
    } else {
        0
    }
}

/// Why a password sign-in let nobody in.
#[derive(Debug)]
pub enum SignInRefusal {
    /// No such account, a wrong password, or a disabled account: one answer for all.
    Invalid,
    /// Too many failures for this account name; try again after this many seconds.
    Locked { retry_after: i64 },
    /// The store failed: say so, never "wrong password" (the password may be right).
    Unavailable(OAuthError),
}

/// Counts a password sign-in in `mcpgate_sign_ins_total` (`ok`, `failed`,
/// `throttled`).
pub fn count_sign_in(outcome: &'static str) {
    metrics::counter!("mcpgate_sign_ins_total", "outcome" => outcome).increment(1);
}

/// Signs in with a user name and password: the account, or why not.
pub async fn with_password(
    s: &Authority,
    username: &str,
    password: &str,
) -> Result<User, SignInRefusal> {
    let username = username.trim();
    if username.is_empty()
        || username.len() > MAX_USERNAME_LEN
        || password.len() > crate::flows::admin::MAX_PASSWORD_LEN
    {
        count_sign_in("failed");
        return Err(SignInRefusal::Invalid);
    }
    let unavailable = |e: crate::StoreError| SignInRefusal::Unavailable(e.into());
    let key = username.to_lowercase();
    let now = s.now();
    match s
        .store
        .reserve_login_attempt(&key, now, FREE_FAILURES, lock_after)
        .await
        .map_err(unavailable)?
    {
        Reservation::Granted => {}
        Reservation::LockedUntil(until) => {
            count_sign_in("throttled");
            return Err(SignInRefusal::Locked {
                retry_after: until - now,
            });
        }
    }
    let user = s.store.user_by_name(username).await.map_err(unavailable)?;
    let ok = s
        .passwords
        .verify(
            password.to_owned(),
            user.as_ref().map(|u| u.password_hash.clone()),
        )
        .await;
    match user.filter(|u| ok && !u.disabled) {
        Some(u) => {
            // Best effort: a failure leaves the count, which a later success clears.
            let _ = s.store.clear_login_throttle(&key).await;
            count_sign_in("ok");
            Ok(u)
        }
        None => {
            count_sign_in("failed");
            // The reservation already counted this failure.
            s.audit(
                Event::LoginFailed {
                    username: username.chars().take(64).collect(),
                },
                None,
                None,
            )
            .await;
            Err(SignInRefusal::Invalid)
        }
    }
}

/// Opens a browser session for `user_id`, valid `ttl_secs`, and audits the sign-in as
/// `how` (a `LoginSucceeded` event naming the provider, if any). The session's secret,
/// for the cookie; the store keeps its hash only.
pub async fn open_session(
    s: &Authority,
    user_id: &str,
    ttl_secs: i64,
    how: Event,
) -> Result<Secret, OAuthError> {
    let now = s.now();
    let sid = Secret::generate();
    s.store
        .insert_session(&sid.hash(), user_id, now, now + ttl_secs)
        .await?;
    s.audit(how, Some(user_id), None).await;
    Ok(sid)
}

/// Ends the browser session whose secret is `session` (signing out).
pub async fn end_session(s: &Authority, session: &str) -> Result<(), OAuthError> {
    Ok(s.store
        .delete_session(&mcpgate_core::secret::hash_token(session))
        .await?)
}

/// The signed-in person of the browser session `session`, if it is live and theirs
/// is enabled.
pub async fn session_user(s: &Authority, session: &str) -> Result<Option<User>, OAuthError> {
    Ok(s.store
        .session_user(&mcpgate_core::secret::hash_token(session), s.now())
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_double_from_two_seconds_to_fifteen_minutes() {
        assert_eq!(lock_after(FREE_FAILURES), 0);
        assert_eq!(lock_after(FREE_FAILURES + 1), 2);
        assert_eq!(lock_after(FREE_FAILURES + 2), 4);
        assert_eq!(lock_after(FREE_FAILURES + 20), MAX_LOCK_SECS);
    }
}
