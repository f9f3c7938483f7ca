//! Which headers cross the gateway. The client's credentials never reach the upstream
//! (MCP "Access Token Privilege Restriction": no token passthrough), nor do hop-by-hop
//! headers (RFC 9110 §7.6.1) or identity headers a client could forge; the upstream's
//! cookies and challenges never reach the client (they would speak for this origin).

use http::{HeaderMap, HeaderName, header};

/// Request headers never forwarded, besides those named by `Connection`.
const DROP_REQUEST: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "forwarded",
    "x-real-ip",
    // Checked here against this deployment; the upstream would see a foreign origin.
    "origin",
    "referer",
];

/// Response headers never returned, besides those named by `Connection`.
const DROP_RESPONSE: &[&str] = &[
    "set-cookie",
    "www-authenticate",
    "content-length",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn named_by_connection(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect()
}

/// The headers of a client request as the upstream may see them.
pub fn for_upstream(incoming: &HeaderMap) -> HeaderMap {
    let extra = named_by_connection(incoming);
    let mut out = HeaderMap::with_capacity(incoming.len());
    for (name, value) in incoming {
        let n = name.as_str();
        if DROP_REQUEST.contains(&n)
            || n.starts_with("x-forwarded-")
            || n.starts_with("proxy-")
            || extra.contains(name)
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// Cleans an upstream response's headers in place.
pub fn for_client(headers: &mut HeaderMap) {
    for name in named_by_connection(headers) {
        headers.remove(name);
    }
    for n in DROP_RESPONSE {
        headers.remove(*n);
    }
    // The gateway's own CORS layer decides these.
    let cors: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    for n in cors {
        headers.remove(n);
    }
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
        let out = for_upstream(&h);
        let names: Vec<_> = out.keys().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "mcp-session-id",
                "mcp-protocol-version",
                "accept",
                "last-event-id"
            ]
        );
    }

    #[test]
    fn upstream_cookies_and_challenges_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert("set-cookie", "a=b".parse().unwrap());
        h.insert("www-authenticate", "Bearer".parse().unwrap());
        h.insert("access-control-allow-origin", "*".parse().unwrap());
        h.insert("mcp-session-id", "s".parse().unwrap());
        for_client(&mut h);
        assert_eq!(h.len(), 1);
    }
}
