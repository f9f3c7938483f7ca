//! Per-tool scopes, declared next to the tools as data the guard can read before a
//! tool runs (MCP "Scope Selection Strategy", "Runtime Insufficient Scope Errors").

use std::collections::BTreeMap;

use mcpgate_core::ScopeSet;
use serde_json::{Map, Value};

/// How one tool decides which scopes a call needs.
#[derive(Debug, Clone)]
pub enum ToolRule {
    /// Every call needs these scopes.
    Fixed(ScopeSet),
    /// The scopes depend on the value of one string argument (the calculator's
    /// `operation`). A value not in the table needs no scope here: the tool itself
    /// rejects it as invalid input.
    ByArgument {
        argument: &'static str,
        scopes: BTreeMap<&'static str, ScopeSet>,
    },
}

/// The first `chars` characters of `s`.
pub(crate) fn truncate(s: &str, chars: usize) -> &str {
    if s.len() <= chars {
        return s; // no more characters than bytes
    }
    s.char_indices().nth(chars).map_or(s, |(i, _)| &s[..i])
}

/// What the policy says of one call.
#[derive(Debug, Clone, Copy)]
pub struct Decision<'p, 'a> {
    /// The scopes the call needs.
    pub needs: &'p ScopeSet,
    /// The value of the argument the rule keys on (at most 64 characters), if any.
    pub keyed_by: Option<&'a str>,
}

/// The scope policy of a tool set: which scopes each `tools/call` needs.
#[derive(Debug, Clone, Default)]
pub struct ToolScopePolicy {
    tools: BTreeMap<String, ToolRule>,
    /// What [`required`](Self::required) lends when a call needs nothing.
    none: ScopeSet,
}

impl ToolScopePolicy {
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares the rule for one tool.
    pub fn tool(mut self, name: impl Into<String>, rule: ToolRule) -> Self {
        self.tools.insert(name.into(), rule);
        self
    }

    /// The scopes a call of `tool` with `arguments` needs. Unknown tools need none here;
    /// the MCP server answers them with a protocol error.
    pub fn required(&self, tool: &str, arguments: Option<&Map<String, Value>>) -> &ScopeSet {
        self.decide(tool, arguments).needs
    }

    /// The value of the argument a tool's rule keys on, for audit records.
    /// At most 64 characters of it: callers choose it.
    pub fn keyed_argument<'a>(
        &self,
        tool: &str,
        arguments: Option<&'a Map<String, Value>>,
    ) -> Option<&'a str> {
        self.decide(tool, arguments).keyed_by
    }

    /// Both at once, for the guard: one lookup of the tool and of its argument.
    pub fn decide<'p, 'a>(
        &'p self,
        tool: &str,
        arguments: Option<&'a Map<String, Value>>,
    ) -> Decision<'p, 'a> {
        match self.tools.get(tool) {
            None => Decision {
                needs: &self.none,
                keyed_by: None,
            },
            Some(ToolRule::Fixed(s)) => Decision {
                needs: s,
                keyed_by: None,
            },
            Some(ToolRule::ByArgument { argument, scopes }) => {
                let value = arguments
                    .and_then(|a| a.get(*argument))
                    .and_then(Value::as_str);
                Decision {
                    needs: value.and_then(|v| scopes.get(v)).unwrap_or(&self.none),
                    keyed_by: value.map(|v| truncate(v, 64)),
                }
            }
        }
    }

    /// Every scope any tool can need: what the resource advertises in its metadata.
    pub fn all_scopes(&self) -> ScopeSet {
        self.tools
            .values()
            .fold(ScopeSet::new(), |acc, rule| match rule {
                ToolRule::Fixed(s) => acc.union(s),
                ToolRule::ByArgument { scopes, .. } => scopes.values().fold(acc, |a, s| a.union(s)),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy() -> ToolScopePolicy {
        ToolScopePolicy::new()
            .tool(
                "calc",
                ToolRule::ByArgument {
                    argument: "op",
                    scopes: [("add", ScopeSet::from_tokens(["op:add"]))].into(),
                },
            )
            .tool("admin", ToolRule::Fixed(ScopeSet::from_tokens(["admin"])))
    }

    #[test]
    fn by_argument_picks_the_scope_of_the_value() {
        let args = json!({"op": "add"});
        let p = policy();
        let need = p.required("calc", args.as_object());
        assert_eq!(need.to_string(), "op:add");
        assert!(
            policy()
                .required("calc", json!({"op": "zzz"}).as_object())
                .is_empty()
        );
        assert!(policy().required("calc", None).is_empty());
        let long = json!({"op": "é".repeat(100)});
        assert_eq!(
            p.keyed_argument("calc", long.as_object()),
            Some("é".repeat(64).as_str())
        );
    }

    #[test]
    fn fixed_and_all() {
        assert_eq!(policy().required("admin", None).to_string(), "admin");
        assert_eq!(policy().all_scopes().to_string(), "admin op:add");
    }
}
