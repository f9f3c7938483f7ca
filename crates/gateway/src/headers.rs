//! Which headers cross the gateway. The client's credentials never reach the upstream
//! (MCP "Access Token Privilege Restriction": no token passthrough), nor do hop-by-hop
//! headers (RFC 9110 §7.6.1) or identity headers a client could forge; the upstream's
//! cookies and challenges never reach the client (they would speak for this origin).

use http::{HeaderMap, HeaderName, header};

/// A request header never forwarded (besides those named by `Connection`).
fn dropped_request(name: &HeaderName) -> bool {
    let n = name.as_str();
    framing_or_hop(n)
        || matches!(
            n,
            "authorization"
                | "proxy-authorization"
                | "cookie"
                | "host"
                | "forwarded"
                | "x-real-ip"
                // Checked here against this deployment; the upstream would see a foreign origin.
                | "origin"
                | "referer"
        )
        || n.starts_with("x-forwarded-")
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

/// Cleans a client request's headers in place, to what the upstream may see. In
/// place: the request's own map goes on to the upstream, with no copy.
pub fn for_upstream(headers: &mut HeaderMap) {
    strip(headers, dropped_request);
}

/// Cleans an upstream response's headers in place.
pub fn for_client(headers: &mut HeaderMap) {
    strip(headers, dropped_response);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_hop_by_hop_are_dropped() {
        let mut h = HeaderMap::new();
        for (n, v) in [
            ("authorization", "Bearer secret"),
            ("Cookie", "s=1"),
            ("x-forwarded-user", "admin"),
            ("X-Forwarded-Scopes", "all"),
            ("connection", "keep-alive, x-custom"),
            ("x-custom", "1"),
            ("proxy-authorization", "Basic x"),
            ("mcp-session-id", "abc"),
            ("mcp-protocol-version", "2025-11-25"),
            ("accept", "application/json, text/event-stream"),
            ("last-event-id", "7"),
        ] {
            h.append(
                HeaderName::from_bytes(n.to_ascii_lowercase().as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        for_upstream(&mut h);
        // Which names remain, not their order (removal may reorder the map).
        let mut names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "accept",
                "last-event-id",
                "mcp-protocol-version",
                "mcp-session-id"
            ]
        );
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
