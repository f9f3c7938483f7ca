//! Resource indicators (RFC 8707) and the canonical form of an MCP server's URI.

use url::Url;

/// Canonical form (MCP "Canonical Server URI"): lowercase scheme and host (the URL
/// parser does both), default port dropped, no fragment, no trailing slash.
pub fn canonicalize(uri: &str) -> Option<String> {
    let mut url = Url::parse(uri).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return None;
    }
    url.set_fragment(None);
    let s = url.as_str();
    Some(if url.query().is_none() {
        s.trim_end_matches('/').to_owned()
    } else {
        s.to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms() {
        assert_eq!(
            canonicalize("HTTPS://Calc.Example:443/mcp/").as_deref(),
            Some("https://calc.example/mcp")
        );
        assert_eq!(
            canonicalize("http://127.0.0.1:8080/mcp").as_deref(),
            Some("http://127.0.0.1:8080/mcp")
        );
        assert_eq!(
            canonicalize("http://127.0.0.1:8080/mcp#x").as_deref(),
            Some("http://127.0.0.1:8080/mcp")
        );
        assert_eq!(canonicalize("urn:x"), None);
    }
}
