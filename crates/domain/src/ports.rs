//! What the rules need from the outside world besides storage: fetching a client's
//! metadata document, hashing a password, and speaking OAuth to upstreams' own
//! authorization servers (connected accounts). The server implements them (an HTTP
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

/// An upstream's authorization server, as discovered from the upstream (RFC 9728
/// protected-resource metadata, then RFC 8414 or OpenID Connect discovery).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamServer {
    /// The upstream's resource identifier (RFC 8707 `resource` of every request).
    pub resource: String,
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub registration_endpoint: Option<String>,
    pub revocation_endpoint: Option<String>,
    /// The resource's `scopes_supported`.
    pub scopes: Vec<String>,
    /// RFC 9207: the authorization response carries `iss`, which must then be there.
    pub iss_parameter: bool,
    /// It accepts a Client ID Metadata Document's URL as `client_id`.
    pub metadata_documents: bool,
    /// `token_endpoint_auth_methods_supported` (empty: `client_secret_basic`, RFC 8414).
    pub auth_methods: Vec<String>,
}

/// Tokens an upstream's token endpoint gave.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamTokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: Option<i64>,
}

impl std::fmt::Debug for UpstreamTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UpstreamTokens([redacted])")
    }
}

/// What went wrong talking to an upstream's authorization server.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// Not reachable, or not answering as the specifications say.
    #[error("{0}")]
    Unreachable(String),
    /// Its token endpoint answered with an OAuth error (RFC 6749 §5.2).
    #[error("the upstream's authorization server refused: {error}")]
    Refused { error: String },
}

#[async_trait]
pub trait UpstreamOAuth: Send + Sync {
    /// Finds the authorization server of the MCP server at `url`.
    async fn discover(&self, url: &str) -> Result<UpstreamServer, UpstreamError>;

    /// Registers dynamically (RFC 7591) with `metadata`.
    async fn register(
        &self,
        server: &UpstreamServer,
        metadata: &Value,
    ) -> Result<crate::model::UpstreamClient, UpstreamError>;

    /// A token request (`form` without client authentication, which this adds).
    async fn token(
        &self,
        server: &UpstreamServer,
        client: &crate::model::UpstreamClient,
        form: &[(&str, &str)],
    ) -> Result<UpstreamTokens, UpstreamError>;

    /// RFC 7009 revocation of `token`, when the server has an endpoint for it.
    async fn revoke(
        &self,
        server: &UpstreamServer,
        client: &crate::model::UpstreamClient,
        token: &str,
        hint: &str,
    ) -> Result<(), UpstreamError>;

    /// Lets `millis` pass (waiting for another instance's refresh).
    async fn pause(&self, millis: u64);
}

/// Where no upstream is reached through OAuth (the rules' tests, the admin commands).
pub struct NoUpstreams;

#[async_trait]
impl UpstreamOAuth for NoUpstreams {
    async fn discover(&self, _: &str) -> Result<UpstreamServer, UpstreamError> {
        Err(UpstreamError::Unreachable(
            "no upstream is reachable from here".into(),
        ))
    }
    async fn register(
        &self,
        _: &UpstreamServer,
        _: &Value,
    ) -> Result<crate::model::UpstreamClient, UpstreamError> {
        Err(UpstreamError::Unreachable(
            "no upstream is reachable from here".into(),
        ))
    }
    async fn token(
        &self,
        _: &UpstreamServer,
        _: &crate::model::UpstreamClient,
        _: &[(&str, &str)],
    ) -> Result<UpstreamTokens, UpstreamError> {
        Err(UpstreamError::Unreachable(
            "no upstream is reachable from here".into(),
        ))
    }
    async fn revoke(
        &self,
        _: &UpstreamServer,
        _: &crate::model::UpstreamClient,
        _: &str,
        _: &str,
    ) -> Result<(), UpstreamError> {
        Ok(())
    }
    async fn pause(&self, _: u64) {}
}
