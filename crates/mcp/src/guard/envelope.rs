//! The JSON-RPC envelope of a POST to `/mcp`, read once with a size bound, so that
//! malformed input gets the answer the transport specification names (never a 500),
//! and so that the guard can see which tool a `tools/call` invokes before it runs.

use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use serde_json::{Map, Value, json};

/// What the guard needs from a request body.
#[derive(Debug)]
pub struct Envelope {
    pub method: Option<String>,
    pub tool: Option<String>,
    pub arguments: Option<Map<String, Value>>,
}

/// Why a body was refused, with the JSON-RPC error it earns.
#[derive(Debug, PartialEq, Eq)]
pub enum EnvelopeError {
    /// Not JSON at all: `-32700` Parse error (JSON-RPC 2.0 §5.1), HTTP 400.
    Parse,
    /// A batch: not allowed since the 2025-06-18 revision. `-32600`, HTTP 400.
    Batch,
    /// JSON, but not a JSON-RPC message object. `-32600`, HTTP 400.
    NotAnObject,
    /// Content-Type is not JSON. HTTP 415.
    ContentType,
    /// Over the size bound. HTTP 413.
    TooLarge,
}

impl Envelope {
    pub fn parse(body: &[u8]) -> Result<Self, EnvelopeError> {
        let value: Value = serde_json::from_slice(body).map_err(|_| EnvelopeError::Parse)?;
        let mut obj = match value {
            Value::Object(o) => o,
            Value::Array(_) => return Err(EnvelopeError::Batch),
            _ => return Err(EnvelopeError::NotAnObject),
        };
        let method = obj.get("method").and_then(Value::as_str).map(str::to_owned);
        let (tool, arguments) = match obj.remove("params") {
            Some(Value::Object(mut p)) => (
                p.get("name").and_then(Value::as_str).map(str::to_owned),
                match p.remove("arguments") {
                    Some(Value::Object(a)) => Some(a),
                    _ => None,
                },
            ),
            _ => (None, None),
        };
        Ok(Self {
            method,
            tool,
            arguments,
        })
    }
}

/// True when a Content-Type names JSON (`application/json`, any parameters).
pub fn is_json_content_type(value: Option<&http::HeaderValue>) -> bool {
    value
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

impl IntoResponse for EnvelopeError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            Self::Parse => (
                StatusCode::BAD_REQUEST,
                -32700,
                "Parse error: the body is not valid JSON",
            ),
            Self::Batch => (
                StatusCode::BAD_REQUEST,
                -32600,
                "Invalid Request: JSON-RPC batches are not supported",
            ),
            Self::NotAnObject => (
                StatusCode::BAD_REQUEST,
                -32600,
                "Invalid Request: the body must be a JSON-RPC message object",
            ),
            Self::ContentType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                -32600,
                "Invalid Request: Content-Type must be application/json",
            ),
            Self::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                -32600,
                "Invalid Request: the body is too large",
            ),
        };
        let body =
            json!({ "jsonrpc": "2.0", "id": null, "error": { "code": code, "message": message } });
        (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_method_tool_and_arguments() {
        let e = Envelope::parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calculator","arguments":{"operation":"add"}}}"#).unwrap();
        assert_eq!(e.method.as_deref(), Some("tools/call"));
        assert_eq!(e.tool.as_deref(), Some("calculator"));
        assert_eq!(e.arguments.unwrap()["operation"], "add");
    }

    #[test]
    fn refuses_bad_shapes() {
        assert_eq!(Envelope::parse(b"{bad").unwrap_err(), EnvelopeError::Parse);
        assert_eq!(Envelope::parse(b"[]").unwrap_err(), EnvelopeError::Batch);
        assert_eq!(
            Envelope::parse(b"42").unwrap_err(),
            EnvelopeError::NotAnObject
        );
    }
}
