//! `WWW-Authenticate` challenges (RFC 6750 §3, RFC 9728 §5.1, MCP "Error Handling").

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::json;

/// A refusal of the guard, rendered with its status and challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No bearer token in the `Authorization` header: 401 without an `error` attribute
    /// (RFC 6750 §3.1: a request without credentials gets no error code).
    MissingToken,
    /// The token is invalid, expired, revoked, foreign or for another audience: 401
    /// `invalid_token`. The description says nothing about which check failed.
    InvalidToken,
    /// The token is fine but lacks scopes this call needs: 403 `insufficient_scope`
    /// naming every scope the operation needs (MCP "Runtime Insufficient Scope Errors").
    InsufficientScope(String),
    /// The authorization server could not be asked (introspection mode): 503.
    Unavailable,
    /// A DPoP request whose proof failed (RFC 9449 §7.1): 401 with a `DPoP` challenge,
    /// `invalid_dpop_proof`; or a token used with the wrong scheme (§7.2).
    DpopProof(String),
    /// DPoP proofs must carry this process's nonce, given here (§9): 401
    /// `use_dpop_nonce` with a `DPoP-Nonce` header.
    UseDpopNonce(String),
}

/// Renders refusals for one resource.
#[derive(Debug, Clone)]
pub struct Challenger {
    /// `resource_metadata` URL (RFC 9728 §5.1).
    pub metadata_url: String,
    /// `scope` hint for 401s (MCP "Scope Selection Strategy").
    pub scope_hint: String,
}

fn quote(s: &str) -> String {
    // auth-param quoted-string (RFC 9110 §5.6.4); our values never contain `"` or `\`,
    // but escape anyway so that a header can never be broken.
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

impl Challenger {
    pub fn www_authenticate(&self, refusal: &Refusal) -> Option<String> {
        let md = quote(&self.metadata_url);
        // RFC 6750 §3: `scope` is optional; a resource with no scopes sends none rather
        // than an empty one (which a client would send back as a scope named `""`).
        let scope = if self.scope_hint.is_empty() {
            String::new()
        } else {
            format!(r#", scope="{}""#, quote(&self.scope_hint))
        };
        Some(match refusal {
            Refusal::MissingToken => format!(r#"Bearer resource_metadata="{md}"{scope}"#),
            Refusal::InvalidToken => format!(
                r#"Bearer error="invalid_token", error_description="The access token is invalid or expired", resource_metadata="{md}"{scope}"#
            ),
            Refusal::InsufficientScope(need) => format!(
                r#"Bearer error="insufficient_scope", scope="{}", resource_metadata="{md}", error_description="This operation needs the scope {}""#,
                quote(need),
                quote(need)
            ),
            Refusal::Unavailable => return None,
            Refusal::DpopProof(why) => format!(
                r#"DPoP error="invalid_dpop_proof", error_description="{}", algs="{}""#,
                quote(why),
                mcpgate_core::dpop::ALGS.join(" ")
            ),
            Refusal::UseDpopNonce(_) => format!(
                r#"DPoP error="use_dpop_nonce", error_description="Use the nonce of the DPoP-Nonce header", algs="{}""#,
                mcpgate_core::dpop::ALGS.join(" ")
            ),
        })
    }

    pub fn respond(&self, refusal: Refusal) -> Response {
        let (status, body) = match &refusal {
            Refusal::MissingToken => (
                StatusCode::UNAUTHORIZED,
                json!({"error": "unauthorized", "error_description": "An access token is required"}),
            ),
            Refusal::InvalidToken => (
                StatusCode::UNAUTHORIZED,
                json!({"error": "invalid_token", "error_description": "The access token is invalid or expired"}),
            ),
            Refusal::InsufficientScope(need) => (
                StatusCode::FORBIDDEN,
                json!({"error": "insufficient_scope", "error_description": format!("This operation needs the scope {need}"), "scope": need}),
            ),
            Refusal::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "temporarily_unavailable", "error_description": "The authorization server could not be reached"}),
            ),
            Refusal::DpopProof(why) => (
                StatusCode::UNAUTHORIZED,
                json!({"error": "invalid_dpop_proof", "error_description": why}),
            ),
            Refusal::UseDpopNonce(_) => (
                StatusCode::UNAUTHORIZED,
                json!({"error": "use_dpop_nonce", "error_description": "Use the nonce of the DPoP-Nonce header"}),
            ),
        };
        let mut resp = (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
        if let Some(v) = self
            .www_authenticate(&refusal)
            .and_then(|v| HeaderValue::from_str(&v).ok())
        {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        if let Refusal::UseDpopNonce(n) = &refusal
            && let Ok(v) = HeaderValue::from_str(n)
        {
            resp.headers_mut().insert("dpop-nonce", v);
        }
        if matches!(refusal, Refusal::Unavailable) {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        resp
    }
}

/// A `tools/call` the policy forbids whatever the scopes: 403 with a JSON-RPC error and
/// no `insufficient_scope` challenge, since no step-up would help (RFC 6750 §3.1
/// reserves that error for scopes the client could obtain).
pub fn tool_forbidden(id: Option<&serde_json::Value>) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32001,
        "message": "Forbidden: the policy of this server allows no call of this tool"}});
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c() -> Challenger {
        Challenger {
            metadata_url: "http://h/.well-known/oauth-protected-resource/mcp".into(),
            scope_hint: "op:add op:div".into(),
        }
    }

    #[test]
    fn missing_token_challenge_has_no_error() {
        let h = c().www_authenticate(&Refusal::MissingToken).unwrap();
        assert_eq!(
            h,
            r#"Bearer resource_metadata="http://h/.well-known/oauth-protected-resource/mcp", scope="op:add op:div""#
        );
    }

    #[test]
    fn insufficient_scope_names_the_scope() {
        let h = c()
            .www_authenticate(&Refusal::InsufficientScope("op:div".into()))
            .unwrap();
        assert!(h.starts_with(
            r#"Bearer error="insufficient_scope", scope="op:div", resource_metadata=""#
        ));
    }

    #[test]
    fn a_resource_without_scopes_sends_no_empty_scope() {
        let mut ch = c();
        ch.scope_hint.clear();
        for r in [Refusal::MissingToken, Refusal::InvalidToken] {
            let h = ch.www_authenticate(&r).unwrap();
            assert!(!h.contains("scope="), "{h}");
        }
    }
}
