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
    /// Environment variables added to the stdio process's (which inherits only what
    /// a program needs of ours: see [`crate::stdio::process`]).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Variables set to the calling person's own secret (`GITHUB_TOKEN = "github"`: the
    /// token the person connected for this upstream, named by its name): each person
    /// gets processes of their own, never shared, started with their secret. Needs
    /// `credentials = "per_person_token"`.
    #[serde(default)]
    pub env_from_person: BTreeMap<String, String>,
    /// Working directory of the stdio process. Unset, each process gets an empty
    /// directory of its own (made 0700 under the system's temporary directory), never
    /// mcpgate's: a directory that holds mcpgate's data or key is refused at start.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// Run the stdio process as this user (`name`, or `uid` or `uid:gid`), so that it
    /// cannot read what mcpgate's user can (the key-encryption key, the database).
    /// Needs mcpgate to run as root, or with `CAP_SETUID`/`CAP_SETGID`.
    #[serde(default)]
    pub run_as: Option<String>,
    /// Headers of the client's request forwarded to an HTTP upstream beyond the
    /// transport's own (names; credentials and identity headers are refused).
    #[serde(default)]
    pub forward_headers: Vec<String>,
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
    /// The scope prompts nobody listed need, `"deny"`, or `"open"` (no scope at
    /// all); unset, the tools' `default`.
    #[serde(default)]
    pub prompt_default: Option<String>,
    /// `prompts/list` shows only the prompts the caller's token may get.
    #[serde(default)]
    pub hide_unauthorized_prompts: bool,
    /// Resource URI or pattern → the scope `resources/read` needs.
    #[serde(default)]
    pub resources: Vec<ResourceDecl>,
    /// The scope resources nobody listed need, `"deny"`, or `"open"`; unset, the
    /// tools' `default`.
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
    /// Whose credentials the upstream gets: none of the person's (the default), or
    /// each person's own (`per_person_token`: a token the person gives once, sent as
    /// `Authorization: Bearer`; a call by someone who has not given one is answered
    /// with a URL elicitation to the page where they do).
    #[serde(default)]
    pub credentials: CredentialsMode,
    /// What the connect page asks the person for (e.g. "a personal access token of
    /// the company's GitHub, with the repo scope"), or, with `oauth`, where they sign in.
    #[serde(default)]
    pub credential_label: Option<String>,
    /// With `credentials = "oauth"`: a client id the upstream's authorization server
    /// gave mcpgate (otherwise its Client ID Metadata Document, or dynamic registration).
    #[serde(default)]
    pub oauth_client_id: Option<String>,
    /// The environment variable holding that client's secret (never the secret itself:
    /// configuration files are read by many).
    #[serde(default)]
    pub oauth_client_secret_env: Option<String>,
    /// Scopes asked of the upstream (default: its `scopes_supported`).
    #[serde(default)]
    pub oauth_scopes: Option<Vec<String>>,
    /// The issuer the upstream's metadata must name: what the upstream says is then
    /// checked, not followed. Required with `token_exchange` (people's tokens here go
    /// to that server only).
    #[serde(default)]
    pub oauth_issuer: Option<String>,
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
    /// Most of them one person may hold (default: a quarter of `max_sessions`, at
    /// least 1): past it, that person's least recently used idle session ends first.
    #[serde(default)]
    pub max_sessions_per_person: Option<usize>,
    /// A stdio session unused this long is ended and its process stopped.
    #[serde(default = "default_idle")]
    pub idle_secs: u64,
    /// Most stdio processes serving 2026-07-28 (stateless) requests, each borrowed by
    /// one request at a time.
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// Most pooled processes one person may hold (default: half the pool, at least 1).
    #[serde(default)]
    pub pool_per_person: Option<usize>,
    /// Lend pooled processes to anyone, not only to the person who used them before.
    /// Safe only for servers that keep no state between requests (one person's notes
    /// would otherwise be read by the next): off by default.
    #[serde(default)]
    pub shared_pool: bool,
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
    /// The groups whose members may hold it (created when missing: the configuration
    /// is the source of truth); `[]` opens it to every signed-in person; absent, the
    /// operator's `mcpgate scope add --group` decides.
    #[serde(default)]
    pub groups: Option<Vec<String>>,
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

/// Whose credentials reach the upstream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialsMode {
    /// None of the person's: the upstream trusts the gateway (identity headers or JWT),
    /// or needs no credentials, or gets the URL's own.
    #[default]
    None,
    /// Each person's own token, given once on the connect page, kept sealed.
    PerPersonToken,
    /// Each person's own account through the upstream's own sign-in: mcpgate is an
    /// OAuth client of the upstream and keeps each person's tokens, sealed.
    #[serde(rename = "oauth")]
    OAuth,
    /// The person's token here, exchanged at the upstream's authorization server for
    /// one of the upstream's (RFC 8693), where that server trusts this one's issuer: no
    /// pop-up. mcpgate is a confidential client there (`oauth_client_id` and secret).
    TokenExchange,
}

impl CredentialsMode {
    /// Whether each person brings their own account.
    pub fn per_person(self) -> bool {
        self != Self::None
    }
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
        "upstream {0:?}: timeouts, max_sessions(_per_person), idle_secs, pool_size, pool_per_person and pool_wait_ms must be positive"
    )]
    Bounds(String),
    #[error(
        "upstream {name:?}: header {header:?} may not be forwarded (credentials and identity headers are the gateway's)"
    )]
    Header { name: String, header: String },
    #[error("upstream {name:?}: resource rule {uri:?} is not a URI in normal form ({why})")]
    ResourceRule {
        name: String,
        uri: String,
        why: crate::uri::UriError,
    },
    #[error(
        "upstream {name:?}: its working directory {cwd:?} holds {secret:?}; give it a directory of its own"
    )]
    Exposed {
        name: String,
        cwd: PathBuf,
        secret: PathBuf,
    },
    #[error("upstream {0:?}: cwd, run_as and the pool settings are for stdio upstreams (command)")]
    StdioOnly(String),
    #[error(
        "upstream {0:?}: credentials = \"per_person_token\" or \"oauth\" is for HTTP upstreams (url), with no identity JWT and no credentials in the URL (both would be the person's Authorization header); oauth_* settings go with credentials = \"oauth\" or \"token_exchange\" (which needs oauth_client_id, oauth_client_secret_env and oauth_issuer), and the names \"callback\" and \"client\" are taken by its pages"
    )]
    PerPerson(String),
    #[error(
        "upstream {0:?}: env_from_person is for stdio upstreams (command) with credentials = \"per_person_token\" and no shared_pool; each value names this upstream, each variable is A-Z, 0-9 and _, and none that loads code or finds programs (PATH, LD_*, NODE_OPTIONS, PYTHONPATH...)"
    )]
    PersonEnv(String),
}

/// Whether a variable may hold a person's secret: a plain name, and none whose value a
/// program would load code from or look programs up in (the person chooses the value).
fn person_variable(var: &str) -> bool {
    const LOADERS: &[&str] = &[
        "PATH",
        "HOME",
        "JDK_JAVA_OPTIONS",
        "OPENSSL_CONF",
        "GCONV_PATH",
        "LOCPATH",
        "GLIBC_TUNABLES",
        "NODE_EXTRA_CA_CERTS",
        "PYTHONBREAKPOINT",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "SHELL",
        "ENV",
        "BASH_ENV",
        "IFS",
        "SHELLOPTS",
        "NODE_OPTIONS",
        "NODE_PATH",
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONSTARTUP",
        "PERL5LIB",
        "PERL5OPT",
        "RUBYOPT",
        "RUBYLIB",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
        "CLASSPATH",
        "TMPDIR",
    ];
    !var.is_empty()
        && var.len() <= 64
        && var
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        && !var.as_bytes()[0].is_ascii_digit()
        && !LOADERS.contains(&var)
        && ![
            "LD_",
            "DYLD_",
            "GIT_",
            "NPM_CONFIG_",
            "PIP_",
            "UV_",
            "MCPGATE_",
        ]
        .iter()
        .any(|p| var.starts_with(p))
}

/// A default: a scope, no call at all, or every call.
const DENY: &str = "deny";
const OPEN: &str = "open";

impl UpstreamConfig {
    /// An upstream declared by a flag: every tool needs [`DEFAULT_SCOPE`].
    pub fn from_flag(name: &str, url: Option<String>, command: Option<String>) -> Self {
        Self {
            name: name.to_owned(),
            url,
            command,
            env: BTreeMap::new(),
            cwd: None,
            run_as: None,
            forward_headers: Vec::new(),
            scopes: vec![ScopeDecl {
                name: DEFAULT_SCOPE.to_owned(),
                description: "Use the tools of the protected MCP server".to_owned(),
                groups: None,
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
            credentials: CredentialsMode::None,
            credential_label: None,
            oauth_client_id: None,
            oauth_client_secret_env: None,
            oauth_scopes: None,
            oauth_issuer: None,
            env_from_person: BTreeMap::new(),
            timeout_secs: default_timeout(),
            start_timeout_secs: default_start_timeout(),
            max_sessions: default_max_sessions(),
            max_sessions_per_person: None,
            idle_secs: default_idle(),
            pool_size: default_pool_size(),
            pool_per_person: None,
            shared_pool: false,
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
            || self.max_sessions_per_person == Some(0)
            || self.idle_secs == 0
            || self.pool_size == 0
            || self.pool_per_person == Some(0)
            || self.pool_wait_ms == 0
        {
            return Err(ConfigError::Bounds(n.clone()));
        }
        let oauth_settings = self.oauth_client_id.is_some()
            || self.oauth_client_secret_env.is_some()
            || self.oauth_scopes.is_some()
            || self.oauth_issuer.is_some();
        let through_oauth = matches!(
            self.credentials,
            CredentialsMode::OAuth | CredentialsMode::TokenExchange
        );
        if (oauth_settings && !through_oauth)
            || (self.credentials == CredentialsMode::TokenExchange
                && (self.oauth_client_secret_env.is_none() || self.oauth_issuer.is_none()))
            || (self.oauth_client_secret_env.is_some() && self.oauth_client_id.is_none())
            || (self.credentials.per_person() && (n == "callback" || n == "client"))
        {
            return Err(ConfigError::PerPerson(n.clone()));
        }
        if !self.env_from_person.is_empty()
            && (self.command.is_none()
                || self.credentials != CredentialsMode::PerPersonToken
                || self.shared_pool
                || self
                    .env_from_person
                    .iter()
                    .any(|(var, from)| *from != self.name || !person_variable(var)))
        {
            return Err(ConfigError::PersonEnv(n.clone()));
        }
        let stdio_with_secrets = self.command.is_some() && !self.env_from_person.is_empty();
        if self.credentials.per_person()
            && !stdio_with_secrets
            && (self.url.is_none()
                || self.identity == IdentityMode::Jwt
                || self
                    .http_url()
                    .is_some_and(|u| !u.username().is_empty() || u.password().is_some())
                || self
                    .credential_label
                    .as_ref()
                    .is_some_and(|l| l.chars().count() > 300))
        {
            return Err(ConfigError::PerPerson(n.clone()));
        }
        if self.url.is_some()
            && (self.cwd.is_some()
                || self.run_as.is_some()
                || self.shared_pool
                || self.pool_per_person.is_some())
        {
            return Err(ConfigError::StdioOnly(n.clone()));
        }
        for h in &self.forward_headers {
            if http::HeaderName::from_bytes(h.as_bytes()).is_err()
                || crate::headers::never_forwarded(h)
            {
                return Err(ConfigError::Header {
                    name: n.clone(),
                    header: h.clone(),
                });
            }
        }
        for r in &self.resources {
            if let Err(why) = crate::uri::normalize(&r.uri) {
                return Err(ConfigError::ResourceRule {
                    name: n.clone(),
                    uri: r.uri.clone(),
                    why,
                });
            }
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
                    .filter(|d| *d != DENY && *d != OPEN),
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

    /// The default of tools nobody listed: `default`, else denied.
    fn tools_default(&self) -> &str {
        self.default.as_deref().unwrap_or(DENY)
    }

    /// The tool policy the guard enforces for this upstream (unlisted tools: denied
    /// unless `default` names a scope).
    pub fn policy(&self) -> ToolScopePolicy {
        let rules = self
            .tools
            .iter()
            .map(|t| (t.name.clone(), t.scope.as_str()));
        table(rules, self.tools_default())
    }

    /// The whole policy: tools, prompts and resources, and which lists are narrowed.
    /// Prompts and resources nobody listed get their own default, else the tools':
    /// what the operator did not open stays as closed as the tools.
    pub fn gateway_policy(&self) -> GatewayPolicy {
        let prompts = self
            .prompts
            .iter()
            .map(|t| (t.name.clone(), t.scope.as_str()));
        // Validated: every rule has a normal form.
        let resources = self.resources.iter().map(|r| {
            let uri = crate::uri::normalize(&r.uri).unwrap_or_else(|_| r.uri.clone());
            (uri, r.scope.as_str())
        });
        GatewayPolicy {
            tools: self.policy(),
            prompts: table(
                prompts,
                self.prompt_default
                    .as_deref()
                    .unwrap_or(self.tools_default()),
            ),
            resources: table(
                resources,
                self.resource_default
                    .as_deref()
                    .unwrap_or(self.tools_default()),
            ),
            hide_tools: self.hide_unauthorized_tools,
            hide_prompts: self.hide_unauthorized_prompts,
            hide_resources: self.hide_unauthorized_resources,
        }
    }

    pub fn pool_wait(&self) -> Duration {
        Duration::from_millis(self.pool_wait_ms)
    }

    /// Most stdio sessions one person may hold.
    pub fn sessions_per_person(&self) -> usize {
        self.max_sessions_per_person
            .unwrap_or(self.max_sessions / 4)
            .clamp(1, self.max_sessions)
    }

    /// Most pooled processes one person may hold.
    pub fn pool_per_person(&self) -> usize {
        self.pool_per_person
            .unwrap_or(self.pool_size / 2)
            .clamp(1, self.pool_size)
    }

    /// The operator's extra forwarded headers, as names.
    pub fn forwarded_headers(&self) -> Vec<http::HeaderName> {
        self.forward_headers
            .iter()
            .filter_map(|h| http::HeaderName::from_bytes(h.to_ascii_lowercase().as_bytes()).ok())
            .collect()
    }

    /// Refuses a working directory from which the process could reach mcpgate's own
    /// secrets by a relative path, or list them: one that is, holds, or lies within
    /// any of `secrets` (the data directory, the key-encryption key file).
    pub fn check_isolation(&self, secrets: &[PathBuf]) -> Result<(), ConfigError> {
        let Some(cwd) = &self.cwd else {
            return Ok(());
        };
        let cwd = std::fs::canonicalize(cwd).unwrap_or_else(|_| cwd.clone());
        for secret in secrets {
            let secret_abs = std::fs::canonicalize(secret).unwrap_or_else(|_| secret.clone());
            if secret_abs.starts_with(&cwd) || cwd.starts_with(&secret_abs) {
                return Err(ConfigError::Exposed {
                    name: self.name.clone(),
                    cwd,
                    secret: secret.clone(),
                });
            }
        }
        Ok(())
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

/// A scope table: names (or `*`/`?`/`**` patterns) → scope, and the default
/// (`"deny"`, `"open"`, or a scope).
fn table<'a>(rules: impl Iterator<Item = (String, &'a str)>, default: &str) -> ToolScopePolicy {
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
        OPEN => p,
        DENY => p.default_rule(ToolRule::Deny),
        s => p.default_rule(fixed(s)),
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
        let undeclared = parse(
            "name = \"a\"\nurl = \"http://x\"\nresources = [{ uri = \"test://x\", scope = \"s\" }]",
        );
        assert!(matches!(
            undeclared.validate(),
            Err(ConfigError::Undeclared { .. })
        ));
        // Prompts and resources nobody listed get the tools' default: closed unless
        // the operator opens them.
        let none = ScopeSet::new();
        let closed = parse("name = \"a\"\nurl = \"http://x\"").gateway_policy();
        assert!(closed.check("prompts/get", Some("p"), &none).is_err());
        assert!(
            closed
                .check("resources/read", Some("file:///x"), &none)
                .is_err()
        );
        let flag = UpstreamConfig::from_flag("a", Some("http://x".into()), None).gateway_policy();
        let tools = ScopeSet::from_tokens([DEFAULT_SCOPE]);
        assert!(
            flag.check("resources/read", Some("file:///x"), &none)
                .is_err()
        );
        assert!(
            flag.check("resources/read", Some("file:///x"), &tools)
                .is_ok()
        );
        let open = parse("name = \"a\"\nurl = \"http://x\"\nprompt_default = \"open\"");
        open.validate().unwrap();
        assert!(
            open.gateway_policy()
                .check("prompts/get", Some("p"), &none)
                .is_ok()
        );
        let bad = parse(
            "name = \"a\"\nurl = \"http://x\"\nresources = [{ uri = \"file:///a/../b\", scope = \"s\" }]",
        );
        assert!(matches!(
            bad.validate(),
            Err(ConfigError::ResourceRule { .. })
        ));
        let bad =
            parse("name = \"a\"\nurl = \"http://x\"\nforward_headers = [\"X-Forwarded-User\"]");
        assert!(matches!(bad.validate(), Err(ConfigError::Header { .. })));
        let bad = parse("name = \"a\"\nurl = \"http://x\"\nrun_as = \"nobody\"");
        assert!(matches!(bad.validate(), Err(ConfigError::StdioOnly(_))));
    }

    /// A person's secret goes into the environment of their own stdio processes only,
    /// under a plain name that no program loads code from.
    #[test]
    fn a_persons_secret_goes_into_their_own_processes_under_a_plain_name() {
        let base = "name = \"gh\"\ncommand = \"srv\"\ncredentials = \"per_person_token\"\n";
        parse(&format!(
            "{base}env_from_person = {{ GITHUB_TOKEN = \"gh\" }}"
        ))
        .validate()
        .unwrap();
        for bad in [
            format!("{base}env_from_person = {{ LD_PRELOAD = \"gh\" }}"),
            format!("{base}env_from_person = {{ PATH = \"gh\" }}"),
            format!("{base}env_from_person = {{ NODE_OPTIONS = \"gh\" }}"),
            format!("{base}env_from_person = {{ lower = \"gh\" }}"),
            format!("{base}env_from_person = {{ TOKEN = \"other\" }}"),
            format!("{base}shared_pool = true\nenv_from_person = {{ TOKEN = \"gh\" }}"),
            "name = \"gh\"\ncommand = \"srv\"\nenv_from_person = { TOKEN = \"gh\" }".into(),
            "name = \"gh\"\nurl = \"http://x\"\ncredentials = \"per_person_token\"\nenv_from_person = { TOKEN = \"gh\" }".into(),
        ] {
            assert!(
                matches!(parse(&bad).validate(), Err(ConfigError::PersonEnv(_))),
                "{bad}"
            );
        }
        // Without env_from_person a stdio upstream has no use for a person's token.
        assert!(matches!(
            parse(base).validate(),
            Err(ConfigError::PerPerson(_))
        ));
    }

    /// A person's own token is their `Authorization` at an HTTP upstream: nothing else
    /// may claim that header, and a stdio upstream has none.
    #[test]
    fn per_person_tokens_are_for_http_upstreams_with_no_other_authorization() {
        let ok = parse("name = \"a\"\nurl = \"http://x\"\ncredentials = \"per_person_token\"");
        ok.validate().unwrap();
        assert_eq!(ok.credentials, CredentialsMode::PerPersonToken);
        for bad in [
            "name = \"a\"\ncommand = \"srv\"\ncredentials = \"per_person_token\"",
            "name = \"a\"\nurl = \"http://x\"\nidentity = \"jwt\"\ncredentials = \"per_person_token\"",
            "name = \"a\"\nurl = \"http://u:p@x\"\ncredentials = \"per_person_token\"",
            "name = \"a\"\ncommand = \"srv\"\ncredentials = \"oauth\"",
            "name = \"a\"\nurl = \"http://x\"\nidentity = \"jwt\"\ncredentials = \"oauth\"",
            // The oauth settings belong to the oauth kind, a secret to a client id.
            "name = \"a\"\nurl = \"http://x\"\noauth_client_id = \"c\"",
            "name = \"a\"\nurl = \"http://x\"\ncredentials = \"oauth\"\noauth_client_secret_env = \"S\"",
            // The connect pages' own paths.
            "name = \"callback\"\nurl = \"http://x\"\ncredentials = \"oauth\"",
            "name = \"client\"\nurl = \"http://x\"\ncredentials = \"per_person_token\"",
        ] {
            assert!(
                matches!(parse(bad).validate(), Err(ConfigError::PerPerson(_))),
                "{bad}"
            );
        }
        let oauth = parse(
            "name = \"a\"\nurl = \"https://x/mcp\"\ncredentials = \"oauth\"\noauth_client_id = \"c\"\noauth_client_secret_env = \"S\"\noauth_scopes = [\"repo\"]",
        );
        oauth.validate().unwrap();
        assert_eq!(oauth.credentials, CredentialsMode::OAuth);
        let exchange = parse(
            "name = \"a\"\nurl = \"https://x/mcp\"\ncredentials = \"token_exchange\"\noauth_client_id = \"c\"\noauth_client_secret_env = \"S\"\noauth_issuer = \"https://as\"",
        );
        exchange.validate().unwrap();
        assert!(matches!(
            parse("name = \"a\"\nurl = \"https://x/mcp\"\ncredentials = \"token_exchange\"")
                .validate(),
            Err(ConfigError::PerPerson(_))
        ));
    }

    #[test]
    fn unlisted_tools_are_denied_by_default() {
        let u = parse("name = \"a\"\nurl = \"http://x\"");
        assert!(u.policy().decide("anything", None).denied);
    }
}
