//! Which headers cross the gateway. Toward the upstream, an allow-list: the headers
//! Streamable HTTP defines, content negotiation and trace context, and what the
//! operator adds per upstream (`forward_headers`); everything else a client sends
//! stays here, its credentials (MCP "Access Token Privilege Restriction": no token
//! passthrough) and any header that could pass for the gateway's own identity headers
//! (`X-Forwarded-User`, `X_Forwarded_User`, `X-Remote-User`, whatever a server behind
//! some proxy trusts) included. Toward the client, the upstream's cookies and
//! challenges never pass (they would speak for this origin), nor do hop-by-hop headers
//! (RFC 9110 §7.6.1).

use http::{HeaderMap, HeaderName, header};

/// Whether a request header is forwarded to every upstream: what the MCP transport defines
/// (`Mcp-Session-Id`, `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`, the
/// `Mcp-Param-*` headers of `x-mcp-header` tool parameters, `Last-Event-ID`), the
/// message's own framing and negotiation (`Content-Type`, `Accept`,
/// `Accept-Language`, `User-Agent`) and W3C trace context. Not `Accept-Encoding`: a
/// compressed answer could not be narrowed to the caller's scopes.
fn forwarded(name: &str) -> bool {
    matches!(
        name,
        "accept"
            | "accept-language"
            | "content-type"
            | "user-agent"
            | "mcp-session-id"
            | "mcp-protocol-version"
            | "mcp-method"
            | "mcp-name"
            | "last-event-id"
            | "traceparent"
            | "tracestate"
    )
}

/// The prefix of the `x-mcp-header` parameter headers (MCP transport, "Custom Headers
/// from Tool Parameters").
const PARAM_PREFIX: &str = "mcp-param-";

/// Names an operator may not add to an upstream's allow-list: credentials, cookies,
/// and anything that names a caller or a route (identity headers are the gateway's to
/// set, from the authenticated principal).
pub fn never_forwarded(name: &str) -> bool {
    let n = name.to_ascii_lowercase().replace('_', "-");
    framing_or_hop(&n)
        || matches!(
            n.as_str(),
            "authorization"
                | "proxy-authorization"
                | "cookie"
                | "host"
                | "forwarded"
                | "origin"
                | "referer"
                | "x-real-ip"
                | "accept-encoding"
        )
        || n.starts_with("x-forwarded-")
        || n.starts_with("x-remote-")
        || n.starts_with("x-auth")
        || n.starts_with("x-user")
        || n.starts_with("proxy-")
}

/// Headers of one connection, not of the message (RFC 9110 §7.6.1), and the framing
/// the other side's connection sets itself: dropped in both directions.
fn framing_or_hop(n: &str) -> bool {
    matches!(
        n,
        "content-length"
            | "connection"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// A response header never returned (besides those named by `Connection`). The
/// gateway's own CORS layer decides the `access-control-*` ones.
fn dropped_response(name: &HeaderName) -> bool {
    let n = name.as_str();
    framing_or_hop(n)
        || matches!(n, "set-cookie" | "www-authenticate")
        || n.starts_with("access-control-")
}

fn named_by_connection(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect()
}

/// Removes, in one pass over the names, those `drop` picks and those the message's
/// `Connection` header names (hop-by-hop, RFC 9110 §7.6.1).
fn strip(headers: &mut HeaderMap, drop: fn(&HeaderName) -> bool) {
    let extra = named_by_connection(headers);
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|k| drop(k) || extra.contains(k))
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
}

/// The headers of a client request the upstream may see: those [`forwarded`] names,
/// `Mcp-Param-*`, and the upstream's own `extra` (lower-case names, checked against
/// [`never_forwarded`] when the configuration was read).
pub fn for_upstream(headers: &HeaderMap, extra: &[HeaderName]) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(headers.keys_len().min(16));
    for (name, value) in headers {
        let n = name.as_str();
        if forwarded(n)
            || n.starts_with(PARAM_PREFIX)
            || (!extra.is_empty() && extra.contains(name))
        {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// Cleans an upstream response's headers in place.
pub fn for_client(headers: &mut HeaderMap) {
    strip(headers, dropped_response);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_allowed_headers_reach_the_upstream() {
        let mut h = HeaderMap::new();
        for (n, v) in [
            ("authorization", "Bearer secret"),
            ("Cookie", "s=1"),
            ("x-forwarded-user", "admin"),
            ("X_Forwarded_User", "admin"),
            ("X-Remote-User", "admin"),
            ("X-Forwarded-Scopes", "all"),
            ("connection", "keep-alive, x-custom"),
            ("x-custom", "1"),
            ("x-tenant", "acme"),
            ("proxy-authorization", "Basic x"),
            ("accept-encoding", "gzip"),
            ("mcp-session-id", "abc"),
            ("mcp-protocol-version", "2025-11-25"),
            ("mcp-param-region", "eu"),
            ("accept", "application/json, text/event-stream"),
            ("last-event-id", "7"),
        ] {
            h.append(
                HeaderName::from_bytes(n.to_ascii_lowercase().as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let out = for_upstream(&h, &[HeaderName::from_static("x-tenant")]);
        let mut names: Vec<_> = out.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "accept",
                "last-event-id",
                "mcp-param-region",
                "mcp-protocol-version",
                "mcp-session-id",
                "x-tenant"
            ]
        );
        assert!(for_upstream(&h, &[]).get("x-tenant").is_none());
    }

    #[test]
    fn an_operator_cannot_forward_credentials_or_identity_headers() {
        for n in [
            "Authorization",
            "cookie",
            "X-Forwarded-User",
            "x_forwarded_email",
            "X-Remote-User",
            "x-user-id",
            "x-auth-request-user",
            "host",
            "transfer-encoding",
        ] {
            assert!(never_forwarded(n), "{n}");
        }
        for n in ["x-tenant", "x-request-id", "baggage"] {
            assert!(!never_forwarded(n), "{n}");
        }
    }

    #[test]
    fn upstream_cookies_and_challenges_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert("set-cookie", "a=b".parse().unwrap());
        h.insert("www-authenticate", "Bearer".parse().unwrap());
        h.insert("access-control-allow-origin", "*".parse().unwrap());
        h.insert("access-control-expose-headers", "x".parse().unwrap());
        h.insert("connection", "close, x-hop".parse().unwrap());
        h.insert("x-hop", "1".parse().unwrap());
        h.insert("content-length", "2".parse().unwrap());
        h.insert("mcp-session-id", "s".parse().unwrap());
        for_client(&mut h);
        assert_eq!(h.keys().collect::<Vec<_>>(), ["mcp-session-id"]);
    }
}
