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
    /// No call is allowed, whatever the token's scopes (a gateway's default for tools
    /// its configuration does not name: secure by default).
    Deny,
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
    /// The policy forbids the call outright: no scope would allow it.
    pub denied: bool,
}

/// The scope policy of a tool set: which scopes each `tools/call` needs.
#[derive(Debug, Clone, Default)]
pub struct ToolScopePolicy {
    tools: BTreeMap<String, ToolRule>,
    /// Glob patterns (`*` any run of characters, `?` one), tried in declaration order
    /// after the exact names.
    patterns: Vec<(String, ToolRule)>,
    /// The rule for tools no name or pattern matches; `None` needs nothing.
    default: Option<ToolRule>,
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

    /// Declares the rule for every tool whose name matches `pattern` (`*`, `?`).
    pub fn pattern(mut self, pattern: impl Into<String>, rule: ToolRule) -> Self {
        self.patterns.push((pattern.into(), rule));
        self
    }

    /// The rule for tools no name or pattern matches.
    pub fn default_rule(mut self, rule: ToolRule) -> Self {
        self.default = Some(rule);
        self
    }

    /// The rule that applies to `tool`, if any.
    fn rule(&self, tool: &str) -> Option<&ToolRule> {
        self.tools
            .get(tool)
            .or_else(|| {
                self.patterns
                    .iter()
                    .find(|(p, _)| glob_matches(p.as_bytes(), tool.as_bytes()))
                    .map(|(_, r)| r)
            })
            .or(self.default.as_ref())
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
        match self.rule(tool) {
            None => Decision {
                needs: &self.none,
                keyed_by: None,
                denied: false,
            },
            Some(ToolRule::Deny) => Decision {
                needs: &self.none,
                keyed_by: None,
                denied: true,
            },
            Some(ToolRule::Fixed(s)) => Decision {
                needs: s,
                keyed_by: None,
                denied: false,
            },
            Some(ToolRule::ByArgument { argument, scopes }) => {
                let value = arguments
                    .and_then(|a| a.get(*argument))
                    .and_then(Value::as_str);
                Decision {
                    needs: value.and_then(|v| scopes.get(v)).unwrap_or(&self.none),
                    keyed_by: value.map(|v| truncate(v, 64)),
                    denied: false,
                }
            }
        }
    }

    /// Every scope any tool can need: what the resource advertises in its metadata.
    pub fn all_scopes(&self) -> ScopeSet {
        self.tools
            .values()
            .chain(self.patterns.iter().map(|(_, r)| r))
            .chain(self.default.iter())
            .fold(ScopeSet::new(), |acc, rule| match rule {
                ToolRule::Fixed(s) => acc.union(s),
                ToolRule::ByArgument { scopes, .. } => scopes.values().fold(acc, |a, s| a.union(s)),
                ToolRule::Deny => acc,
            })
    }

    /// True when a token with `scopes` may call `tool` (with any arguments the rule
    /// allows): what a filtered `tools/list` shows.
    pub fn may_call(&self, tool: &str, scopes: &ScopeSet) -> bool {
        match self.rule(tool) {
            None => true,
            Some(ToolRule::Deny) => false,
            Some(ToolRule::Fixed(s)) => scopes.is_superset(s),
            Some(ToolRule::ByArgument { scopes: by, .. }) => {
                by.is_empty() || by.values().any(|s| scopes.is_superset(s))
            }
        }
    }
}

/// Glob matching over bytes: `*` matches any run (also empty), `?` any one byte.
/// Iterative, with one backtrack point: linear in practice, never exponential.
pub fn glob_matches(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
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
    fn patterns_and_default() {
        let p = ToolScopePolicy::new()
            .tool("get_file", ToolRule::Fixed(ScopeSet::from_tokens(["read"])))
            .pattern("write_*", ToolRule::Fixed(ScopeSet::from_tokens(["write"])))
            .pattern("*", ToolRule::Fixed(ScopeSet::from_tokens(["misc"])));
        assert_eq!(p.required("get_file", None).to_string(), "read");
        assert_eq!(p.required("write_file", None).to_string(), "write");
        assert_eq!(p.required("other", None).to_string(), "misc");
        let deny = ToolScopePolicy::new()
            .pattern("echo", ToolRule::Fixed(ScopeSet::from_tokens(["e"])))
            .default_rule(ToolRule::Deny);
        assert!(deny.decide("rm", None).denied);
        assert!(!deny.decide("echo", None).denied);
        assert!(!deny.may_call("rm", &ScopeSet::from_tokens(["e"])));
        assert!(deny.may_call("echo", &ScopeSet::from_tokens(["e"])));
        assert!(!deny.may_call("echo", &ScopeSet::new()));
        assert_eq!(deny.all_scopes().to_string(), "e");
    }

    #[test]
    fn globs() {
        for (p, n, m) in [
            ("*", "", true),
            ("a*c", "abbbc", true),
            ("a*c", "abbbd", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*_file", "read_file", true),
            ("get_*_x*", "get_a_b_x", true),
            ("get_*_x*", "get_a_b_y", false),
            ("abc", "abcd", false),
        ] {
            assert_eq!(glob_matches(p.as_bytes(), n.as_bytes()), m, "{p} {n}");
        }
    }

    #[test]
    fn fixed_and_all() {
        assert_eq!(policy().required("admin", None).to_string(), "admin");
        assert_eq!(policy().all_scopes().to_string(), "admin op:add");
    }
}
