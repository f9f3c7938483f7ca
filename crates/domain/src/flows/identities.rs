//! People who sign in through an identity provider: a new account for someone the
//! provider vouched for, a link to an existing account by verified email (never an
//! administrator's), or a link an operator makes by hand. Each is one act, audited,
//! whatever the provider.

use crate::Actor;
use crate::audit::Event;
use crate::flows::admin::check_username;
use crate::model::{IdentityProviderRow, TrustedIssuer};
use crate::model::{User, UserIdentity};
use crate::store::StoreError;
use crate::{Authority, ErrorCode, OAuthError, OAuthResult};

/// Who the provider says signed in.
#[derive(Debug, Clone, Copy)]
pub struct ProviderIdentity<'a> {
    pub provider: &'a str,
    pub subject: &'a str,
    /// The provider's email for the person, verified or not.
    pub email: Option<&'a str>,
}

impl ProviderIdentity<'_> {
    fn linked_to(&self, user_id: &str, now: i64) -> UserIdentity {
        UserIdentity {
            provider: self.provider.to_owned(),
            subject: self.subject.to_owned(),
            user_id: user_id.to_owned(),
            email: self.email.map(str::to_owned),
            created_at: now,
            last_login_at: Some(now),
        }
    }
}

/// Creates the account of a person admitted through an identity provider, linked to
/// their identity there in the same step (no account without its link): no password
/// (it signs in only through its providers), `email` the provider's verified one, and
/// the first free name of `username`, `username-2`, … `username-20`.
pub async fn provision(
    s: &Authority,
    id: ProviderIdentity<'_>,
    username: &str,
    email: &str,
) -> OAuthResult<User> {
    for n in 1..=20 {
        let name = match n {
            1 => username.to_owned(),
            n => format!("{username}-{n}"),
        };
        check_username(&name)?;
        let now = s.now();
        let u = User {
            id: mcpgate_core::secret::random_id(),
            username: name,
            email: Some(email.to_owned()),
            // Not a PHC string: no password verifies against it.
            password_hash: "!".into(),
            is_admin: false,
            disabled: false,
            created_at: now,
        };
        match s
            .store
            .create_user_with_identity(&u, &id.linked_to(&u.id, now))
            .await
        {
            Ok(()) => {
                s.audit(
                    Event::UserCreated {
                        username: u.username.clone(),
                        admin: None,
                        by: None,
                        provider: Some(id.provider.to_owned()),
                        subject: Some(id.subject.to_owned()),
                        email: Some(email.to_owned()),
                    },
                    Some(&u.id),
                    None,
                )
                .await;
                return Ok(u);
            }
            // A name taken: the next one. (An identity linked meanwhile by a racing
            // sign-in also conflicts, and ends in the error below.)
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(OAuthError::invalid_request(format!(
        "no free user name near {username}"
    )))
}

/// Links a provider's identity to the existing account whose email the provider
/// verified (the caller has checked that the provider is trusted for the email's
/// domain). Never an administrator's account: whoever controls an address at a
/// provider would otherwise gain the administrator's powers by signing in there, so
/// that link is an operator's act ([`link_by_operator`]).
pub async fn link_by_email(
    s: &Authority,
    id: ProviderIdentity<'_>,
    user: &User,
) -> OAuthResult<()> {
    if user.is_admin {
        return Err(OAuthError::new(
            ErrorCode::AccessDenied,
            "an administrator's account is linked to a provider by an operator only",
        ));
    }
    s.store
        .link_identity(&id.linked_to(&user.id, s.now()))
        .await?;
    audit_link(s, id, user, "verified email").await;
    Ok(())
}

/// Links a provider's identity to an account an operator names (`mcpgate idp link`),
/// whoever the account is. `Conflict` when the identity is linked already.
pub async fn link_by_operator(
    s: &Authority,
    id: ProviderIdentity<'_>,
    user: &User,
) -> OAuthResult<LinkOutcome> {
    match s
        .store
        .link_identity(&id.linked_to(&user.id, s.now()))
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Ok(LinkOutcome::AlreadyLinked),
        Err(e) => return Err(e.into()),
    }
    audit_link(s, id, user, "operator").await;
    Ok(LinkOutcome::Linked)
}

/// What [`link_by_operator`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkOutcome {
    Linked,
    /// The identity is linked to an account already (this one or another).
    AlreadyLinked,
}

async fn audit_link(s: &Authority, id: ProviderIdentity<'_>, user: &User, by: &'static str) {
    s.audit(
        Event::IdpIdentityLinked {
            provider: id.provider.to_owned(),
            subject: id.subject.to_owned(),
            email: id.email.map(str::to_owned),
            by,
        },
        Some(&user.id),
        None,
    )
    .await;
}

/// Adds (or replaces) an identity provider people may sign in with, audited without
/// its secret. The settings were checked where they were parsed.
pub async fn add_provider(s: &Authority, p: &IdentityProviderRow, by: &Actor) -> OAuthResult<()> {
    s.store.upsert_identity_provider(p).await?;
    s.audit(
        Event::IdpAdded {
            provider: p.name.clone(),
            kind: p.kind.clone(),
            issuer: p.issuer.clone(),
            by: by.clone(),
        },
        None,
        None,
    )
    .await;
    Ok(())
}

/// Removes an identity provider; false when there was none. The accounts linked
/// through it stay (they can sign in with a password, or through it once added back).
pub async fn remove_provider(s: &Authority, name: &str, by: &Actor) -> OAuthResult<bool> {
    if !s.store.delete_identity_provider(name).await? {
        return Ok(false);
    }
    s.audit(
        Event::IdpRemoved {
            provider: name.to_owned(),
            by: by.clone(),
        },
        None,
        None,
    )
    .await;
    Ok(true)
}

/// Trusts an identity provider to issue ID-JAGs (enterprise-managed authorization):
/// its `issuer` (`https`, or `http` on loopback) and the JWK Set its keys are at. A
/// provider of the same name is replaced. Audited.
pub async fn trust_issuer(s: &Authority, t: &TrustedIssuer, by: &Actor) -> OAuthResult<()> {
    let name_ok = !t.name.is_empty()
        && t.name.len() <= 32
        && t.name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !name_ok {
        return Err(OAuthError::invalid_request(
            "a provider name is 1-32 characters of a-z, 0-9 and -",
        ));
    }
    for (what, u) in [("issuer", &t.issuer), ("jwks_uri", &t.jwks_uri)] {
        let ok = url::Url::parse(u).is_ok_and(|u| {
            u.scheme() == "https"
                || (u.scheme() == "http"
                    && u.host_str()
                        .is_some_and(|h| h == "localhost" || h == "127.0.0.1" || h == "[::1]"))
        });
        if !ok || u.len() > 2048 {
            return Err(OAuthError::invalid_request(format!(
                "{what} must be an https URL (http only on loopback)"
            )));
        }
    }
    if t.exchange_audiences.is_empty() != t.exchange_clients.is_empty() {
        return Err(OAuthError::invalid_request(
            "--exchange-audience and --exchange-client go together: which tokens, and who may exchange them",
        ));
    }
    if t.exchange_audiences.len() > 16
        || t.exchange_clients.len() > 16
        || t.exchange_audiences
            .iter()
            .any(|a| a.len() > 2048 || url::Url::parse(a).is_err())
    {
        return Err(OAuthError::invalid_request(
            "an exchange audience is a resource URL (at most 16)",
        ));
    }
    if t.auto_create && t.allowed_domains.is_empty() {
        return Err(OAuthError::invalid_request(
            "--auto-create needs at least one --allowed-domain",
        ));
    }
    s.store.upsert_trusted_issuer(t).await?;
    s.audit(
        Event::IssuerTrusted {
            provider: t.name.clone(),
            issuer: t.issuer.clone(),
            by: by.clone(),
        },
        None,
        None,
    )
    .await;
    Ok(())
}

/// Stops trusting a provider's ID-JAGs. False when there was none of that name. The
/// tokens already issued live out their (short) lives; its people's grants stay, as
/// consents do.
pub async fn distrust_issuer(s: &Authority, name: &str, by: &Actor) -> OAuthResult<bool> {
    let removed = s.store.delete_trusted_issuer(name).await?;
    if removed {
        s.audit(
            Event::IssuerDistrusted {
                provider: name.to_owned(),
                by: by.clone(),
            },
            None,
            None,
        )
        .await;
    }
    Ok(removed)
}
