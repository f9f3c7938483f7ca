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

/// A `resource` parameter as a client sends it (RFC 8707 §2): an absolute URI without
/// a fragment, in canonical form. `None` means `invalid_target`: a fragment or a
/// relative value is refused, not repaired, so the same request gets the same answer at
/// `/authorize` and `/token`.
pub fn indicator(raw: &str) -> Option<String> {
    if raw.contains('#') || raw.chars().any(|c| c.is_control() || c == ' ') {
        return None;
    }
    canonicalize(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indicators_with_fragments_or_relative_are_refused() {
        assert_eq!(
            indicator("http://127.0.0.1:8080/mcp").as_deref(),
            Some("http://127.0.0.1:8080/mcp")
        );
        for bad in [
            "http://127.0.0.1:8080/mcp#x",
            "http://127.0.0.1:8080/mcp#",
            "/mcp",
            "mcp",
            "//127.0.0.1:8080/mcp",
            "",
            "http://127.0.0.1:8080/mcp\t",
            "urn:x",
        ] {
            assert_eq!(indicator(bad), None, "{bad:?}");
        }
    }

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
