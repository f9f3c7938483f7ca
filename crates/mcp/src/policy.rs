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
    /// The rule that decided, by the name the operator wrote: the tool's own name,
    /// the pattern that matched, [`DEFAULT_RULE`] or [`NO_RULE`]. A label for
    /// metrics that callers cannot choose: the policy's size bounds its values.
    pub rule: &'p str,
}

/// [`Decision::rule`] when the policy's default decided.
pub const DEFAULT_RULE: &str = "(default)";
/// [`Decision::rule`] when no rule applies (the call needs nothing here).
pub const NO_RULE: &str = "(unlisted)";

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

    /// The rule that applies to `tool`, if any, with its name.
    fn named_rule(&self, tool: &str) -> Option<(&str, &ToolRule)> {
        if let Some((name, rule)) = self.tools.get_key_value(tool) {
            return Some((name.as_str(), rule));
        }
        self.patterns
            .iter()
            .find(|(p, _)| glob_matches(p.as_bytes(), tool.as_bytes()))
            .map(|(p, r)| (p.as_str(), r))
            .or(self.default.as_ref().map(|r| (DEFAULT_RULE, r)))
    }

    /// The rule that applies to `tool`, if any.
    fn rule(&self, tool: &str) -> Option<&ToolRule> {
        self.named_rule(tool).map(|(_, r)| r)
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
        let Some((rule, found)) = self.named_rule(tool) else {
            return Decision {
                needs: &self.none,
                keyed_by: None,
                denied: false,
                rule: NO_RULE,
            };
        };
        let decide = |needs, keyed_by, denied| Decision {
            needs,
            keyed_by,
            denied,
            rule,
        };
        match found {
            ToolRule::Deny => decide(&self.none, None, true),
            ToolRule::Fixed(s) => decide(s, None, false),
            ToolRule::ByArgument { argument, scopes } => {
                // An argument a server could read otherwise (`Operation` beside
                // `operation`, to a decoder that ignores case) is not decided on.
                if arguments.is_some_and(|a| {
                    a.keys()
                        .any(|k| k != argument && crate::guard::envelope::folds_to(k, argument))
                }) {
                    return decide(&self.none, None, true);
                }
                let value = arguments
                    .and_then(|a| a.get(*argument))
                    .and_then(Value::as_str);
                decide(
                    value.and_then(|v| scopes.get(v)).unwrap_or(&self.none),
                    value.map(|v| truncate(v, 64)),
                    false,
                )
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

/// Glob matching over `/`-separated segments: `*` matches any run of characters
/// within one segment (also empty), `?` any one character but `/`, and a segment that
/// is exactly `**` any number of whole segments (also none). So `file:///srv/pub/*`
/// admits `file:///srv/pub/a` but not `file:///srv/pub/a/b`, which
/// `file:///srv/pub/**` admits. Names without `/` (tools, prompts) match as before.
/// Linear in practice (one backtrack point per level), never exponential.
pub fn glob_matches(pattern: &[u8], name: &[u8]) -> bool {
    let pat: Vec<&[u8]> = pattern.split(|&b| b == b'/').collect();
    let nam: Vec<&[u8]> = name.split(|&b| b == b'/').collect();
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < nam.len() {
        match pat.get(p) {
            Some(&b"**") => {
                star = Some((p, n));
                p += 1;
            }
            Some(seg) if segment_matches(seg, nam[n]) => {
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
    pat[p..].iter().all(|s| *s == b"**")
}

/// One segment (no `/` in either): `*` any run, `?` any one byte.
fn segment_matches(pattern: &[u8], name: &[u8]) -> bool {
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
            // `*` stays within a segment; a `**` segment spans any number.
            ("file:///srv/pub/*", "file:///srv/pub/a", true),
            ("file:///srv/pub/*", "file:///srv/pub/a/b", false),
            ("file:///srv/pub/*", "file:///srv/pub/../secret", false),
            ("file:///srv/pub/**", "file:///srv/pub/a/b", true),
            ("file:///srv/pub/**", "file:///srv/pub", true),
            ("file:///srv/**/key", "file:///srv/a/b/key", true),
            ("file:///srv/**/key", "file:///srv/a/b/other", false),
            ("a?c", "a/c", false),
            ("*", "a/b", false),
            ("**", "a/b", true),
        ] {
            assert_eq!(glob_matches(p.as_bytes(), n.as_bytes()), m, "{p} {n}");
        }
    }

    #[test]
    fn the_rule_that_decided_is_named_by_the_policy_not_the_caller() {
        let p = ToolScopePolicy::new()
            .tool("get", ToolRule::Fixed(ScopeSet::from_tokens(["r"])))
            .pattern("write_*", ToolRule::Fixed(ScopeSet::from_tokens(["w"])))
            .default_rule(ToolRule::Deny);
        assert_eq!(p.decide("get", None).rule, "get");
        assert_eq!(p.decide("write_anything_at_all", None).rule, "write_*");
        assert_eq!(p.decide("junk-1234", None).rule, DEFAULT_RULE);
        assert_eq!(ToolScopePolicy::new().decide("junk", None).rule, NO_RULE);
    }

    #[test]
    fn an_argument_beside_a_case_variant_of_it_is_not_decided_on() {
        let args = json!({"op": "add", "OP": "divide"});
        assert!(policy().decide("calc", args.as_object()).denied);
        let args = json!({"Op": "divide"});

        assert!(policy().decide("calc", args.as_object()).denied);
        assert!(
            !policy()
                .decide("calc", json!({"op": "add"}).as_object())
                .denied
        );
    }

    #[test]
    fn fixed_and_all() {
        assert_eq!(policy().required("admin", None).to_string(), "admin");
        assert_eq!(policy().all_scopes().to_string(), "admin op:add");
    }
}
