//! The JSON-RPC envelope of a POST to `/mcp`, read once with a size bound, so that
//! malformed input gets the answer the transport specification names (never a 500),
//! and so that the guard can see which tool a `tools/call` invokes before it runs.

use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use rmcp::model::RequestId;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

/// What the guard needs from a request body. The guard leaves it in the request's
/// extensions, so that the endpoint reads the body once, not twice.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The JSON-RPC `id` (absent for notifications and for responses without one),
    /// for error answers made before the request reaches the server.
    pub id: Option<Value>,
    pub method: Option<String>,
    /// `params.name`: the tool of a `tools/call`, the prompt of a `prompts/get`.
    pub tool: Option<String>,
    /// `params.uri`: the resource of a `resources/read` (for a gateway's policy).
    pub uri: Option<String>,
    pub arguments: Option<Map<String, Value>>,
    /// Set when the body is a plain `tools/call` request: a JSON-RPC 2.0 request with
    /// only the members the protocol defines. Such a request can be answered without
    /// an rmcp service (see [`crate::direct`]); anything else goes to rmcp whole.
    pub plain_call: Option<PlainCall>,
}

/// The parts of a plain `tools/call` request that the tool's answer needs.
#[derive(Debug, Clone)]
pub struct PlainCall {
    pub id: RequestId,
    /// The request's `_meta` (per-request protocol version and client capabilities
    /// since the 2026-07-28 revision), unparsed: only the keys the answer needs are
    /// read from it, once.
    pub meta: Option<Box<RawValue>>,
}

/// A plain `tools/call` request, as the strict first reading sees it: an unknown member
/// anywhere fails it, and the body is then read the general way.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StrictCall {
    #[allow(dead_code)] // checked by deserializing: it must be "2.0"
    jsonrpc: Version2,
    id: RequestId,
    method: StrictToolsCall,
    params: StrictParams,
}

/// `"jsonrpc": "2.0"` (JSON-RPC 2.0 §4), compared where it lies in the body rather
/// than copied out first. A version written with escapes is not borrowable and fails
/// this strict reading; the general reading then takes the body.
struct Version2;

impl<'de> Deserialize<'de> for Version2 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match <&str>::deserialize(d)? {
            "2.0" => Ok(Self),
            _ => Err(serde::de::Error::custom(r#"jsonrpc must be "2.0""#)),
        }
    }
}

#[derive(Deserialize)]
enum StrictToolsCall {
    #[serde(rename = "tools/call")]
    ToolsCall,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StrictParams {
    name: String,
    #[serde(default)]
    arguments: Option<Map<String, Value>>,
    #[serde(rename = "_meta", default)]
    meta: Option<Box<RawValue>>,
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
        // The common case first: one typed pass, no intermediate `Value` tree.
        if let Ok(call) = serde_json::from_slice::<StrictCall>(body) {
            let StrictToolsCall::ToolsCall = call.method;
            return Ok(Self {
                id: Some(call.id.clone().into_json_value()),
                method: Some("tools/call".to_owned()),
                tool: Some(call.params.name),
                uri: None,
                arguments: call.params.arguments,
                plain_call: Some(PlainCall {
                    id: call.id,
                    meta: call.params.meta,
                }),
            });
        }
        let value: Value = serde_json::from_slice(body).map_err(|_| EnvelopeError::Parse)?;
        let mut obj = match value {
            Value::Object(o) => o,
            Value::Array(_) => return Err(EnvelopeError::Batch),
            _ => return Err(EnvelopeError::NotAnObject),
        };
        let method = obj.get("method").and_then(Value::as_str).map(str::to_owned);
        let id = obj.remove("id");
        let (tool, uri, arguments) = match obj.remove("params") {
            Some(Value::Object(mut p)) => (
                p.get("name").and_then(Value::as_str).map(str::to_owned),
                p.get("uri").and_then(Value::as_str).map(str::to_owned),
                match p.remove("arguments") {
                    Some(Value::Object(a)) => Some(a),
                    _ => None,
                },
            ),
            _ => (None, None, None),
        };
        Ok(Self {
            id,
            method,
            tool,
            uri,
            arguments,
            plain_call: None,
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
    fn a_plain_call_is_recognised_and_anything_more_is_not() {
        let plain = Envelope::parse(br#"{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"name":"calculator","arguments":{"a":1},"_meta":{"k":1}}}"#).unwrap();
        let call = plain.plain_call.expect("plain");
        assert_eq!(call.id, RequestId::String("x".into()));
        assert_eq!(call.meta.unwrap().get(), r#"{"k":1}"#);
        assert_eq!(plain.tool.as_deref(), Some("calculator"));
        for body in [
            // an extra member at the top or in params
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"c"},"x":1}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"c","task":{}}}"#,
            // not JSON-RPC 2.0, a notification, another method, a null or fractional id
            r#"{"jsonrpc":"1.0","id":1,"method":"tools/call","params":{"name":"c"}}"#,
            // the version with an escape: valid, but left to the general reading
            r#"{"jsonrpc":"2\u002e0","id":1,"method":"tools/call","params":{"name":"c"}}"#,
            r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"c"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"name":"c"}}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"c"}}"#,
            r#"{"jsonrpc":"2.0","id":1.5,"method":"tools/call","params":{"name":"c"}}"#,
            // a duplicated member: the general reading decides
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"c","name":"d"}}"#,
        ] {
            let e = Envelope::parse(body.as_bytes()).unwrap();
            assert!(e.plain_call.is_none(), "{body}");
        }
        let dup = Envelope::parse(
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"c","name":"d"}}"#,
        )
        .unwrap();
        assert_eq!(dup.tool.as_deref(), Some("d"));
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

#[cfg(test)]
mod proptests {
    //! Differential against rmcp's own message model: whenever the envelope calls a body
    //! a plain `tools/call`, rmcp reads the same request (same id, tool and arguments).
    //! `PROPTEST_CASES=100000 cargo test -p mcpgate-mcp proptests` runs it longer.
    use proptest::prelude::*;
    use rmcp::model::{ClientJsonRpcMessage, ClientRequest, JsonRpcMessage};
    use serde_json::{Value, json};

    use super::Envelope;

    fn cases() -> ProptestConfig {
        ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(2000),
        )
    }

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            ".{0,8}".prop_map(Value::from),
        ]
    }

    fn member() -> impl Strategy<Value = (String, Value)> {
        (
            prop_oneof![
                Just("jsonrpc".to_owned()),
                Just("id".to_owned()),
                Just("method".to_owned()),
                Just("params".to_owned()),
                Just("name".to_owned()),
                Just("arguments".to_owned()),
                Just("_meta".to_owned()),
                "[a-z]{1,4}",
            ],
            prop_oneof![
                scalar(),
                Just(json!("2.0")),
                Just(json!("tools/call")),
                Just(json!({"name": "calculator"})),
                Just(json!({"name": "calculator", "arguments": {"a": 1}})),
                Just(json!({})),
                Just(json!([])),
            ],
        )
    }

    fn body() -> impl Strategy<Value = Value> {
        (
            proptest::option::of(prop_oneof![Just(json!(1)), Just(json!("x")), scalar()]),
            prop_oneof![Just(json!("tools/call")), scalar()],
            proptest::option::of(prop_oneof![
                Just(
                    json!({"name": "calculator", "arguments": {"operation": "add", "a": 1, "b": 2}})
                ),
                Just(json!({"name": "calculator", "arguments": null})),
                Just(json!({"name": "calculator", "_meta": {"k": 1}})),
                Just(json!({"name": 5})),
            ]),
            proptest::collection::vec(member(), 0..3),
        )
            .prop_map(|(id, method, params, extra)| {
                let mut o = serde_json::Map::new();
                o.insert("jsonrpc".into(), json!("2.0"));
                if let Some(id) = id {
                    o.insert("id".into(), id);
                }
                o.insert("method".into(), method);
                if let Some(p) = params {
                    o.insert("params".into(), p);
                }
                for (k, v) in extra {
                    o.insert(k, v);
                }
                Value::Object(o)
            })
    }

    proptest! {
        #![proptest_config(cases())]

        #[test]
        fn plain_calls_are_read_as_rmcp_reads_them(v in body()) {
            let bytes = serde_json::to_vec(&v).unwrap();
            let Ok(e) = Envelope::parse(&bytes) else { return Ok(()); };
            let Some(call) = e.plain_call else { return Ok(()); };
            let rmcp: ClientJsonRpcMessage = serde_json::from_slice(&bytes)
                .map_err(|err| TestCaseError::fail(format!("rmcp refused a plain call {v}: {err}")))?;
            let JsonRpcMessage::Request(req) = rmcp else {
                return Err(TestCaseError::fail(format!("rmcp saw no request in {v}")));
            };
            prop_assert_eq!(&req.id, &call.id);
            let ClientRequest::CallToolRequest(ct) = req.request else {
                return Err(TestCaseError::fail(format!("rmcp saw another method in {v}")));
            };
            prop_assert_eq!(Some(ct.params.name.to_string()), e.tool);
            prop_assert_eq!(ct.params.arguments, e.arguments);
        }

        #[test]
        fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Envelope::parse(&raw);
        }
    }
}
