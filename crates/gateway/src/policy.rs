//! An upstream's whole scope policy: tools (enforced by the guard), and prompts and
//! resources (enforced here, before the upstream: `prompts/get` by prompt name,
//! `resources/read` by URI, in normal form: [`crate::uri`]). One table shape for all
//! three: exact names, `*`/`?`/`**` patterns in file order (`*` stays within a
//! `/`-separated segment), and a default. A prompt or resource the configuration does
//! not mention gets the tools' default unless its own default says otherwise: a new
//! upstream is closed where its operator said nothing.
//!
//! A refusal is the guard's: a policy that allows no call gets 403 with a JSON-RPC
//! error; a missing scope, 403 `insufficient_scope` naming it, so the client can step
//! up (MCP authorization, "Runtime Insufficient Scope Errors").

use mcpgate_core::ScopeSet;
use mcpgate_mcp::ToolScopePolicy;
use serde_json::{Map, Value};

/// The policy of one upstream, and which lists are narrowed to the caller.
#[derive(Debug, Clone, Default)]
pub struct GatewayPolicy {
    pub tools: ToolScopePolicy,
    pub prompts: ToolScopePolicy,
    pub resources: ToolScopePolicy,
    pub hide_tools: bool,
    pub hide_prompts: bool,
    pub hide_resources: bool,
}

/// Why a `prompts/get` or `resources/read` may not go through.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No scope allows it.
    Denied,
    /// These scopes are needed.
    NeedsScope(String),
    /// The resource URI has no normal form to decide on ([`crate::uri`]).
    NotNormal,
}

impl GatewayPolicy {
    /// Checks a `prompts/get` (`target`: the prompt's name) or `resources/read` (its
    /// URI); other methods pass. A request of those two without a target never gets
    /// here: the guard's envelope refuses it.
    pub fn check(
        &self,
        method: &str,
        target: Option<&str>,
        scopes: &ScopeSet,
    ) -> Result<(), Refusal> {
        let (table, target) = match (method, target) {
            ("prompts/get", Some(t)) => (&self.prompts, std::borrow::Cow::Borrowed(t)),
            ("resources/read", Some(t)) => (
                &self.resources,
                std::borrow::Cow::Owned(crate::uri::normalize(t).map_err(|_| Refusal::NotNormal)?),
            ),
            ("prompts/get" | "resources/read", None) => return Err(Refusal::Denied),
            _ => return Ok(()),
        };
        let d = table.decide(&target, None);
        if d.denied {
            return Err(Refusal::Denied);
        }
        if !scopes.is_superset(d.needs) {
            return Err(Refusal::NeedsScope(d.needs.to_string()));
        }
        Ok(())
    }

    /// Whether `method`'s answer is a list this policy narrows.
    pub fn narrows(&self, method: &str) -> bool {
        match method {
            "tools/list" => self.hide_tools,
            "prompts/list" => self.hide_prompts,
            "resources/list" => self.hide_resources,
            _ => false,
        }
    }

    /// Narrows a list result to what `scopes` may use; a result it narrows depends on
    /// the caller, so a 2026-07-28 `cacheScope` becomes `private`
    /// (`server/utilities/caching.mdx`, "Security Considerations").
    pub fn narrow(&self, method: &str, result: &mut Map<String, Value>, scopes: &ScopeSet) {
        if !self.narrows(method) {
            return;
        }
        let (key, field, table) = match method {
            "tools/list" => ("tools", "name", &self.tools),
            "prompts/list" => ("prompts", "name", &self.prompts),
            _ => ("resources", "uri", &self.resources),
        };
        let Some(items) = result.get_mut(key).and_then(Value::as_array_mut) else {
            return;
        };
        let resources = key == "resources";
        items.retain(|t| {
            let Some(n) = t.get(field).and_then(Value::as_str) else {
                return false;
            };
            match resources {
                true => crate::uri::normalize(n).is_ok_and(|n| table.may_call(&n, scopes)),
                false => table.may_call(n, scopes),
            }
        });
        if let Some(scope) = result.get_mut("cacheScope") {
            *scope = Value::from("private");
        }
    }

    /// Every scope any tool, prompt or resource can need: the resource's metadata.
    pub fn all_scopes(&self) -> ScopeSet {
        self.tools
            .all_scopes()
            .union(&self.prompts.all_scopes())
            .union(&self.resources.all_scopes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcpgate_mcp::ToolRule;
    use serde_json::json;

    fn policy() -> GatewayPolicy {
        let s = |x: &str| ToolRule::Fixed(ScopeSet::from_tokens([x]));
        GatewayPolicy {
            prompts: ToolScopePolicy::new()
                .tool("simple", s("p:simple"))
                .default_rule(ToolRule::Deny),
            resources: ToolScopePolicy::new().pattern("test://static/resource/*", s("r:static")),
            hide_prompts: true,
            hide_resources: true,
            ..Default::default()
        }
    }

    #[test]
    fn prompts_and_resources_need_their_scopes() {
        let p = policy();
        let none = ScopeSet::new();
        let has = ScopeSet::from_tokens(["p:simple", "r:static"]);
        let need = |s: &str| Err(Refusal::NeedsScope(s.into()));
        assert_eq!(
            p.check("prompts/get", Some("simple"), &none),
            need("p:simple")
        );
        assert_eq!(p.check("prompts/get", Some("simple"), &has), Ok(()));
        assert_eq!(
            p.check("prompts/get", Some("other"), &has),
            Err(Refusal::Denied)
        );
        let uri = Some("test://static/resource/1");
        assert_eq!(p.check("resources/read", uri, &none), need("r:static"));
        assert_eq!(p.check("resources/read", uri, &has), Ok(()));
        // Resources no rule names are open (this table has no default).
        assert_eq!(p.check("resources/read", Some("file:///x"), &none), Ok(()));
        // Another spelling of a resource is decided as that resource; a way out of
        // the directory a rule names is no resource at all.
        assert_eq!(
            p.check("resources/read", Some("TEST://static/resource/%31"), &none),
            need("r:static")
        );
        for escape in [
            "test://static/resource/../../secret",
            "test://static/resource/%2e%2e/x",
            "test://static/resource/..%2Fx",
        ] {
            assert_eq!(
                p.check("resources/read", Some(escape), &has),
                Err(Refusal::NotNormal),
                "{escape}"
            );
        }
        assert_eq!(p.check("resources/read", None, &has), Err(Refusal::Denied));
        assert_eq!(p.check("tools/call", Some("simple"), &none), Ok(()));
        assert_eq!(p.all_scopes().to_string(), "p:simple r:static");
    }

    #[test]
    fn lists_are_narrowed_when_asked() {
        let p = policy();
        let mut r =
            json!({"prompts": [{"name": "simple"}, {"name": "other"}], "cacheScope": "public"});
        p.narrow(
            "prompts/list",
            r.as_object_mut().unwrap(),
            &ScopeSet::from_tokens(["p:simple"]),
        );
        assert_eq!(r["prompts"], json!([{"name": "simple"}]));
        assert_eq!(r["cacheScope"], "private");
        let mut r =
            json!({"resources": [{"uri": "test://static/resource/1"}, {"uri": "file:///x"}]});
        p.narrow(
            "resources/list",
            r.as_object_mut().unwrap(),
            &ScopeSet::new(),
        );
        assert_eq!(r["resources"], json!([{"uri": "file:///x"}]));
        let mut r = json!({"tools": [{"name": "a"}]});
        p.narrow("tools/list", r.as_object_mut().unwrap(), &ScopeSet::new());
        assert_eq!(
            r["tools"],
            json!([{"name": "a"}]),
            "tools are not hidden unless asked"
        );
    }
}
