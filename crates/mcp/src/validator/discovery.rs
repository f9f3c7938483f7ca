//! Authorization server metadata discovery (RFC 8414 §3, with the OpenID Connect
//! fallbacks the MCP spec lists in "Authorization Server Metadata Discovery").

use serde_json::Value;
use url::Url;

/// The well-known URLs to try for an issuer, in the order MCP clients try them.
pub fn candidate_urls(issuer: &Url) -> Vec<String> {
    let origin = issuer.origin().ascii_serialization();
    let path = issuer.path().trim_end_matches('/');
    if path.is_empty() {
        vec![
            format!("{origin}/.well-known/oauth-authorization-server"),
            format!("{origin}/.well-known/openid-configuration"),
        ]
    } else {
        vec![
            format!("{origin}/.well-known/oauth-authorization-server{path}"),
            format!("{origin}/.well-known/openid-configuration{path}"),
            format!("{origin}{path}/.well-known/openid-configuration"),
        ]
    }
}

/// Fetches the metadata of `issuer` and checks that its `issuer` is the same string
/// (RFC 8414 §3.3: otherwise the document MUST NOT be used).
#[tracing::instrument(level = "debug", target = "mcpgate::outbound", name = "authorization server metadata",
    skip_all, fields(otel.kind = "client"))]
pub async fn fetch_metadata(http: &reqwest::Client, issuer: &str) -> Result<Value, DiscoveryError> {
    let url: Url = issuer
        .parse()
        .map_err(|_| DiscoveryError(format!("issuer {issuer:?} is not a URL")))?;
    let mut last = String::new();
    for candidate in candidate_urls(&url) {
        match http.get(&candidate).send().await {
            Ok(r) if r.status().is_success() => {
                let doc = read_json(r, MAX_DOCUMENT_BYTES)
                    .await
                    .map_err(|e| DiscoveryError(format!("{candidate}: {e}")))?;
                if doc.get("issuer").and_then(Value::as_str) != Some(issuer) {
                    return Err(DiscoveryError(format!(
                        "{candidate} names issuer {:?}, expected exactly {issuer:?}",
                        doc.get("issuer")
                    )));
                }
                return Ok(doc);
            }
            Ok(r) => last = format!("{candidate}: HTTP {}", r.status()),
            Err(e) => last = format!("{candidate}: {e}"),
        }
    }
    Err(DiscoveryError(format!(
        "no authorization server metadata for {issuer} ({last})"
    )))
}

/// Largest metadata document or JWK Set read; real ones are a few KiB.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// Reads a JSON body of at most `limit` bytes (a hostile or broken server cannot make
/// the guard buffer without bound).
pub async fn read_json(mut resp: reqwest::Response, limit: usize) -> Result<Value, String> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(format!("document larger than {limit} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > limit {
            return Err(format!("document larger than {limit} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| format!("not JSON: {e}"))
}

/// Why an issuer's metadata could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DiscoveryError(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_issuer_inserts_well_known_before_the_path() {
        let i: Url = "https://auth.example.com/oauth/2.1".parse().unwrap();
        assert_eq!(
            candidate_urls(&i),
            vec![
                "https://auth.example.com/.well-known/oauth-authorization-server/oauth/2.1",
                "https://auth.example.com/.well-known/openid-configuration/oauth/2.1",
                "https://auth.example.com/oauth/2.1/.well-known/openid-configuration",
            ]
        );
        let root: Url = "https://as.example".parse().unwrap();
        assert_eq!(
            candidate_urls(&root)[0],
            "https://as.example/.well-known/oauth-authorization-server"
        );
    }
}
