//! OAuth 2.0 Protected Resource Metadata (RFC 9728), served at the path-suffixed
//! well-known URI and, when the deployment owns its origin, at the root one (MCP
//! "Authorization Server Location": clients try the `WWW-Authenticate` hint, then the
//! path-suffixed URI, then the root). A deployment mounted under a path
//! (`https://host/oauth/2.1`) serves only the path-suffixed one: the origin's root
//! `/.well-known/oauth-protected-resource` describes whatever else runs there.

use axum::{Json, Router, response::IntoResponse, routing::get};
use http::header;
use serde::Serialize;
use url::Url;

use mcpgate_core::ScopeSet;

/// The metadata document of one protected MCP endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct ResourceMetadata {
    /// The canonical URI of the MCP endpoint (RFC 9728 §3.3: clients reject a mismatch).
    pub resource: String,
    /// Issuers whose tokens are accepted, exact strings (RFC 9728 §2).
    pub authorization_servers: Vec<String>,
    /// The scopes a client may need; `offline_access` is never listed (MCP "Refresh Tokens").
    pub scopes_supported: Vec<String>,
    /// Only the `Authorization` header: tokens in queries or bodies are refused.
    pub bearer_methods_supported: Vec<&'static str>,
    pub resource_name: String,
    /// DPoP proofs this resource checks (RFC 9728 §2, RFC 9449 §7).
    pub dpop_signing_alg_values_supported: &'static [&'static str],
    /// Bearer tokens stay accepted.
    pub dpop_bound_access_tokens_required: bool,
}

impl ResourceMetadata {
    pub fn new(resource: &Url, issuer: &str, scopes: &ScopeSet, name: &str) -> Self {
        Self {
            resource: canonical_resource(resource),
            authorization_servers: vec![issuer.to_owned()],
            scopes_supported: scopes
                .iter()
                .filter(|s| *s != "offline_access")
                .map(String::from)
                .collect(),
            bearer_methods_supported: vec!["header"],
            resource_name: name.to_owned(),
            dpop_signing_alg_values_supported: &mcpgate_core::dpop::ALGS,
            dpop_bound_access_tokens_required: false,
        }
    }
}

/// The canonical form of a resource URI (MCP "Canonical Server URI"): lowercase scheme
/// and host (the URL parser does that), no fragment, no trailing slash.
pub fn canonical_resource(url: &Url) -> String {
    let mut u = url.clone();
    u.set_fragment(None);
    let s = u.as_str();
    if u.path() == "/" && u.query().is_none() {
        s.trim_end_matches('/').to_owned()
    } else {
        s.to_owned()
    }
}

/// The URL of the metadata document for `resource`: the well-known prefix inserted
/// before the resource's path (RFC 9728 §3.1).
pub fn metadata_url(resource: &Url) -> String {
    let path = resource.path().trim_end_matches('/');
    format!(
        "{}/.well-known/oauth-protected-resource{}",
        resource.origin().ascii_serialization(),
        path
    )
}

/// Routes serving the document at both well-known locations.
pub fn router<S: Clone + Send + Sync + 'static>(
    doc: ResourceMetadata,
    resource: &Url,
) -> Router<S> {
    routes(doc, resource, true)
}

/// Routes serving the document at its path-suffixed location only: for deployments
/// with several protected resources on one origin, where the root location cannot
/// name them all (RFC 9728 §3.1).
pub fn suffixed_router<S: Clone + Send + Sync + 'static>(
    doc: ResourceMetadata,
    resource: &Url,
) -> Router<S> {
    routes(doc, resource, false)
}

/// Routes for a deployment mounted at `base_path` (`""`: the origin's root): both
/// locations at the root, the path-suffixed one alone under a path, where the root
/// location belongs to the rest of the origin (RFC 9728 §3.1 derives the root location
/// from a resource *without* a path, which this is not).
pub fn router_at<S: Clone + Send + Sync + 'static>(
    doc: ResourceMetadata,
    resource: &Url,
    base_path: &str,
) -> Router<S> {
    routes(doc, resource, base_path.trim_end_matches('/').is_empty())
}

fn routes<S: Clone + Send + Sync + 'static>(
    doc: ResourceMetadata,
    resource: &Url,
    root: bool,
) -> Router<S> {
    let suffixed = format!(
        "/.well-known/oauth-protected-resource{}",
        resource.path().trim_end_matches('/')
    );
    let doc = std::sync::Arc::new(doc);
    let handler = move || {
        let doc = doc.clone();
        async move {
            (
                [
                    (header::CACHE_CONTROL, "public, max-age=300"),
                    // Public metadata: browser-based clients read it cross-origin.
                    (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
                ],
                Json(doc.as_ref().clone()),
            )
                .into_response()
        }
    };
    let mut r = Router::new();
    if root {
        r = r.route(
            "/.well-known/oauth-protected-resource",
            get(handler.clone()),
        );
    }
    if suffixed != "/.well-known/oauth-protected-resource" {
        r = r.route(&suffixed, get(handler));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_and_metadata_urls() {
        let r: Url = "HTTPS://Calc.Example/mcp".parse().unwrap();
        assert_eq!(canonical_resource(&r), "https://calc.example/mcp");
        assert_eq!(
            metadata_url(&r),
            "https://calc.example/.well-known/oauth-protected-resource/mcp"
        );
        let root: Url = "https://calc.example/".parse().unwrap();
        assert_eq!(canonical_resource(&root), "https://calc.example");
    }

    /// Under a path, the origin's root location is someone else's: 404 there, the
    /// path-suffixed document served.
    #[tokio::test]
    async fn a_path_mounted_deployment_serves_only_the_path_suffixed_document() {
        use tower::ServiceExt;
        let status = |r: Router, path: &'static str| async move {
            let req = http::Request::get(path)
                .body(axum::body::Body::empty())
                .unwrap();
            r.oneshot(req).await.unwrap().status().as_u16()
        };
        let doc = |r: &Url| ResourceMetadata::new(r, "https://as", &ScopeSet::new(), "c");
        let mounted: Url = "https://host.example/oauth/2.1/mcp".parse().unwrap();
        let r: Router = router_at(doc(&mounted), &mounted, "/oauth/2.1");
        let suffixed = "/.well-known/oauth-protected-resource/oauth/2.1/mcp";
        assert_eq!(status(r.clone(), suffixed).await, 200);
        assert_eq!(
            status(r, "/.well-known/oauth-protected-resource").await,
            404
        );
        let root: Url = "https://host.example/mcp".parse().unwrap();
        let r: Router = router_at(doc(&root), &root, "");
        assert_eq!(
            status(r.clone(), "/.well-known/oauth-protected-resource/mcp").await,
            200
        );
        assert_eq!(
            status(r, "/.well-known/oauth-protected-resource").await,
            200
        );
    }

    #[test]
    fn offline_access_is_not_advertised() {
        let r: Url = "https://calc.example/mcp".parse().unwrap();
        let doc = ResourceMetadata::new(
            &r,
            "https://as",
            &ScopeSet::parse("op:add offline_access").unwrap(),
            "c",
        );
        assert_eq!(doc.scopes_supported, vec!["op:add"]);
    }
}
