//! Groups of people and the scopes restricted to them: one function per act, called by
//! the command line (`mcpgate group …`, `mcpgate scope add --group`), the admin pages
//! and, for a provider's groups claim, the sign-in through that provider. Every change
//! is audited with who made it; every change that can take a scope from someone
//! withdraws it at once ([`super::entitlements::withdraw`]).

use std::collections::BTreeSet;

use mcpgate_core::{OAuthError, ScopeSet};

use super::entitlements;
use crate::audit::Event;
use crate::model::{Group, Member, MemberSource};
use crate::store::{StoreError, StoreResult};
use crate::{Actor, Authority, OAuthResult};

/// Longest group name: room for a provider's group names (Entra's are display names,
/// spaces included), bounded.
pub const MAX_GROUP_NAME_LEN: usize = 128;
pub const MAX_GROUP_DESCRIPTION_LEN: usize = 300;

fn invalid(msg: impl Into<String>) -> OAuthError {
    OAuthError::invalid_request(msg.into())
}

/// Group names: 1-128 characters, no control characters, no leading or trailing space
/// (a provider's claim is compared exactly).
pub fn check_group_name(name: &str) -> Result<(), OAuthError> {
    if name.is_empty()
        || name.chars().count() > MAX_GROUP_NAME_LEN
        || name.chars().any(char::is_control)
        || name.trim() != name
    {
        return Err(invalid(format!(
            "a group name is 1-{MAX_GROUP_NAME_LEN} characters, without control characters or surrounding spaces"
        )));
    }
    Ok(())
}

/// Creates a group. With `provider`, the provider's groups claim sets its provider
/// memberships at each sign-in through it (the group must exist for that: a name in a
/// claim that no group has is ignored, never created).
pub async fn add_group(
    s: &Authority,
    name: &str,
    description: &str,
    provider: Option<&str>,
    by: &Actor,
) -> OAuthResult<Group> {
    check_group_name(name)?;
    let description = description.trim();
    if description.chars().count() > MAX_GROUP_DESCRIPTION_LEN
        || description.chars().any(char::is_control)
    {
        return Err(invalid(format!(
            "a description is at most {MAX_GROUP_DESCRIPTION_LEN} characters on one line"
        )));
    }
    if let Some(p) = provider
        && !s
            .store
            .identity_providers()
            .await?
            .iter()
            .any(|i| i.name == p)
    {
        return Err(invalid(format!(
            "no identity provider named {p} (see `mcpgate idp list`)"
        )));
    }
    let g = Group {
        name: name.to_owned(),
        description: description.to_owned(),
        provider: provider.map(str::to_owned),
        created_at: s.now(),
    };
    match s.store.insert_group(&g).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(invalid(format!("a group named {name} exists")));
        }
        Err(e) => return Err(e.into()),
    }
    s.audit(
        Event::GroupAdded {
            group: g.name.clone(),
            provider: g.provider.clone(),
            by: by.clone(),
        },
        None,
        None,
    )
    .await;
    Ok(g)
}

/// Removes a group, its memberships and the restrictions naming it, and withdraws
/// from its former members what they may no longer hold. Refused while a scope is
/// restricted to this group alone: removing it would open that scope to everyone.
pub async fn remove_group(s: &Authority, name: &str, by: &Actor) -> OAuthResult<bool> {
    let restrictions = entitlements::Restrictions::load(s).await?;
    let only: Vec<&str> = restrictions
        .iter()
        .filter(|(_, groups)| groups.len() == 1 && groups.contains(name))
        .map(|(scope, _)| scope)
        .collect();
    if !only.is_empty() {
        let (is, it) = if only.len() == 1 {
            ("is", "it")
        } else {
            ("are", "them")
        };
        return Err(invalid(format!(
            "{} {is} restricted to {name} alone: first restrict {it} to another group, or open {it} with `mcpgate scope add SCOPE --open`",
            only.join(", ")
        )));
    }
    let Some(members) = s.store.delete_group(name).await? else {
        return Ok(false);
    };
    s.audit(
        Event::GroupRemoved {
            group: name.to_owned(),
            by: by.clone(),
        },
        None,
        None,
    )
    .await;
    for m in members {
        entitlements::withdraw(s, &m).await?;
    }
    Ok(true)
}

/// The person (by user name) and the group, both existing.
async fn resolve(s: &Authority, group: &str, username: &str) -> OAuthResult<String> {
    if s.store.group(group).await?.is_none() {
        return Err(invalid(format!("no group named {group}")));
    }
    match s.store.user_by_name(username).await? {
        Some(u) => Ok(u.id),
        None => Err(invalid(format!("no user named {username}"))),
    }
}

/// Adds a person to a group by hand. False when they were a member by hand already.
pub async fn add_member(
    s: &Authority,
    group: &str,
    username: &str,
    by: &Actor,
) -> OAuthResult<bool> {
    let user_id = resolve(s, group, username).await?;
    let added = s
        .store
        .add_member(group, &user_id, MemberSource::Manual, s.now())
        .await?;
    if added {
        audit_membership(s, group, &user_id, MemberSource::Manual, true, by).await;
    }
    Ok(added)
}

/// Removes a membership added by hand, and withdraws at once what the person may no
/// longer hold. A membership the provider's claim set stays (it ends at the person's
/// next sign-in without the group, or when the group is removed). False when there
/// was no such membership.
pub async fn remove_member(
    s: &Authority,
    group: &str,
    username: &str,
    by: &Actor,
) -> OAuthResult<bool> {
    let user_id = resolve(s, group, username).await?;
    let removed = s
        .store
        .remove_member(group, &user_id, MemberSource::Manual)
        .await?;
    if removed {
        audit_membership(s, group, &user_id, MemberSource::Manual, false, by).await;
        entitlements::withdraw(s, &user_id).await?;
    }
    Ok(removed)
}

async fn audit_membership(
    s: &Authority,
    group: &str,
    user_id: &str,
    source: MemberSource,
    added: bool,
    by: &Actor,
) {
    let (group, by) = (group.to_owned(), by.clone());
    let event = if added {
        Event::MemberAdded { group, source, by }
    } else {
        Event::MemberRemoved { group, source, by }
    };
    s.audit(event, Some(user_id), None).await;
}

/// Restricts `scope` to the members of `groups` (each must exist), or, with none,
/// opens it to every signed-in person. Whoever may no longer hold it loses it at once.
pub async fn set_scope_groups(
    s: &Authority,
    scope: &str,
    groups: &[String],
    by: &Actor,
) -> OAuthResult<()> {
    let known: BTreeSet<String> = s
        .store
        .scopes()
        .await?
        .into_iter()
        .map(|(n, _)| n)
        .chain(s.cfg.default_scopes.iter().map(str::to_owned))
        .collect();
    if !known.contains(scope) {
        return Err(invalid(format!(
            "no scope named {scope} (add it with `mcpgate scope add {scope} --description …`)"
        )));
    }
    let wanted: BTreeSet<String> = groups.iter().cloned().collect();
    for g in &wanted {
        if s.store.group(g).await?.is_none() {
            return Err(invalid(format!(
                "no group named {g} (create it with `mcpgate group add`)"
            )));
        }
    }
    let current: BTreeSet<String> = s
        .store
        .scope_groups()
        .await?
        .into_iter()
        .filter(|(sc, _)| sc == scope)
        .map(|(_, g)| g)
        .collect();
    if current == wanted {
        return Ok(());
    }
    let list: Vec<String> = wanted.into_iter().collect();
    s.store.set_scope_groups(scope, &list).await?;
    s.audit(
        Event::ScopeGroupsSet {
            scope: scope.to_owned(),
            groups: list,
            by: by.clone(),
        },
        None,
        None,
    )
    .await;
    entitlements::withdraw_from_all(s).await?;
    Ok(())
}

/// A group with its members, as listed.
#[derive(Debug, Clone)]
pub struct GroupListing {
    pub group: Group,
    pub members: Vec<Member>,
    /// The scopes restricted to this group (among others, maybe).
    pub scopes: ScopeSet,
}

/// Every group, its members and the scopes restricted to it.
pub async fn list(s: &Authority) -> StoreResult<Vec<GroupListing>> {
    let restrictions = s.store.scope_groups().await?;
    let mut out = Vec::new();
    for group in s.store.groups().await? {
        let members = s.store.members(&group.name).await?;
        let scopes = ScopeSet::from_tokens(
            restrictions
                .iter()
                .filter(|(_, g)| *g == group.name)
                .map(|(sc, _)| sc.as_str()),
        );
        out.push(GroupListing {
            group,
            members,
            scopes,
        });
    }
    Ok(out)
}

/// At a sign-in through `provider`, the person's provider memberships become exactly
/// the groups linked to that provider whose names the claim lists (compared exactly).
/// Names no such group has are ignored; memberships added by hand are not touched.
/// What the person loses is withdrawn at once.
pub async fn sync_from_provider(
    s: &Authority,
    provider: &str,
    user_id: &str,
    claimed: &[String],
) -> StoreResult<()> {
    let claimed: BTreeSet<&str> = claimed.iter().map(String::as_str).collect();
    let by = Actor::Provider(provider.to_owned());
    let mut lost = false;
    for g in s.store.groups().await? {
        if g.provider.as_deref() != Some(provider) {
            continue;
        }
        if claimed.contains(g.name.as_str()) {
            if s.store
                .add_member(&g.name, user_id, MemberSource::Provider, s.now())
                .await?
            {
                audit_membership(s, &g.name, user_id, MemberSource::Provider, true, &by).await;
            }
        } else if s
            .store
            .remove_member(&g.name, user_id, MemberSource::Provider)
            .await?
        {
            audit_membership(s, &g.name, user_id, MemberSource::Provider, false, &by).await;
            lost = true;
        }
    }
    if lost {
        entitlements::withdraw(s, user_id).await?;
    }
    Ok(())
}
