//! Which address a request came from when it passed through reverse proxies.
//!
//! Forwarding headers are written by whoever sent the request, so they are believed
//! only as far as the hops that wrote them are trusted: when the TCP peer is in the
//! operator's `--trusted-proxies` list, the hops named by `Forwarded` (RFC 7239 §4,
//! the `for=` parameter) or, without it, `X-Forwarded-For` are read from the right
//! (the hop nearest to us) and the first address that is not a trusted proxy is the
//! client. A peer outside the list, or no list at all (the default), means the
//! headers are ignored and the peer is the client, so nobody can pick their own
//! rate-limit bucket by sending a header.
//!
//! A trusted proxy must set (or overwrite) the header it uses: `Forwarded` wins when
//! both are present. A hop that cannot be read (`unknown`, an obfuscated identifier,
//! garbage) stops the walk at the last address that could be read, which is then a
//! trusted proxy: the request is counted against that proxy rather than against an
//! address the sender chose.

use std::net::IpAddr;

use http::HeaderMap;
pub use ipnet::IpNet;

/// Most hops read from the forwarding headers (the rest are ignored).
const MAX_HOPS: usize = 32;

/// The client's address: `peer` unless `peer` is a trusted proxy and the forwarding
/// headers name an earlier hop.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(&canonical(*ip)));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops = match forwarded_hops(headers) {
        Some(h) => h,
        None => x_forwarded_for_hops(headers),
    };
    let mut client = peer;
    for hop in hops.into_iter().rev().take(MAX_HOPS) {
        let Some(ip) = hop else {
            return client;
        };
        client = ip;
        if !is_trusted(&ip) {
            return ip;
        }
    }
    client
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a dual-stack socket reports)
/// compared as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The `for=` of each element of every `Forwarded` header, in order (None for a hop
/// that is not an address); None when there is no `Forwarded` header.
fn forwarded_hops(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let mut values = headers.get_all(http::header::FORWARDED).iter().peekable();
    values.peek()?;
    let mut hops = Vec::new();
    for v in values {
        let Ok(v) = v.to_str() else {
            hops.push(None);
            continue;
        };
        for element in v.split(',') {
            let node = element.split(';').find_map(|pair| {
                let (k, val) = pair.split_once('=')?;
                k.trim().eq_ignore_ascii_case("for").then(|| val.trim())
            });
            hops.push(node.and_then(parse_node));
        }
    }
    Some(hops)
}

/// The comma-separated hops of every `X-Forwarded-For` header, in order.
fn x_forwarded_for_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| match v.to_str() {
            Ok(v) => v.split(',').map(|h| parse_node(h.trim())).collect(),
            Err(_) => vec![None],
        })
        .collect()
}

/// An RFC 7239 §6 node: `192.0.2.1`, `192.0.2.1:8080`, `"[2001:db8::1]:4711"`,
/// `[2001:db8::1]`, or a bare IPv6 address (common in `X-Forwarded-For`).
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim();
    let node = node
        .strip_prefix('"')
        .and_then(|n| n.strip_suffix('"'))
        .unwrap_or(node);
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Some(rest) = node.strip_prefix('[') {
        let (addr, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.starts_with(':')) {
            return None;
        }
        return addr
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .map(|v6| canonical(IpAddr::V6(v6)));
    }
    let (addr, port) = node.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    addr.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// Parses a comma- or space-separated CIDR list (`10.0.0.0/8, ::1`); a bare address
/// is a /32 or /128.
pub fn parse_cidrs(list: &str) -> Result<Vec<IpNet>, String> {
    list.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(parse_cidr)
        .collect()
}

/// One CIDR block or address.
pub fn parse_cidr(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map(|n| n.trunc())
        .map_err(|_| format!("{s:?} is not a CIDR block (such as 10.0.0.0/8) or an address"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_bytes(v.as_bytes()).unwrap(),
            );
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies() -> Vec<IpNet> {
        parse_cidrs("10.0.0.0/8, 127.0.0.1").unwrap()
    }

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored() {
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.7"),
            ("forwarded", "for=198.51.100.8"),
        ]);
        assert_eq!(
            client_address(ip("203.0.113.1"), &h, &proxies()),
            ip("203.0.113.1")
        );
        // no list: nothing is trusted, not even loopback
        assert_eq!(client_address(ip("127.0.0.1"), &h, &[]), ip("127.0.0.1"));
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        // the client claims to be 1.1.1.1; the proxy at 10.0.0.2 appended the real one
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 198.51.100.7, 10.0.0.2")]);
        assert_eq!(
            client_address(ip("10.0.0.1"), &h, &proxies()),
            ip("198.51.100.7")
        );
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        assert_eq!(
            client_address(ip("10.0.0.1"), &h, &proxies()),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn forwarded_is_read_per_rfc_7239_and_wins_over_x_forwarded_for() {
        let h = headers(&[
            (
                "forwarded",
                r#"for=1.1.1.1;proto=https, For="[2001:db8:cafe::17]:4711";by=10.0.0.3"#,
            ),
            ("x-forwarded-for", "198.51.100.9"),
        ]);
        assert_eq!(
            client_address(ip("10.0.0.1"), &h, &proxies()),
            ip("2001:db8:cafe::17")
        );
        let h = headers(&[("forwarded", "for=192.0.2.43:8080")]);
        assert_eq!(
            client_address(ip("10.0.0.1"), &h, &proxies()),
            ip("192.0.2.43")
        );
    }

    #[test]
    fn unreadable_hops_stop_at_the_last_address_read() {
        for garbage in [
            "unknown",
            "_hidden",
            "not an ip",
            "",
            "[::1",
            "1.2.3.4:99999",
            "\"\"",
        ] {
            let h = headers(&[("x-forwarded-for", &format!("{garbage}, 10.0.0.9"))]);
            assert_eq!(
                client_address(ip("10.0.0.1"), &h, &proxies()),
                ip("10.0.0.9"),
                "{garbage:?}"
            );
            let h = headers(&[("forwarded", &format!("for={garbage}"))]);
            assert_eq!(
                client_address(ip("10.0.0.1"), &h, &proxies()),
                ip("10.0.0.1")
            );
        }
        let h = headers(&[("forwarded", "proto=https")]);
        assert_eq!(
            client_address(ip("10.0.0.1"), &h, &proxies()),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn mapped_addresses_compare_as_ipv4() {
        let h = headers(&[("x-forwarded-for", "::ffff:198.51.100.7")]);
        assert_eq!(
            client_address(ip("::ffff:10.0.0.1"), &h, &proxies()),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn cidr_lists_parse_and_refuse_garbage() {
        assert_eq!(parse_cidrs("").unwrap(), vec![]);
        assert_eq!(parse_cidrs("10.1.2.3/8 ::1").unwrap().len(), 2);
        assert_eq!(
            parse_cidrs("10.1.2.3/8").unwrap()[0].to_string(),
            "10.0.0.0/8"
        );
        for bad in ["10.0.0.0/33", "example.com", "10.0.0.0/", "1.2.3"] {
            assert!(parse_cidrs(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #![proptest_config(crate::proptest_cases())]
        /// Whatever the headers say, the answer is the peer or an address they name,
        /// and an untrusted peer is always itself. (No colons: an IPv4 address prints
        /// as it was written, so "named" is a substring test.)
        #[test]
        fn any_header_yields_the_peer_or_a_named_address(xff in "[^:]{0,80}", fwd in "[^:]{0,80}", last in 0u8..4) {
            let mut h = HeaderMap::new();
            if let Ok(v) = http::HeaderValue::from_str(&xff) { h.insert("x-forwarded-for", v); }
            if let Ok(v) = http::HeaderValue::from_str(&fwd) { h.insert("forwarded", v); }
            let peer = IpAddr::from([10, 0, 0, last]);
            let got = client_address(peer, &h, &proxies());
            prop_assert!(got == peer || xff.contains(&got.to_string()) || fwd.to_lowercase().contains(&got.to_string()));
            prop_assert_eq!(client_address(ip("203.0.113.1"), &h, &proxies()), ip("203.0.113.1"));
        }
    }
}
