//! What the rules need from the outside world besides storage: fetching a client's
//! metadata document, and hashing a password. The server implements both (an HTTP
//! client that refuses private addresses; argon2id off the async threads).

use async_trait::async_trait;
use serde_json::Value;

/// Why a metadata document could not be used; shown on the error page.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("the client's metadata document could not be fetched: {0}")]
    Fetch(String),
    #[error("the client's metadata document is not valid: {0}")]
    Invalid(String),
    /// Not the document's fault: logged, and shown as a generic failure.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// A fetched document, and how long it may be used before fetching it again.
#[derive(Debug, Clone)]
pub struct FetchedDocument {
    pub body: Value,
    /// Seconds, from `Cache-Control: max-age`; the rules clamp it.
    pub max_age: Option<i64>,
}

#[async_trait]
pub trait DocumentFetcher: Send + Sync {
    /// Fetches the Client ID Metadata Document at `url`, an `https` URL with a path,
    /// or a JWK Set a stranger named (a document's `jwks_uri`): public addresses only.
    async fn fetch(&self, url: &str) -> Result<FetchedDocument, DocumentError>;

    /// Fetches a JSON document the operator configured (a machine client's or a trusted
    /// identity provider's `jwks_uri`): any address, since an organisation's provider
    /// may well be internal; `https`, or `http` on loopback.
    async fn fetch_configured(&self, url: &str) -> Result<FetchedDocument, DocumentError> {
        self.fetch(url).await
    }
}

#[async_trait]
pub trait PasswordHasher: Send + Sync {
    /// A PHC string for `password` (already checked against the password rules).
    async fn hash(&self, password: String) -> String;
    /// Whether `password` matches the PHC string `phc`. With no PHC string (no such
    /// account) it checks against a dummy all the same, so the time taken does not
    /// tell whether an account exists.
    async fn verify(&self, password: String, phc: Option<String>) -> bool;
}
