//! What one upstream is, as the configuration file (`[[upstream]]`) or the
//! `--upstream` / `--upstream-command` flags declare it, and the checks that turn the
//! declaration into a scope policy.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use mcpgate_core::ScopeSet;
use mcpgate_mcp::{ToolRule, ToolScopePolicy};
use serde::Deserialize;

use crate::policy::GatewayPolicy;
use url::Url;

/// The scope a flag-declared upstream's tools need: one command protects a server
/// without writing a policy, and the consent page still names what is granted.
pub const DEFAULT_SCOPE: &str = "mcp:tools";

/// One upstream MCP server behind the gateway.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Names the path (`/mcp/<name>`) and the upstream in logs and audit records.
    pub name: String,
    /// A Streamable HTTP server to forward to.
    #[serde(default)]
    pub url: Option<String>,
    /// A stdio server to spawn, one process per MCP session (run by `sh -c`).
    #[serde(default)]
    pub command: Option<String>,
    /// Environment variables added to the stdio process's (which inherits ours).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory of the stdio process.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// Scopes this upstream's tools need, with the description shown on the consent page.
    #[serde(default)]
    pub scopes: Vec<ScopeDecl>,
    /// Tool name or glob pattern (`*`, `?`) → the scope it needs. Exact names win over
    /// patterns; patterns are tried in file order.
    #[serde(default)]
    pub tools: Vec<ToolDecl>,
    /// The scope tools nobody listed need, or `"deny"` (the default: a tool the
    /// configuration does not name cannot be called).
    #[serde(default)]
    pub default: Option<String>,
    /// `tools/list` shows only the tools the caller's token may call.
    #[serde(default)]
    pub hide_unauthorized_tools: bool,
    /// Prompt name or pattern → the scope `prompts/get` needs.
    #[serde(default)]
    pub prompts: Vec<ToolDecl>,
    /// The scope prompts nobody listed need, or `"deny"`; unset, they are open (as
    /// before prompts had a policy).
    #[serde(default)]
    pub prompt_default: Option<String>,
    /// `prompts/list` shows only the prompts the caller's token may get.
    #[serde(default)]
    pub hide_unauthorized_prompts: bool,
    /// Resource URI or pattern → the scope `resources/read` needs.
    #[serde(default)]
    pub resources: Vec<ResourceDecl>,
    /// The scope resources nobody listed need, or `"deny"`; unset, they are open.
    #[serde(default)]
    pub resource_default: Option<String>,
    /// `resources/list` shows only the resources the caller's token may read.
    #[serde(default)]
    pub hide_unauthorized_resources: bool,
    /// What the upstream learns about the caller.
    #[serde(default)]
    pub identity: IdentityMode,
    /// The `aud` of identity JWTs (default: `urn:mcpgate:upstream:<name>`).
    #[serde(default)]
    pub audience: Option<String>,
    /// Seconds to wait for the upstream's answer (the response head for HTTP, the
    /// JSON-RPC response for stdio) before answering 504.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Seconds a freshly started stdio process has to answer its `initialize`
    /// (interpreters take a while to start; calls after that get `timeout_secs`).
    #[serde(default = "default_start_timeout")]
    pub start_timeout_secs: u64,
    /// Most stdio processes (MCP sessions) alive at once.
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
    /// A stdio session unused this long is ended and its process stopped.
    #[serde(default = "default_idle")]
    pub idle_secs: u64,
    /// Most stdio processes serving 2026-07-28 (stateless) requests, each borrowed by
    /// one request at a time.
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// Milliseconds a stateless request waits for a free pooled process before 503.
    #[serde(default = "default_pool_wait")]
    pub pool_wait_ms: u64,
}

fn default_pool_size() -> usize {
    4
}
fn default_pool_wait() -> u64 {
    2000
}

fn default_timeout() -> u64 {
    30
}
fn default_start_timeout() -> u64 {
    30
}
fn default_max_sessions() -> usize {
    32
}
fn default_idle() -> u64 {
    600
}

/// A scope an upstream declares.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeDecl {
    pub name: String,
    pub description: String,
}

/// A tool (or pattern) and the scope it needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolDecl {
    pub name: String,
    pub scope: String,
}

/// A resource URI (or pattern) and the scope `resources/read` needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceDecl {
    pub uri: String,
    pub scope: String,
}

/// What the upstream receives about the caller. Never the client's token: MCP
/// "Access Token Privilege Restriction" forbids passing it through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentityMode {
    /// Nothing.
    #[default]
    None,
    /// `X-Forwarded-User`, `X-Forwarded-Subject`, `X-Forwarded-Client-Id`,
    /// `X-Forwarded-Scopes` (set by the gateway; the client's own are dropped).
    Headers,
    /// `Authorization: Bearer <JWT>`, signed by mcpgate's key for the upstream's own
    /// audience, valid 60 s; the upstream verifies it with mcpgate's JWKS.
    Jwt,
}

/// Why an upstream declaration is refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("upstream {0:?}: the name must be 1-64 characters of a-z, 0-9, '-' or '_'")]
    BadName(String),
    #[error("upstream {0:?}: give exactly one of url and command")]
    Transport(String),
    #[error("upstream {0:?}: url must be an http or https URL")]
    Scheme(String),
    #[error("upstream {name:?}: scope {scope:?} is not a valid scope token")]
    BadScope { name: String, scope: String },
    #[error("upstream {name:?}: scope {scope:?} is used but not declared under scopes")]
    Undeclared { name: String, scope: String },
    #[error("two upstreams are named {0:?}")]
    Duplicate(String),
    #[error(
        "upstream {0:?}: timeouts, max_sessions, idle_secs, pool_size and pool_wait_ms must be positive"
    )]
    Bounds(String),
}

impl UpstreamConfig {
    /// An upstream declared by a flag: every tool needs [`DEFAULT_SCOPE`].
    pub fn from_flag(name: &str, url: Option<String>, command: Option<String>) -> Self {
        Self {
            name: name.to_owned(),
            url,
            command,
            env: BTreeMap::new(),
            cwd: None,
            scopes: vec![ScopeDecl {
                name: DEFAULT_SCOPE.to_owned(),
                description: "Use the tools of the protected MCP server".to_owned(),
            }],
            tools: Vec::new(),
            default: Some(DEFAULT_SCOPE.to_owned()),
            hide_unauthorized_tools: false,
            prompts: Vec::new(),
            prompt_default: None,
            hide_unauthorized_prompts: false,
            resources: Vec::new(),
            resource_default: None,
            hide_unauthorized_resources: false,
            identity: IdentityMode::None,
            audience: None,
            timeout_secs: default_timeout(),
            start_timeout_secs: default_start_timeout(),
            max_sessions: default_max_sessions(),
            idle_secs: default_idle(),
            pool_size: default_pool_size(),
            pool_wait_ms: default_pool_wait(),
        }
    }

    /// Checks the declaration; every scope used must be declared (so the consent page
    /// can describe it).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let n = &self.name;
        if n.is_empty()
            || n.len() > 64
            || !n
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(ConfigError::BadName(n.clone()));
        }
        match (&self.url, &self.command) {
            (Some(_), None) => {
                if self.http_url().is_none() {
                    return Err(ConfigError::Scheme(n.clone()));
                }
            }
            (None, Some(c)) if !c.trim().is_empty() => {}
            _ => return Err(ConfigError::Transport(n.clone())),
        }
        if self.timeout_secs == 0
            || self.start_timeout_secs == 0
            || self.max_sessions == 0
            || self.idle_secs == 0
            || self.pool_size == 0
            || self.pool_wait_ms == 0
        {
            return Err(ConfigError::Bounds(n.clone()));
        }
        for s in &self.scopes {
            if ScopeSet::parse(&s.name).map(|p| p.len()) != Ok(1) {
                return Err(ConfigError::BadScope {
                    name: n.clone(),
                    scope: s.name.clone(),
                });
            }
        }
        let used = self
            .tools
            .iter()
            .map(|t| &t.scope)
            .chain(self.prompts.iter().map(|t| &t.scope))
            .chain(self.resources.iter().map(|r| &r.scope))
            .chain(
                [&self.default, &self.prompt_default, &self.resource_default]
                    .into_iter()
                    .flatten()
                    .filter(|d| *d != "deny"),
            );
        for scope in used {
            if !self.scopes.iter().any(|s| &s.name == scope) {
                return Err(ConfigError::Undeclared {
                    name: n.clone(),
                    scope: scope.clone(),
                });
            }
        }
        Ok(())
    }

    /// The tool policy the guard enforces for this upstream (unlisted tools: denied
    /// unless `default` names a scope).
    pub fn policy(&self) -> ToolScopePolicy {
        let rules = self
            .tools
            .iter()
            .map(|t| (t.name.as_str(), t.scope.as_str()));
        table(rules, Some(self.default.as_deref().unwrap_or("deny")))
    }

    /// The whole policy: tools, prompts and resources, and which lists are narrowed.
    pub fn gateway_policy(&self) -> GatewayPolicy {
        let prompts = self
            .prompts
            .iter()
            .map(|t| (t.name.as_str(), t.scope.as_str()));
        let resources = self
            .resources
            .iter()
            .map(|r| (r.uri.as_str(), r.scope.as_str()));
        GatewayPolicy {
            tools: self.policy(),
            prompts: table(prompts, self.prompt_default.as_deref()),
            resources: table(resources, self.resource_default.as_deref()),
            hide_tools: self.hide_unauthorized_tools,
            hide_prompts: self.hide_unauthorized_prompts,
            hide_resources: self.hide_unauthorized_resources,
        }
    }

    pub fn pool_wait(&self) -> Duration {
        Duration::from_millis(self.pool_wait_ms)
    }

    /// The Streamable HTTP URL, if this upstream is one and the URL is http(s).
    pub fn http_url(&self) -> Option<Url> {
        let u = Url::parse(self.url.as_deref()?).ok()?;
        matches!(u.scheme(), "http" | "https").then_some(u)
    }

    /// The `aud` of identity JWTs for this upstream.
    pub fn audience(&self) -> String {
        self.audience
            .clone()
            .unwrap_or_else(|| format!("urn:mcpgate:upstream:{}", self.name))
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }

    pub fn start_timeout(&self) -> Duration {
        Duration::from_secs(self.start_timeout_secs.max(self.timeout_secs))
    }
}

/// A scope table: names (or `*`/`?` patterns) → scope, and the default (`"deny"`, a
/// scope, or none: open).
fn table<'a>(
    rules: impl Iterator<Item = (&'a str, &'a str)>,
    default: Option<&str>,
) -> ToolScopePolicy {
    let fixed = |s: &str| ToolRule::Fixed(ScopeSet::from_tokens([s]));
    let mut p = ToolScopePolicy::new();
    for (name, scope) in rules {
        p = if name.contains(['*', '?']) {
            p.pattern(name, fixed(scope))
        } else {
            p.tool(name, fixed(scope))
        };
    }
    match default {
        None => p,
        Some("deny") => p.default_rule(ToolRule::Deny),
        Some(s) => p.default_rule(fixed(s)),
    }
}

/// Checks a whole list: each upstream, and distinct names.
pub fn validate_all(list: &[UpstreamConfig]) -> Result<(), ConfigError> {
    for (i, u) in list.iter().enumerate() {
        u.validate()?;
        if list[..i].iter().any(|o| o.name == u.name) {
            return Err(ConfigError::Duplicate(u.name.clone()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> UpstreamConfig {
        toml::from_str(s).unwrap()
    }

    #[test]
    fn a_full_declaration() {
        let u = parse(
            r#"
            name = "files"
            command = "npx -y some-server"
            env = { ROOT = "/srv" }
            scopes = [{ name = "files:read", description = "Read files" },
                      { name = "files:write", description = "Change files" }]
            tools = [{ name = "read_file", scope = "files:read" },
                     { name = "write_*", scope = "files:write" }]
            default = "files:read"
            identity = "headers"
            "#,
        );
        u.validate().unwrap();
        let p = u.policy();
        assert_eq!(p.required("read_file", None).to_string(), "files:read");
        assert_eq!(p.required("write_x", None).to_string(), "files:write");
        assert_eq!(p.required("other", None).to_string(), "files:read");
        assert_eq!(u.identity, IdentityMode::Headers);
    }

    #[test]
    fn refusals() {
        let base = |extra: &str| parse(&format!("name = \"a\"\n{extra}"));
        assert!(matches!(
            base("").validate(),
            Err(ConfigError::Transport(_))
        ));
        assert!(matches!(
            base("url = \"ftp://x\"").validate(),
            Err(ConfigError::Scheme(_))
        ));
        assert!(matches!(
            base("url = \"http://x\"\ntools = [{ name = \"t\", scope = \"s\" }]").validate(),
            Err(ConfigError::Undeclared { .. })
        ));
        assert!(matches!(
            parse("name = \"A b\"\nurl = \"http://x\"").validate(),
            Err(ConfigError::BadName(_))
        ));
        assert!(toml::from_str::<UpstreamConfig>("name = \"a\"\nbogus = 1").is_err());
        let two = [base("url = \"http://x\""), base("url = \"http://y\"")];
        assert!(matches!(validate_all(&two), Err(ConfigError::Duplicate(_))));
    }

    #[test]
    fn prompts_and_resources_policy_from_the_file() {
        let u = parse(
            r#"
            name = "ev"
            url = "http://x"
            scopes = [{ name = "ev:prompts", description = "Prompts" },
                      { name = "ev:docs", description = "Docs" }]
            prompts = [{ name = "simple*", scope = "ev:prompts" }]
            prompt_default = "deny"
            resources = [{ uri = "test://static/*", scope = "ev:docs" }]
            hide_unauthorized_prompts = true
            "#,
        );
        u.validate().unwrap();
        let p = u.gateway_policy();
        assert_eq!(p.all_scopes().to_string(), "ev:docs ev:prompts");
        assert!(p.narrows("prompts/list") && !p.narrows("resources/list"));
        let undeclared =
            parse("name = \"a\"\nurl = \"http://x\"\nresources = [{ uri = \"x\", scope = \"s\" }]");
        assert!(matches!(
            undeclared.validate(),
            Err(ConfigError::Undeclared { .. })
        ));
        // Without prompt or resource entries, both stay open (older configurations).
        let old = parse("name = \"a\"\nurl = \"http://x\"").gateway_policy();
        assert!(
            old.check("prompts/get", Some("p"), &ScopeSet::new())
                .is_ok()
        );
    }

    #[test]
    fn unlisted_tools_are_denied_by_default() {
        let u = parse("name = \"a\"\nurl = \"http://x\"");
        assert!(u.policy().decide("anything", None).denied);
    }
}
