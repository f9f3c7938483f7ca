//! The authenticated caller of an MCP request, as the guard established it.

use mcpgate_core::ScopeSet;
use rmcp::{
    ErrorData, RoleServer,
    handler::server::common::{AsRequestContext, FromContextPart},
    service::RequestContext,
};

/// Who is calling: set by the guard on the HTTP request, read by tools through [`Auth`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The `sub` of the access token: a stable user identifier.
    pub subject: String,
    /// A human-readable name for logs (`username` from introspection or the JWT).
    pub username: Option<String>,
    /// The person's email address, when the token or the introspection answer names
    /// one (`email`, OpenID Connect Core §5.1); a gateway may pass it on to its upstream.
    pub email: Option<String>,
    /// The OAuth client the person authorized (RFC 9068 `client_id`).
    pub client_id: String,
    /// The scopes the token carries.
    pub scopes: ScopeSet,
    /// The token family (`sid`) the token belongs to, when the issuer says so.
    pub session_id: Option<String>,
    /// The token's expiry, in seconds since the epoch.
    pub expires_at: i64,
    /// The DPoP key the token is bound to (`cnf.jkt`), if it is: then every request
    /// must carry a proof signed by that key (RFC 9449 §7.1).
    pub jkt: Option<String>,
}

impl Principal {
    /// About how many heap bytes a principal held by an `Arc` occupies (its strings,
    /// its scope set's nodes, the `Arc`'s own allocation), for caches bounded by bytes.
    pub fn heap_bytes(&self) -> usize {
        let opt = |s: &Option<String>| s.as_ref().map_or(0, String::capacity);
        16 + std::mem::size_of::<Self>()
            + self.subject.capacity()
            + self.client_id.capacity()
            + opt(&self.username)
            + opt(&self.email)
            + opt(&self.session_id)
            // A B-tree node per up to 11 scopes, each scope a `String` in it.
            + self.scopes.iter().map(|s| s.len() + 24).sum::<usize>()
            + self.scopes.len().div_ceil(11) * 96
    }

    /// The principal of a request, if the guard authenticated one. rmcp hands handlers
    /// the HTTP request parts; the guard's extension sits inside them.
    pub fn from_context(cx: &RequestContext<RoleServer>) -> Option<&Principal> {
        cx.extensions
            .get::<http::request::Parts>()
            .and_then(|p| Self::from_extensions(&p.extensions))
    }

    /// The principal the guard left in a request's extensions (as an `Arc`, shared
    /// with the validator's cache).
    pub fn from_extensions(extensions: &http::Extensions) -> Option<&Principal> {
        extensions.get::<std::sync::Arc<Principal>>().map(|p| &**p)
    }

    /// The name to show in logs: the username if known, else the subject.
    pub fn display_name(&self) -> &str {
        self.username.as_deref().unwrap_or(&self.subject)
    }
}

/// Extractor for `#[tool]` functions: `async fn whoami(&self, Auth(p): Auth)`.
#[derive(Debug, Clone)]
pub struct Auth(pub Principal);

impl<C: AsRequestContext> FromContextPart<C> for Auth {
    fn from_context_part(cx: &mut C) -> Result<Self, ErrorData> {
        Principal::from_context(cx.as_request_context())
            .cloned()
            .map(Auth)
            .ok_or_else(|| ErrorData::internal_error("no authenticated principal", None))
    }
}
