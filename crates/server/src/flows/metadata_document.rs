//! Client ID Metadata Documents (MCP "Client Registration"; draft-ietf-oauth-client-id-
//! metadata-document): a `client_id` that is an `https` URL with a path names a JSON
//! document, published by the client, that describes it.
//!
//! Fetching a URL chosen by a stranger is a server-side request forgery risk, so:
//! the host is resolved first and every address must be public (no loopback, private,
//! link-local, shared or reserved ranges); the connection is pinned to the vetted
//! address; redirects are not followed; 5 s timeout; 64 KiB cap. The document must
//! name itself (`client_id` equal to the URL, exactly), carry `client_name` and
//! `redirect_uris`, and every redirect URI must pass the allow-list. Documents are
//! cached per `Cache-Control: max-age` (clamped to 5 minutes … 1 day).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use mcpgate_core::redirect_uri::AllowList;
use mcpgate_core::{OAuthError, ScopeSet};
use mcpgate_store::{AuthMethod, Client, ClientKind};
use serde_json::{Value, json};
use url::Url;

use super::register::{allow_list, check_redirects, clean_name};
use crate::state::AuthServer;

const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
const MIN_CACHE_SECS: i64 = 300;
const MAX_CACHE_SECS: i64 = 86_400;

/// Is this `client_id` a metadata document URL?
pub fn is_document_url(client_id: &str) -> bool {
    Url::parse(client_id)
        .is_ok_and(|u| u.scheme() == "https" && u.path() != "/" && !u.path().is_empty())
}

/// Why a document could not be used; shown on the error page.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("the client's metadata document could not be fetched: {0}")]
    Fetch(String),
    #[error("the client's metadata document is not valid: {0}")]
    Invalid(String),
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

/// The client for a document URL: from the store while fresh, else fetched.
pub async fn client_for(s: &AuthServer, client_id: &str) -> Result<Client, DocumentError> {
    let now = s.now();
    if let Ok(Some(c)) = s.store.client(client_id).await
        && c.kind == ClientKind::MetadataDocument
        && c.metadata
            .get("mcpgate_fetched_until")
            .and_then(Value::as_i64)
            .is_some_and(|u| u > now)
    {
        return Ok(c);
    }
    let (doc, max_age) = fetch(s, client_id).await?;
    let client = validate(s, client_id, &doc, now + max_age).await?;
    s.store
        .upsert_document_client(&client)
        .await
        .map_err(|e| DocumentError::Fetch(e.to_string()))?;
    s.audit(
        "client_document_fetched",
        None,
        Some(client_id),
        json!({"name": client.name}),
    )
    .await;
    Ok(client)
}

#[tracing::instrument(level = "debug", target = "mcpgate::outbound", name = "client metadata document",
    skip_all, fields(otel.kind = "client"))]
async fn fetch(s: &AuthServer, client_id: &str) -> Result<(Value, i64), DocumentError> {
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
    if !s.cfg.allow_private_document_hosts && addrs.iter().any(|a| !is_public(a.ip())) {
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
    // Tests serve documents over plain HTTP on loopback; production never sets this.
    let mut target = url.clone();
    if let Some(scheme) = &s.cfg.document_scheme_override {
        let _ = target.set_scheme(scheme);
    }
    let mut resp = http
        .get(target)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| DocumentError::Fetch(e.without_url().to_string()))?;
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
        })
        .unwrap_or(3600)
        .clamp(MIN_CACHE_SECS, MAX_CACHE_SECS);
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
    let doc: Value = serde_json::from_slice(&body)
        .map_err(|e| DocumentError::Invalid(format!("not JSON: {e}")))?;
    Ok((doc, max_age))
}

/// Checks a fetched document against the rules (it names itself exactly, has a clean
/// name, and redirect URIs that pass the allow-list); returns (name, redirect URIs).
/// Pure, so property tests can run it on any JSON.
pub fn check_document(
    allow: &AllowList,
    client_id: &str,
    doc: &Value,
) -> Result<(String, Vec<String>), DocumentError> {
    let bad = |m: &str| DocumentError::Invalid(m.to_owned());
    if doc.get("client_id").and_then(Value::as_str) != Some(client_id) {
        return Err(bad(
            "its client_id is not exactly the URL it was fetched from",
        ));
    }
    let name = doc
        .get("client_name")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("client_name is missing"))?;
    let name = clean_name(Some(name))
        .map_err(|e: OAuthError| DocumentError::Invalid(e.description.into_owned()))?;
    let uris: Vec<String> = doc
        .get("redirect_uris")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("redirect_uris is missing"))?
        .iter()
        .map(|v| {
            v.as_str()
                .map(String::from)
                .ok_or_else(|| bad("redirect_uris must be strings"))
        })
        .collect::<Result<_, _>>()?;
    check_redirects(allow, &uris)
        .map_err(|e| DocumentError::Invalid(e.description.into_owned()))?;
    if let Some(sc) = doc.get("scope").and_then(Value::as_str) {
        ScopeSet::parse(sc).map_err(|e| DocumentError::Invalid(e.to_string()))?;
    }
    Ok((name, uris))
}

async fn validate(
    s: &AuthServer,
    client_id: &str,
    doc: &Value,
    fetched_until: i64,
) -> Result<Client, DocumentError> {
    let allow = allow_list(s)
        .await
        .map_err(|e| DocumentError::Fetch(format!("{:?}", e.error)))?;
    let (name, uris) = check_document(&allow, client_id, doc)?;
    // Only public clients (PKCE, `none`): a document offering other methods too is
    // used with `none`, which MCP clients offer alongside.
    Ok(Client {
        client_id: client_id.to_owned(),
        secret_hash: None,
        name,
        redirect_uris: uris,
        kind: ClientKind::MetadataDocument,
        auth_method: AuthMethod::None,
        can_introspect: false,
        owner_user_id: None,
        registration_hash: None,
        metadata: json!({"document": doc, "mcpgate_fetched_until": fetched_until}),
        created_at: s.now(),
        last_used_at: None,
    })
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

    #[test]
    fn document_urls() {
        assert!(is_document_url(
            "https://claude.ai/oauth/mcp-oauth-client-metadata"
        ));
        assert!(!is_document_url("https://claude.ai/"));
        assert!(!is_document_url("http://claude.ai/doc"));
        assert!(!is_document_url("abc123"));
    }
}
