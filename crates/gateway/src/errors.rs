//! The gateway's own answers: JSON-RPC error objects with the HTTP status that says
//! what went wrong (MCP transport: errors before a response stream are plain JSON).

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};

/// Why the gateway answered instead of the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayError {
    /// The upstream could not be reached, failed, or answered garbage: 502.
    BadGateway,
    /// The upstream did not answer within the configured timeout: 504.
    Timeout,
    /// The `Mcp-Session-Id` is not one this gateway knows (or it ended): 404, which
    /// tells the client to start a new session (MCP transport, "Session Management").
    UnknownSession,
    /// The session belongs to another person: 403. Sessions are bound to the subject
    /// that opened them (MCP security best practices, "Session Hijacking").
    ForeignSession,
    /// A stdio upstream needs a session for a request of the `initialize` revisions
    /// that comes without one (2026-07-28 requests go to the pool): 400.
    SessionRequired,
    /// Every stdio process slot is in use: 503.
    Busy,
    /// No pooled process came free within the pool's wait (stateless requests): 503.
    PoolBusy,
    /// The policy allows no use of this prompt or resource, whatever the scopes: 403.
    Forbidden,
    /// `Host` or `Origin` is not this deployment's (DNS rebinding protection): 403.
    ForeignOrigin,
    /// A method this transport does not offer: 405.
    Method,
    /// A GET or DELETE without a session from a client of the stateless revision:
    /// no stream to open, no session to end: 405, POST alone allowed.
    NoStream,
    /// `Mcp-Method` or `Mcp-Name` does not repeat the body (SEP-2243): 400 `-32020`.
    HeaderMismatch,
    /// A resource URI with no normal form (a dot segment, an encoded `/`): 400.
    NotNormal,
    /// The upstream's authorization server does not take the person's token in
    /// exchange (`credentials = "token_exchange"`): 403.
    NotAccepted,
}

impl GatewayError {
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadGateway => StatusCode::BAD_GATEWAY,
            Self::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Self::UnknownSession => StatusCode::NOT_FOUND,
            Self::ForeignSession | Self::ForeignOrigin | Self::Forbidden | Self::NotAccepted => {
                StatusCode::FORBIDDEN
            }
            Self::SessionRequired | Self::HeaderMismatch | Self::NotNormal => {
                StatusCode::BAD_REQUEST
            }
            Self::Busy | Self::PoolBusy => StatusCode::SERVICE_UNAVAILABLE,
            Self::Method | Self::NoStream => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    /// The JSON-RPC error code and message.
    pub fn code_and_message(self) -> (i64, &'static str) {
        match self {
            Self::BadGateway => (
                -32603,
                "Bad gateway: the upstream MCP server failed or could not be reached",
            ),
            Self::Timeout => (
                -32603,
                "Gateway timeout: the upstream MCP server did not answer in time",
            ),
            Self::UnknownSession => (-32001, "Session not found"),
            Self::ForeignSession => (
                -32600,
                "Invalid Request: this session belongs to another user",
            ),
            Self::SessionRequired => (
                -32600,
                "Invalid Request: this server needs a session; send initialize first",
            ),
            Self::Busy => (-32603, "Too many sessions: try again later"),
            Self::PoolBusy => (
                -32603,
                "Server busy: every pooled upstream process is in use; try again later",
            ),
            // The guard's code for a tool no scope allows.
            Self::Forbidden => (
                -32001,
                "Forbidden: the policy of this server allows no use of this prompt or resource",
            ),
            Self::ForeignOrigin => (-32600, "Forbidden: Host or Origin is not allowed"),
            Self::Method => (-32600, "Method not allowed"),
            Self::NoStream => (
                -32600,
                "Method not allowed: without a session there is no stream; send requests as POSTs",
            ),
            Self::HeaderMismatch => (
                -32020,
                "Header mismatch: Mcp-Method and Mcp-Name must repeat the method and target of the body",
            ),
            Self::NotAccepted => (
                -32001,
                "Forbidden: the upstream's authorization server does not accept you (token exchange refused)",
            ),
            Self::NotNormal => (
                -32602,
                "Invalid params: the resource URI must be in normal form (no dot segments, no encoded '/' or '\\')",
            ),
        }
    }

    /// The JSON-RPC error object for request `id`.
    pub fn body(self, id: Option<&Value>) -> Value {
        let (code, message) = self.code_and_message();
        json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
    }

    pub fn respond(self, id: Option<&Value>) -> Response {
        let mut r = (
            self.status(),
            [(header::CONTENT_TYPE, "application/json")],
            self.body(id).to_string(),
        )
            .into_response();
        let h = r.headers_mut();
        match self {
            Self::Busy | Self::PoolBusy => {
                h.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            // A 405 names the methods that are allowed (RFC 9110 §15.5.6).
            Self::Method => {
                h.insert(header::ALLOW, HeaderValue::from_static("GET, POST, DELETE"));
            }
            Self::NoStream => {
                h.insert(header::ALLOW, HeaderValue::from_static("POST"));
            }
            _ => {}
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_405_names_the_methods_allowed() {
        let r = GatewayError::NoStream.respond(None);
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.headers()[header::ALLOW], "POST");
        let r = GatewayError::Method.respond(None);
        assert_eq!(r.headers()[header::ALLOW], "GET, POST, DELETE");
        assert!(
            GatewayError::SessionRequired
                .respond(None)
                .headers()
                .get(header::ALLOW)
                .is_none()
        );
    }
}
