//! Scope hierarchies the operator declares: a broader scope includes narrower ones
//! (`files:admin` includes `files:write`, which includes `files:read`). MCP 2026-07-28
//! asks a server to account for them ("Runtime Insufficient Scope Errors").
//!
//! They are accounted for once, where scopes become a person's or a machine's:
//! [`crate::flows::entitlements::entitled`] closes what was asked under the hierarchy
//! before it splits by groups, so the consent page, the code, every token's `scope`,
//! refresh and introspection carry the narrower scopes explicitly; machine clients and
//! ID-JAG assertions close what they are allowed or assert the same way. A resource
//! server's per-tool check (the calculator's, the gateway's policy, a separate
//! server's guard) then needs no knowledge of the hierarchy, and a `403` step-up that
//! names the narrower scope is satisfied by a consent to the broader one. A narrower
//! scope restricted to groups stays theirs: the broader scope does not carry it to a
//! person outside them.

use std::collections::{BTreeMap, BTreeSet};

use mcpgate_core::{ErrorCode, OAuthError, ScopeSet};

use crate::audit::Event;
use crate::flows::authorize::known_scopes;
use crate::store::StoreResult;
use crate::{Actor, Authority, OAuthResult};

/// Most narrower scopes one scope may include.
pub const MAX_INCLUDES: usize = 32;

/// scope → the narrower scopes it includes directly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hierarchy(BTreeMap<String, BTreeSet<String>>);

impl Hierarchy {
    pub async fn load(s: &Authority) -> StoreResult<Self> {
        Ok(Self::from_pairs(s.store.scope_includes().await?))
    }

    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (scope, narrower) in pairs {
            map.entry(scope).or_default().insert(narrower);
        }
        Hierarchy(map)
    }

    /// What `scope` includes directly.
    pub fn includes(&self, scope: &str) -> Option<&BTreeSet<String>> {
        self.0.get(scope)
    }

    /// `scopes` with every scope they include, transitively. Idempotent.
    pub fn close(&self, scopes: &ScopeSet) -> ScopeSet {
        if self.0.is_empty() || scopes.iter().all(|sc| !self.0.contains_key(sc)) {
            return scopes.clone();
        }
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut todo: Vec<&str> = scopes.iter().collect();
        while let Some(sc) = todo.pop() {
            if seen.insert(sc)
                && let Some(narrower) = self.0.get(sc)
            {
                todo.extend(narrower.iter().map(String::as_str));
            }
        }
        ScopeSet::from_tokens(seen)
    }

    /// True when `scope` includes `other`, directly or through others.
    fn reaches(&self, scope: &str, other: &str) -> bool {
        self.close(&ScopeSet::from_tokens([scope])).contains(other)
    }
}

fn invalid(msg: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidRequest, msg.into())
}

/// Declares the narrower scopes `scope` includes (replacing what it included; none:
/// it includes nothing). Each must be a known scope other than `scope`, and none may
/// include `scope` back (a cycle would make two scopes one). It applies where scopes
/// are given: new consents, and each grant's next code exchange or refresh.
pub async fn set_includes(
    s: &Authority,
    scope: &str,
    includes: &[String],
    by: &Actor,
) -> OAuthResult<()> {
    let known = known_scopes(s).await?;
    if !known.contains(scope) {
        return Err(invalid(format!(
            "no scope named {scope} (add it with `mcpgate scope add {scope} --description …`)"
        )));
    }
    let wanted: BTreeSet<String> = includes.iter().cloned().collect();
    if wanted.len() > MAX_INCLUDES {
        return Err(invalid(format!(
            "a scope includes at most {MAX_INCLUDES} others"
        )));
    }
    let current = Hierarchy::load(s).await?;
    for narrower in &wanted {
        if !known.contains(narrower) {
            return Err(invalid(format!("no scope named {narrower}")));
        }
        if narrower == scope || current.reaches(narrower, scope) {
            return Err(invalid(format!(
                "{narrower} includes {scope} already: a scope cannot include one that includes it"
            )));
        }
    }
    if current.includes(scope).cloned().unwrap_or_default() == wanted {
        return Ok(());
    }
    let list: Vec<String> = wanted.into_iter().collect();
    s.store.set_scope_includes(scope, &list).await?;
    s.audit(
        Event::ScopeIncludesSet {
            scope: scope.to_owned(),
            includes: list,
            by: by.clone(),
        },
        None,
        None,
    )
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Hierarchy {
        Hierarchy::from_pairs(pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())))
    }

    fn set(s: &str) -> ScopeSet {
        ScopeSet::parse(s).unwrap()
    }

    #[test]
    fn a_broader_scope_brings_every_narrower_one_transitively() {
        let h = h(&[
            ("files:admin", "files:write"),
            ("files:write", "files:read"),
            ("op:all", "op:add"),
            ("op:all", "op:div"),
        ]);
        assert_eq!(
            h.close(&set("files:admin")),
            set("files:admin files:write files:read")
        );
        assert_eq!(h.close(&set("files:write")), set("files:write files:read"));
        assert_eq!(h.close(&set("files:read op:add")), set("files:read op:add"));
        assert_eq!(h.close(&set("op:all")), set("op:all op:add op:div"));
        let closed = h.close(&set("files:admin op:all"));
        assert_eq!(h.close(&closed), closed, "idempotent");
        assert!(h.reaches("files:admin", "files:read"));
        assert!(!h.reaches("files:read", "files:admin"));
    }
}
