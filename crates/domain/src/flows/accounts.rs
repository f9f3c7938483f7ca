//! Acts on accounts that must end access at once: disabling a person, changing a
//! password. Each is one function, called by the command line and by any page, so
//! every path ends the same things: the person's grants (and with them every refresh
//! family and the access tokens minted in it) and browser sessions. A password change
//! keeps only the session that made it, if any (OWASP Session Management: renew on
//! credential change). Removing a client is [`super::revoke::delete_client`].

use crate::Actor;
use crate::audit::Event;
use crate::flows::revoke;
use crate::{Authority, OAuthResult};

/// Why an account act did nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum AccountOutcome {
    Done,
    NoSuchUser,
}

/// Disables a person and ends everything they hold: grants, refresh families, the
/// access tokens of those families, and sessions.
pub async fn disable_user(
    s: &Authority,
    username: &str,
    by: &Actor,
) -> OAuthResult<AccountOutcome> {
    let Some(user) = s.store.user_by_name(username).await? else {
        return Ok(AccountOutcome::NoSuchUser);
    };
    s.store.set_user_disabled(username, true).await?;
    end_access(s, &user.id, None, by).await?;
    // Their own tokens for upstreams go with them (connected accounts).
    super::connections::disconnect_all(s, &user.id, by).await?;
    s.audit(Event::UserDisabled { by: by.clone() }, Some(&user.id), None)
        .await;
    Ok(AccountOutcome::Done)
}

/// Re-enables a person. Nothing they held comes back: they sign in and consent again.
pub async fn enable_user(s: &Authority, username: &str, by: &Actor) -> OAuthResult<AccountOutcome> {
    let Some(user) = s.store.user_by_name(username).await? else {
        return Ok(AccountOutcome::NoSuchUser);
    };
    s.store.set_user_disabled(username, false).await?;
    s.audit(Event::UserEnabled { by: by.clone() }, Some(&user.id), None)
        .await;
    Ok(AccountOutcome::Done)
}

/// Sets a new password hash and ends every grant and session of the person except
/// `keep_session` (the hash of the session that made the change).
pub async fn change_password(
    s: &Authority,
    username: &str,
    password_hash: &str,
    keep_session: Option<&str>,
    by: &Actor,
) -> OAuthResult<AccountOutcome> {
    let Some(user) = s.store.user_by_name(username).await? else {
        return Ok(AccountOutcome::NoSuchUser);
    };
    s.store.set_password(username, password_hash).await?;
    end_access(s, &user.id, keep_session, by).await?;
    s.audit(
        Event::PasswordChanged { by: by.clone() },
        Some(&user.id),
        None,
    )
    .await;
    Ok(AccountOutcome::Done)
}

async fn end_access(
    s: &Authority,
    user_id: &str,
    keep_session: Option<&str>,
    by: &Actor,
) -> OAuthResult<()> {
    s.store.delete_sessions_of(user_id, keep_session).await?;
    for grant in s.store.live_grants_of_user(user_id).await? {
        revoke::revoke_grant(s, &grant, by).await?;
    }
    Ok(())
}

/// True when the user exists and is enabled: codes and refresh tokens of anyone else
/// are refused at the token endpoint.
pub async fn user_active(s: &Authority, user_id: &str) -> OAuthResult<bool> {
    Ok(s.store.user(user_id).await?.is_some_and(|u| !u.disabled))
}
