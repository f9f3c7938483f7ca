//! Fetching Client ID Metadata Documents for the rules
//! ([`mcpgate_domain::flows::metadata_document`]). The URL is a stranger's choice, so
//! this is a server-side request forgery risk: the host is resolved first and every
//! address must be public (no loopback, private, link-local, shared or reserved
//! ranges); the connection is pinned to the vetted address; redirects are not
//! followed; 5 s timeout; the body is read up to
//! [`MAX_DOCUMENT_BYTES`](mcpgate_domain::flows::metadata_document::MAX_DOCUMENT_BYTES).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use async_trait::async_trait;
use mcpgate_domain::flows::metadata_document::MAX_DOCUMENT_BYTES;
use mcpgate_domain::ports::{DocumentError, DocumentFetcher, FetchedDocument};
use serde_json::Value;
use url::Url;

/// Which addresses a document may be fetched from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Reach {
    /// Public addresses only, over `https` (every deployment).
    #[default]
    Public,
    /// Loopback too, over plain `http`: for tests that serve documents on 127.0.0.1,
    /// chosen where a test assembles its server, never by configuration.
    LoopbackOverHttp,
}

#[derive(Default)]
pub struct Fetcher {
    reach: Reach,
}

impl Fetcher {
    pub fn new(reach: Reach) -> Self {
        Self { reach }
    }
}

#[async_trait]
impl DocumentFetcher for Fetcher {
    #[tracing::instrument(level = "debug", target = "mcpgate::outbound", name = "client metadata document",
        skip_all, fields(otel.kind = "client"))]
    async fn fetch(&self, client_id: &str) -> Result<FetchedDocument, DocumentError> {
        let url = Url::parse(client_id).map_err(|e| DocumentError::Fetch(e.to_string()))?;
        if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
            return Err(DocumentError::Invalid(
                "the client_id URL has credentials or a fragment".into(),
            ));
        }
        let host = url
            .host_str()
            .ok_or_else(|| DocumentError::Fetch("no host".into()))?
            .to_owned();
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs: Vec<SocketAddr> = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::lookup_host((host.as_str(), port)),
        )
        .await
        .map_err(|_| DocumentError::Fetch("DNS timeout".into()))?
        .map_err(|e| DocumentError::Fetch(format!("DNS: {e}")))?
        .collect();
        let addr = *addrs
            .first()
            .ok_or_else(|| DocumentError::Fetch("no address".into()))?;
        if self.reach == Reach::Public && addrs.iter().any(|a| !is_public(a.ip())) {
            return Err(DocumentError::Fetch(format!(
                "{host} resolves to a non-public address"
            )));
        }
        // No proxy from the environment: a proxy would resolve the host again and undo
        // the address check above (the request must go to the address just vetted).
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(5))
            .resolve(&host, addr)
            .build()
            .map_err(|e| DocumentError::Fetch(e.to_string()))?;
        let mut target = url.clone();
        if self.reach == Reach::LoopbackOverHttp {
            let _ = target.set_scheme("http");
        }
        let resp = http
            .get(target)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| DocumentError::Fetch(e.without_url().to_string()))?;
        read_json(resp).await
    }

    async fn fetch_configured(&self, url: &str) -> Result<FetchedDocument, DocumentError> {
        self.fetch_any(url).await
    }
}

impl Fetcher {
    /// A JSON document at a URL the operator configured: any address (an
    /// organisation's identity provider may be internal), `https` or loopback `http`;
    /// no redirects, 5 s, bounded body.
    async fn fetch_any(&self, url: &str) -> Result<FetchedDocument, DocumentError> {
        let u = Url::parse(url).map_err(|e| DocumentError::Fetch(e.to_string()))?;
        let loopback = u
            .host_str()
            .is_some_and(|h| h == "localhost" || h == "127.0.0.1" || h == "[::1]");
        if u.scheme() != "https" && !(u.scheme() == "http" && loopback) {
            return Err(DocumentError::Invalid("not an https URL".into()));
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| DocumentError::Fetch(e.to_string()))?;
        let resp = http
            .get(u)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| DocumentError::Fetch(e.without_url().to_string()))?;
        read_json(resp).await
    }
}

/// The body of a successful answer as JSON, bounded, with its `max-age`.
async fn read_json(mut resp: reqwest::Response) -> Result<FetchedDocument, DocumentError> {
    if !resp.status().is_success() {
        return Err(DocumentError::Fetch(format!("HTTP {}", resp.status())));
    }
    let max_age = resp
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .find_map(|d| d.trim().strip_prefix("max-age="))
                .and_then(|n| n.parse::<i64>().ok())
        });
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| DocumentError::Fetch(e.without_url().to_string()))?
    {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(DocumentError::Invalid(format!(
                "larger than {MAX_DOCUMENT_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| DocumentError::Invalid(format!("not JSON: {e}")))?;
    Ok(FetchedDocument { body, max_age })
}

/// Addresses a server must never be made to call.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_unspecified() || v4.is_broadcast()
                || v4.is_multicast() || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))   // shared address space (RFC 6598)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)      // IETF protocol assignments
                || (o[0] == 198 && (o[1] == 18 || o[1] == 19))  // benchmarking
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            let embedded = |hi: u16, lo: u16| {
                is_public(IpAddr::V4(std::net::Ipv4Addr::from(
                    (u32::from(hi) << 16) | u32::from(lo),
                )))
            };
            // Addresses that carry an IPv4 address reach it: judge that one.
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return embedded(s[6], s[7]); // NAT64 (RFC 6052)
            }
            if s[0] == 0x2002 {
                return embedded(s[1], s[2]); // 6to4 (RFC 3056)
            }
            !(s[..6] == [0; 6]                  // ::/96: unspecified, loopback, IPv4-compatible
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00     // unique local
                || (s[0] & 0xffc0) == 0xfe80     // link local
                || (s[0] == 0x64 && s[1] == 0xff9b) // local-use NAT64 (RFC 8215)
                || (s[0] == 0x2001 && s[1] == 0)  // Teredo: hides the address it reaches
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x100 && s[1..4] == [0; 3])) // discard-only (RFC 6666)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_fetched() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b::7f00:1",
            "64:ff9b:1::1",
            "2002:c0a8:101::1",
            "2001:0:4136:e378::1",
            "100::1",
            "240.0.0.1",
        ] {
            assert!(!is_public(bad.parse().unwrap()), "{bad}");
        }
        for good in [
            "1.1.1.1",
            "160.79.104.10",
            "2606:4700::1111",
            "64:ff9b::101:101",
            "2002:101:101::1",
        ] {
            assert!(is_public(good.parse().unwrap()), "{good}");
        }
    }
}
