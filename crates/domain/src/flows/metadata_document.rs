//! Client ID Metadata Documents (MCP "Client Registration"; draft-ietf-oauth-client-id-
//! metadata-document): a `client_id` that is an `https` URL with a path names a JSON
//! document, published by the client, that describes it.
//!
//! Fetching a URL chosen by a stranger is a server-side request forgery risk: the
//! [`crate::ports::DocumentFetcher`] the server provides resolves the host first and
//! refuses any address that is not public, pins the connection to the vetted address,
//! follows no redirect, and stops at 5 s and [`MAX_DOCUMENT_BYTES`]. The document must
//! name itself (`client_id` equal to the URL, exactly), carry `client_name` and
//! `redirect_uris`, and every redirect URI must pass the allow-list. Documents are
//! cached per `Cache-Control: max-age` (clamped to 5 minutes … 1 day).

use mcpgate_core::redirect_uri::AllowList;
use mcpgate_core::{OAuthError, ScopeSet};
use serde_json::{Value, json};
use url::Url;

use super::register::{check_application_type, check_redirects, clean_name};
use crate::Authority;
use crate::audit::Event;
use crate::model::{AuthMethod, Client, ClientKeys, ClientKind, Outcome, StepKind};
pub use crate::ports::DocumentError;

/// Largest document read (the fetcher stops there).
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
const MIN_CACHE_SECS: i64 = 300;
const MAX_CACHE_SECS: i64 = 86_400;
/// Without `Cache-Control: max-age`, a document is used for an hour.
const DEFAULT_CACHE_SECS: i64 = 3600;

/// Is this `client_id` a metadata document URL?
pub fn is_document_url(client_id: &str) -> bool {
    Url::parse(client_id)
        .is_ok_and(|u| u.scheme() == "https" && u.path() != "/" && !u.path().is_empty())
}

/// The client for a document URL: from the store while fresh, else fetched.
pub async fn client_for(s: &Authority, client_id: &str) -> Result<Client, DocumentError> {
    let now = s.now();
    if let Some(c) = s.store.client(client_id).await?
        && c.kind == ClientKind::MetadataDocument
        && c.fetched_until.is_some_and(|u| u > now)
    {
        return Ok(c);
    }
    // A document that cannot be fetched or read is where the client's connection stops.
    let refused = |e: DocumentError| {
        s.note(
            client_id,
            StepKind::Register,
            Outcome::Refused,
            e.to_string(),
        );
        e
    };
    let fetched = s.documents.fetch(client_id).await.map_err(refused)?;
    let max_age = fetched
        .max_age
        .unwrap_or(DEFAULT_CACHE_SECS)
        .clamp(MIN_CACHE_SECS, MAX_CACHE_SECS);
    let client = validate(s, client_id, &fetched.body, now + max_age)
        .await
        .map_err(refused)?;
    s.store.upsert_document_client(&client).await?;
    s.audit(
        Event::ClientDocumentFetched {
            name: client.name.clone(),
        },
        None,
        Some(client_id),
    )
    .await;
    s.note(
        client_id,
        StepKind::Register,
        Outcome::Ok,
        "metadata document fetched",
    );
    Ok(client)
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
        .and_then(|()| {
            let kind = doc.get("application_type");
            match kind {
                None | Some(Value::Null) => Ok(()),
                Some(Value::String(k)) => check_application_type(Some(k), &uris),
                Some(_) => check_application_type(Some("(not a string)"), &uris),
            }
        })
        .map_err(|e| DocumentError::Invalid(e.description.into_owned()))?;
    if let Some(sc) = doc.get("scope").and_then(Value::as_str) {
        ScopeSet::parse(sc).map_err(|e| DocumentError::Invalid(e.to_string()))?;
    }
    Ok((name, uris))
}

/// The keys of a document that authenticates with `private_key_jwt` (RFC 7591 §2:
/// `jwks` or `jwks_uri`, not both); `None` for any other method.
fn document_keys(doc: &Value) -> Result<Option<ClientKeys>, DocumentError> {
    if doc
        .get("token_endpoint_auth_method")
        .and_then(Value::as_str)
        != Some("private_key_jwt")
    {
        return Ok(None);
    }
    let bad = |m: &str| DocumentError::Invalid(m.to_owned());
    match (doc.get("jwks"), doc.get("jwks_uri").and_then(Value::as_str)) {
        (Some(set), None) => {
            if mcpgate_core::jose::PublicKeys::from_jwks(set).is_empty() {
                return Err(bad("jwks has no usable signing key"));
            }
            Ok(Some(ClientKeys::Set(set.clone())))
        }
        (None, Some(uri)) => {
            if !uri.starts_with("https://") {
                return Err(bad("jwks_uri must be an https URL"));
            }
            Ok(Some(ClientKeys::Uri(uri.to_owned())))
        }
        _ => Err(bad(
            "private_key_jwt needs exactly one of jwks and jwks_uri (RFC 7591 §2)",
        )),
    }
}

async fn validate(
    s: &Authority,
    client_id: &str,
    doc: &Value,
    fetched_until: i64,
) -> Result<Client, DocumentError> {
    let entries = s.store.allowed_redirects().await?;
    let allow = AllowList::from_entries(entries.iter().map(String::as_str));
    let (name, uris) = check_document(&allow, client_id, doc)?;
    // A document declaring `private_key_jwt` with its keys gets a confidential client
    // whose assertions are verified with them; any other is public (PKCE, `none`),
    // which MCP clients offer alongside other methods.
    let keys = document_keys(doc)?;
    Ok(Client {
        client_id: client_id.to_owned(),
        secret_hash: None,
        name,
        redirect_uris: uris,
        kind: ClientKind::MetadataDocument,
        auth_method: if keys.is_some() {
            AuthMethod::PrivateKeyJwt
        } else {
            AuthMethod::None
        },
        can_introspect: false,
        owner_user_id: None,
        registration_hash: None,
        metadata: json!({"document": doc}),
        fetched_until: Some(fetched_until),
        created_at: s.now(),
        last_used_at: None,
        machine: None,
        keys,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_urls() {
        assert!(is_document_url(
            "https://claude.ai/oauth/mcp-oauth-client-metadata"
        ));
        assert!(!is_document_url("https://claude.ai/"));
        assert!(!is_document_url("http://claude.ai/doc"));
        assert!(!is_document_url("abc123"));
    }

    /// A document's `application_type` holds as at registration: VS Code's (native,
    /// with claimed https and loopback redirects) passes; a web document naming a
    /// loopback redirect, or an unknown kind, does not.
    #[test]
    fn a_documents_application_type_governs_its_redirects() {
        let allow = AllowList::from_entries(["https://vscode.dev/redirect", "http://127.0.0.1/"]);
        let url = "https://vscode.dev/oauth/client-metadata.json";
        let doc = |kind: Value| {
            serde_json::json!({"client_id": url, "client_name": "VS Code",
                "redirect_uris": ["https://vscode.dev/redirect", "http://127.0.0.1:33418/"],
                "application_type": kind})
        };
        assert!(check_document(&allow, url, &doc("native".into())).is_ok());
        assert!(check_document(&allow, url, &doc(Value::Null)).is_ok());
        for bad in [Value::from("web"), Value::from("desktop"), Value::from(7)] {
            assert!(
                matches!(
                    check_document(&allow, url, &doc(bad.clone())),
                    Err(DocumentError::Invalid(_))
                ),
                "{bad}"
            );
        }
    }
}
