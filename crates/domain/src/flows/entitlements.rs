//! Who may hold which scope. Consent says what a person lets an app do; this says what
//! the organisation lets the person do. A scope restricted to groups may be held only
//! by their members; a scope with no groups is open to every signed-in person.
//!
//! [`entitled`] is the one decision, called wherever a scope can reach a person: the
//! consent page's offer and the approval, the code exchange, the refresh, and an
//! ID-JAG; it first adds what the scopes asked for include ([`Hierarchy`]).
//! [`holdable`] is the same split without the hierarchy, for what a grant or token
//! already carries (introspection, withdrawal). Tokens therefore carry only scopes their person may hold, so a
//! resource server's per-tool scope check (the calculator's, the gateway's policy)
//! applies the same rule without knowing groups.
//!
//! When a person may hold less than before (they left a group, a scope was restricted,
//! a group was removed), [`withdraw`] takes it back at once: each grant narrows, each of
//! its token families is replaced by a narrowed one that inherits its unspent refresh
//! token, and the old family's revocation handle ends every access token that carried
//! the lost scopes, on every instance within the revocation push. The client keeps
//! working for what remains; its next refresh returns the narrowed scope.

use std::collections::{BTreeMap, BTreeSet};

use mcpgate_core::ScopeSet;
use mcpgate_core::secret::random_id;

use crate::Authority;
use crate::audit::Event;
use crate::flows::hierarchy::Hierarchy;
use crate::model::TokenFamily;
use crate::store::StoreResult;

/// The restrictions in force: scope → the groups whose members may hold it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restrictions(BTreeMap<String, BTreeSet<String>>);

impl Restrictions {
    pub async fn load(s: &Authority) -> StoreResult<Self> {
        let mut by_scope: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (scope, group) in s.store.scope_groups().await? {
            by_scope.entry(scope).or_default().insert(group);
        }
        Ok(Restrictions(by_scope))
    }

    /// The groups `scope` is restricted to; `None`: open to everyone.
    pub fn groups_of(&self, scope: &str) -> Option<&BTreeSet<String>> {
        self.0.get(scope)
    }

    /// Each restricted scope with its groups.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &BTreeSet<String>)> {
        self.0.iter().map(|(sc, g)| (sc.as_str(), g))
    }

    /// True when none of `scopes` is restricted (no need to know the person's groups).
    pub fn none_restricted(&self, scopes: &ScopeSet) -> bool {
        scopes.iter().all(|sc| !self.0.contains_key(sc))
    }

    /// Splits `asked` into what a member of `groups` may hold and what not.
    pub fn split(&self, groups: &BTreeSet<String>, asked: &ScopeSet) -> Entitled {
        let (held, withheld): (Vec<&str>, Vec<&str>) =
            asked.iter().partition(|sc| match self.0.get(*sc) {
                None => true,
                Some(allowed) => !allowed.is_disjoint(groups),
            });
        Entitled {
            held: ScopeSet::from_tokens(held),
            withheld: ScopeSet::from_tokens(withheld),
        }
    }
}

/// What a person may hold of the scopes asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entitled {
    pub held: ScopeSet,
    /// Asked for, but restricted to groups the person is not in.
    pub withheld: ScopeSet,
}

/// Of `asked` and every scope it includes ([`Hierarchy::close`]), what the person
/// `user_id` may hold now: what a consent, a code, a refresh or an assertion gives.
pub async fn entitled(s: &Authority, user_id: &str, asked: &ScopeSet) -> StoreResult<Entitled> {
    let closed = Hierarchy::load(s).await?.close(asked);
    holdable(s, user_id, &closed).await
}

/// Of `scopes` as they are (no hierarchy applied), what the person `user_id` may hold
/// now: whether what a grant or token already carries still stands. One store read
/// when nothing is restricted (every deployment without groups), two otherwise.
pub async fn holdable(s: &Authority, user_id: &str, asked: &ScopeSet) -> StoreResult<Entitled> {
    let restrictions = Restrictions::load(s).await?;
    if restrictions.none_restricted(asked) {
        return Ok(Entitled {
            held: asked.clone(),
            withheld: ScopeSet::new(),
        });
    }
    let groups: BTreeSet<String> = s.store.groups_of(user_id).await?.into_iter().collect();
    Ok(restrictions.split(&groups, asked))
}

/// Takes back from `user_id` every scope their live grants hold that they may no
/// longer hold; returns the scopes withdrawn. Idempotent: a second call finds nothing.
pub async fn withdraw(s: &Authority, user_id: &str) -> StoreResult<ScopeSet> {
    let mut lost = ScopeSet::new();
    for id in s.store.live_grants_of_user(user_id).await? {
        let Some(grant) = s.store.grant(&id).await? else {
            continue;
        };
        let e = holdable(s, user_id, &grant.scope).await?;
        // Families are checked even when the grant looks whole: a family may carry a
        // scope a narrowing of the grant did not reach (a code exchanged meanwhile).
        let families = s.store.live_families_of_grant(&grant.id).await?;
        let now = s.now();
        let mut replaced = Vec::new();
        let mut family_lost = ScopeSet::new();
        for f in families {
            let fe = holdable(s, user_id, &f.scope).await?;
            if fe.withheld.is_empty() {
                continue;
            }
            family_lost = family_lost.union(&fe.withheld);
            let narrowed = TokenFamily {
                id: random_id(),
                scope: fe.held,
                created_at: now,
                revoked_at: None,
                revoked_reason: None,
                ..f.clone()
            };
            replaced.push((f.id, narrowed));
        }
        if e.withheld.is_empty() && replaced.is_empty() {
            continue;
        }
        s.store
            .narrow_grant(
                &grant.id,
                &e.held,
                &grant.withheld.union(&e.withheld),
                &replaced,
                now,
            )
            .await?;
        let handles: Vec<String> = replaced.into_iter().map(|(old, _)| old).collect();
        s.revoke_handles(&handles).await?;
        let withdrawn = e.withheld.union(&family_lost);
        s.audit(
            Event::ScopesWithdrawn {
                grant: grant.id.clone(),
                scope: withdrawn.clone(),
            },
            Some(user_id),
            Some(&grant.client_id),
        )
        .await;
        lost = lost.union(&withdrawn);
    }
    Ok(lost)
}

/// [`withdraw`] for everyone holding a grant: after a scope was restricted.
pub async fn withdraw_from_all(s: &Authority) -> StoreResult<()> {
    for user in s.store.users_with_live_grants().await? {
        withdraw(s, &user).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &str) -> ScopeSet {
        ScopeSet::parse(s).unwrap()
    }

    fn groups(g: &[&str]) -> BTreeSet<String> {
        g.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_restricted_scope_is_held_by_members_of_any_of_its_groups_only() {
        let mut r = Restrictions::default();
        r.0.insert("op:div".into(), groups(&["finance", "math"]));
        let asked = set("op:add op:div");
        for (member_of, held, withheld) in [
            (&[][..], "op:add", "op:div"),
            (&["sales"][..], "op:add", "op:div"),
            (&["finance"][..], "op:add op:div", ""),
            (&["math", "sales"][..], "op:add op:div", ""),
        ] {
            let e = r.split(&groups(member_of), &asked);
            assert_eq!(e.held, set(held), "{member_of:?}");
            assert_eq!(
                e.withheld,
                ScopeSet::from_tokens(withheld.split_whitespace())
            );
        }
        assert!(r.none_restricted(&set("op:add op:mul")));
        assert!(!r.none_restricted(&set("op:div")));
    }
}
