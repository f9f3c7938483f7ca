//! Redirect URIs: what may be registered, and how a request's URI matches.
//!
//! - Registration: `https`, `http` on a loopback host (RFC 8252 §7.3), or a private-use
//!   scheme of a native app (RFC 8252 §7.1, e.g. Cursor's `cursor://`); never a fragment
//!   (RFC 6749 §3.1.2); and the URI must be on the operator's allow-list of MCP clients.
//! - Matching: exact string comparison (OAuth 2.1 §4.1.1, MCP "Open Redirection"),
//!   except that a loopback redirect matches on any port (RFC 8252 §7.3), because
//!   native clients bind a free port per run.

use url::Url;

/// Longest redirect URI accepted.
pub const MAX_REDIRECT_URI_LEN: usize = 2000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectError {
    #[error("redirect_uri {0:?} is not an absolute URI")]
    NotAbsolute(String),
    #[error("redirect_uri {0:?} has a fragment, which RFC 6749 §3.1.2 forbids")]
    Fragment(String),
    #[error(
        "redirect_uri {0:?} must use https, http on a loopback address, or a private-use scheme"
    )]
    Scheme(String),
    #[error(
        "redirect_uri {0:?} is for an app on the person's device (loopback or a private-use scheme); a client with application_type \"web\" must use https on its own host (register as \"native\")"
    )]
    NotForWeb(String),
    #[error("redirect_uri is longer than {MAX_REDIRECT_URI_LEN} characters")]
    TooLong,
    #[error(
        "redirect_uri {0:?} is not on this server's list of allowed MCP clients; an operator can allow it with `mcpgate clients allowed add URI`"
    )]
    NotAllowed(String),
}

/// True for `localhost`, `127.0.0.0/8` and `[::1]`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Checks the form of a redirect URI (not the allow-list).
pub fn validate_form(uri: &str) -> Result<Url, RedirectError> {
    if uri.len() > MAX_REDIRECT_URI_LEN {
        return Err(RedirectError::TooLong);
    }
    // RFC 3986 §2 allows none of these in a URI; a browser drops or rewrites them, so
    // the URI stored would not be the one followed (found by the registration
    // property test: `http://127.0.0.1/<TAB>` was accepted).
    if has_unsafe_chars(uri) {
        return Err(RedirectError::NotAbsolute(short(uri)));
    }
    let url = Url::parse(uri).map_err(|_| RedirectError::NotAbsolute(short(uri)))?;
    if url.fragment().is_some() || uri.contains('#') {
        return Err(RedirectError::Fragment(short(uri)));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        // Dangerous schemes a browser would execute or that carry no app identity.
        "http" | "javascript" | "data" | "file" | "vbscript" | "about" | "blob" | "ftp" | "ws"
        | "wss" => {
            return Err(RedirectError::Scheme(short(uri)));
        }
        // Private-use schemes (RFC 8252 §7.1) must look like reverse domain names.
        s if s.contains('.') || url.host_str().is_some() => {}
        _ => return Err(RedirectError::Scheme(short(uri))),
    }
    Ok(url)
}

/// A client's `application_type` (OpenID Connect Dynamic Client Registration §2, which
/// MCP 2026-07-28 asks clients to send): what kind of redirect each kind may register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplicationType {
    /// A web application on a host of its own: `https` redirects, never to loopback
    /// and never to a private-use scheme, which only an app on the person's device
    /// could receive.
    Web,
    /// An app on the person's device: loopback `http` (RFC 8252 §7.3), a private-use
    /// scheme (§7.1) or a claimed `https` URI (§7.2), as every form rule allows.
    Native,
}

impl ApplicationType {
    /// `None` for a value other than the two OpenID Connect defines.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "web" => Some(Self::Web),
            "native" => Some(Self::Native),
            _ => None,
        }
    }

    /// Checks a redirect URI that passed [`validate_form`] against this kind.
    pub fn check(self, uri: &Url) -> Result<(), RedirectError> {
        match self {
            Self::Native => Ok(()),
            Self::Web if uri.scheme() == "https" && !is_loopback(uri) => Ok(()),
            Self::Web => Err(RedirectError::NotForWeb(short(uri.as_str()))),
        }
    }
}

/// Whitespace, control characters or backslashes: never part of a URI as written.
fn has_unsafe_chars(s: &str) -> bool {
    s.chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
}

fn short(s: &str) -> String {
    s.chars().take(200).collect()
}

/// Does `requested` match the registered `registered`? Exact, except the port of a
/// loopback `http` URI (RFC 8252 §7.3).
pub fn matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    // Parsing drops tabs and newlines and reads `\` as `/` (WHATWG URL), so a string
    // holding them would match as the URI it becomes rather than the one written.
    if has_unsafe_chars(requested) {
        return false;
    }
    let (Ok(r), Ok(q)) = (Url::parse(registered), Url::parse(requested)) else {
        return false;
    };
    r.scheme() == "http"
        && q.scheme() == "http"
        && is_loopback(&r)
        && r.host() == q.host()
        && r.path() == q.path()
        && r.query() == q.query()
        && r.fragment().is_none()
        && q.fragment().is_none()
        && r.username() == q.username()
        && r.password().is_none()
        && q.password().is_none()
}

/// A preset of the allow-list: the redirect URIs one AI client uses.
#[derive(Debug, Clone, Copy)]
pub struct Preset {
    pub name: &'static str,
    pub title: &'static str,
    pub redirect_uris: &'static [&'static str],
}

/// Redirect URIs of the AI clients people use (see shared SPEC "Real clients").
/// Loopback entries match any port.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "claude",
        title: "Claude (claude.ai, Desktop, mobile)",
        redirect_uris: &[
            "https://claude.ai/api/mcp/auth_callback",
            "https://claude.com/api/mcp/auth_callback",
        ],
    },
    Preset {
        name: "claude-code",
        title: "Claude Code",
        redirect_uris: &["http://localhost/callback", "http://127.0.0.1/callback"],
    },
    Preset {
        name: "chatgpt",
        title: "ChatGPT",
        redirect_uris: &["https://chatgpt.com/connector_platform_oauth_redirect"],
    },
    Preset {
        name: "codex",
        title: "Codex CLI",
        redirect_uris: &["http://127.0.0.1/callback", "http://localhost/callback"],
    },
    Preset {
        name: "cursor",
        title: "Cursor",
        redirect_uris: &[
            "cursor://anysphere.cursor-mcp/oauth/callback",
            "https://www.cursor.com/agents/mcp/oauth/callback",
            "http://localhost:8787/callback",
        ],
    },
    Preset {
        name: "vscode",
        title: "VS Code",
        redirect_uris: &[
            "https://vscode.dev/redirect",
            "https://insiders.vscode.dev/redirect",
            "http://127.0.0.1/",
            "http://127.0.0.1:33418/",
        ],
    },
    Preset {
        name: "gemini-cli",
        title: "Gemini CLI",
        redirect_uris: &["http://localhost:7777/oauth/callback"],
    },
    Preset {
        name: "zed",
        title: "Zed",
        redirect_uris: &["http://127.0.0.1/callback"],
    },
    Preset {
        name: "opencode",
        title: "OpenCode",
        redirect_uris: &["http://127.0.0.1/callback", "http://localhost/callback"],
    },
    Preset {
        name: "mcp-inspector",
        title: "MCP Inspector",
        redirect_uris: &[
            "http://localhost:6274/oauth/callback",
            "http://localhost:6274/oauth/callback/debug",
            "http://127.0.0.1:6276/oauth/callback",
        ],
    },
];

pub fn preset(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}

/// One entry of the operator's allow-list: a preset (a well-known AI client's
/// redirect URIs, by name) or one custom URI. Stored as `preset:<name>` or the URI
/// itself; [`AllowEntry::parse`] and [`AllowEntry::stored`] are the only places that
/// know the prefix (a URI never begins with `preset:`, which is not a scheme we accept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowEntry {
    Preset(String),
    Uri(String),
}

impl AllowEntry {
    const PRESET: &str = "preset:";

    pub fn parse(stored: &str) -> Self {
        match stored.strip_prefix(Self::PRESET) {
            Some(name) => Self::Preset(name.to_owned()),
            None => Self::Uri(stored.to_owned()),
        }
    }

    /// The entry as the store keeps it.
    pub fn stored(&self) -> String {
        match self {
            Self::Preset(name) => format!("{}{name}", Self::PRESET),
            Self::Uri(uri) => uri.clone(),
        }
    }

    /// Stored entries split into the names of enabled presets and the custom URIs.
    pub fn partition(stored: &[String]) -> (Vec<String>, Vec<String>) {
        let (mut presets, mut uris) = (Vec::new(), Vec::new());
        for e in stored {
            match Self::parse(e) {
                Self::Preset(name) => presets.push(name),
                Self::Uri(uri) => uris.push(uri),
            }
        }
        (presets, uris)
    }

    /// True for a custom URI that would read back as a preset.
    pub fn looks_like_preset(uri: &str) -> bool {
        uri.starts_with(Self::PRESET)
    }
}

/// The operator's allow-list: enabled presets and custom URIs.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    uris: Vec<String>,
}

impl AllowList {
    /// Builds the list from stored entries (see [`AllowEntry`]).
    pub fn from_entries<'a>(entries: impl IntoIterator<Item = &'a str>) -> Self {
        let mut uris = Vec::new();
        for e in entries {
            match AllowEntry::parse(e) {
                AllowEntry::Preset(name) => {
                    if let Some(p) = preset(&name) {
                        uris.extend(p.redirect_uris.iter().map(|u| u.to_string()));
                    }
                }
                AllowEntry::Uri(uri) => uris.push(uri),
            }
        }
        Self { uris }
    }

    pub fn allows(&self, uri: &str) -> bool {
        self.uris.iter().any(|a| matches(a, uri))
    }

    /// Checks a redirect URI for registration: its form, then the allow-list.
    pub fn check(&self, uri: &str) -> Result<(), RedirectError> {
        validate_form(uri)?;
        if self.allows(uri) {
            Ok(())
        } else {
            Err(RedirectError::NotAllowed(short(uri)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REG: &str = "https://app.example.com/cb";

    #[test]
    fn exact_match_refuses_every_near_miss() {
        assert!(matches(REG, REG));
        for near in [
            "https://app.example.com/cb/",         // suffix
            "https://app.example.com/cb/extra",    // path extension
            "https://app.example.com/c",           // prefix
            "https://evil.app.example.com/cb",     // subdomain
            "https://app.example.com.evil.com/cb", // host suffix
            "https://app.example.com/CB",          // case in path
            "http://app.example.com/cb",           // scheme
            "https://app.example.com/cb#frag",     // fragment
            "https://app.example.com/cb?x=1",      // query
            "https://app.example.com:8443/cb",     // port on non-loopback
            "https://user@app.example.com/cb",     // userinfo
        ] {
            assert!(!matches(REG, near), "{near} must not match");
        }
    }

    /// Found by the registration property test: parsing drops tabs and reads `\` as
    /// `/`, so such strings were accepted as the URI they become.
    #[test]
    fn whitespace_controls_and_backslashes_are_never_a_redirect() {
        for bad in [
            "http://127.0.0.1/\t",
            "http://127.0.0.1/call\tback",
            "https://claude.ai/api/mcp/auth_callback\n",
            "http://127.0.0.1\\callback",
            "https://app.example.com/c b",
        ] {
            assert!(validate_form(bad).is_err(), "{bad:?}");
        }
        assert!(!matches(
            "http://127.0.0.1/callback",
            "http://127.0.0.1:5/call\tback"
        ));
        assert!(!matches(
            "http://127.0.0.1/callback",
            "http://127.0.0.1:5\\callback"
        ));
    }

    #[test]
    fn loopback_matches_any_port_only() {
        let reg = "http://127.0.0.1/callback";
        assert!(matches(reg, "http://127.0.0.1:33418/callback"));
        assert!(matches(reg, "http://127.0.0.1:1/callback"));
        assert!(!matches(reg, "http://127.0.0.1:33418/callback/x"));
        assert!(!matches(reg, "http://localhost:33418/callback"));
        assert!(!matches(reg, "https://127.0.0.1:33418/callback"));
        assert!(!matches(reg, "http://127.0.0.1:33418/callback?x"));
    }

    #[test]
    fn form_rules() {
        assert!(validate_form("https://claude.ai/api/mcp/auth_callback").is_ok());
        assert!(validate_form("http://127.0.0.1:9/cb").is_ok());
        assert!(validate_form("cursor://anysphere.cursor-mcp/oauth/callback").is_ok());
        assert!(matches!(
            validate_form("http://example.com/cb"),
            Err(RedirectError::Scheme(_))
        ));
        assert!(matches!(
            validate_form("javascript:alert(1)"),
            Err(RedirectError::Scheme(_))
        ));
        assert!(matches!(
            validate_form("https://a.example/cb#x"),
            Err(RedirectError::Fragment(_))
        ));
        assert!(matches!(
            validate_form("/relative"),
            Err(RedirectError::NotAbsolute(_))
        ));
        assert!(matches!(
            validate_form(&format!("https://a.example/{}", "x".repeat(2001))),
            Err(RedirectError::TooLong)
        ));
    }

    #[test]
    fn allow_list_presets_and_custom_entries() {
        let list = AllowList::from_entries([
            "preset:cursor",
            "preset:claude-code",
            "https://mine.example/cb",
        ]);
        for ok in [
            "cursor://anysphere.cursor-mcp/oauth/callback",
            "https://www.cursor.com/agents/mcp/oauth/callback",
            "http://localhost:8787/callback",
            "http://localhost:51234/callback",
            "https://mine.example/cb",
        ] {
            assert!(list.check(ok).is_ok(), "{ok}");
        }
        assert!(matches!(
            list.check("https://claude.ai/api/mcp/auth_callback"),
            Err(RedirectError::NotAllowed(_))
        ));
        assert!(matches!(
            list.check("https://mine.example/cb2"),
            Err(RedirectError::NotAllowed(_))
        ));
    }
}
