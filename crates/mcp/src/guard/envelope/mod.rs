//! The JSON-RPC envelope of a POST to `/mcp`, read once with a size bound, so that
//! malformed input gets the answer the transport specification names (never a 500),
//! and so that the guard can see which tool a `tools/call` invokes before it runs.
//!
//! **What is checked is what the server reads.** A policy decided on this reading holds
//! only if every server behind the guard reads the same message out of the same bytes.
//! JSON leaves room for disagreement: a member may appear twice (serde and most
//! decoders keep the last, some the first), and some decoders match member names
//! without regard to case (Go's `encoding/json`, and the MCP servers built on it, take
//! `"Name"`, or `"NAME"`, or `"naſme"`-style Unicode folds, for the field `name`). So a
//! message in which any decoder could find another method or target than this reading
//! is refused, never forwarded: a member twice, at the top level, in `params` or in
//! `arguments`; a member that differs from a protocol member only by case (or by a
//! character that folds to an ASCII letter); a `tools/call` or `prompts/get` without a
//! string `params.name`, a `resources/read` without a string `params.uri`; a `method`
//! that is not a string. What remains reads the same to every such decoder (the
//! differential property test below runs four of them), so the body is forwarded as
//! it came, at no cost of a second serialization.

use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use rmcp::model::RequestId;
use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
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
    /// an rmcp service (see [`crate::plain_calls`]); anything else goes to rmcp whole.
    pub plain_call: Option<PlainCall>,
}

impl Envelope {
    /// What the method acts on, when it is one whose target a policy decides:
    /// the tool of `tools/call`, the prompt of `prompts/get`, the resource of
    /// `resources/read`. Always `Some` for those three once parsed.
    pub fn target(&self) -> Option<&str> {
        match self.method.as_deref()? {
            "tools/call" | "prompts/get" => self.tool.as_deref(),
            "resources/read" => self.uri.as_deref(),
            _ => None,
        }
    }
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
/// anywhere fails it, and so does a member twice (serde refuses duplicate fields), and
/// the body is then read the general way.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StrictCall {
    #[allow(dead_code)] // checked by deserializing: it must be "2.0"
    jsonrpc: Version2,
    id: RequestId,
    method: StrictToolsCall,
    params: ObjectOnly<StrictParams>,
}

/// A struct read only from a JSON object. serde's derived structs also take an array
/// of their fields in order (`["2.0", 1, "tools/call", {…}]`), which no JSON-RPC
/// peer reads as a request.
struct ObjectOnly<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = ObjectOnly<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<ObjectOnly<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(m)).map(ObjectOnly)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
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
    arguments: Option<Arguments>,
    #[serde(rename = "_meta", default)]
    meta: Option<Box<RawValue>>,
}

/// A tool call's `arguments`, refusing a member that appears twice: a policy keyed on
/// an argument (the calculator's `operation`) reads the last, and a decoder that keeps
/// the first would run another operation than the one checked.
struct Arguments(Map<String, Value>);

/// The error text that marks a duplicate member, told apart from malformed JSON.
const DUPLICATE: &str = "duplicate member";

impl<'de> Deserialize<'de> for Arguments {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Arguments;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Arguments, A::Error> {
                let mut out = Map::new();
                while let Some((k, v)) = m.next_entry::<String, Value>()? {
                    if out.insert(k, v).is_some() {
                        return Err(de::Error::custom(DUPLICATE));
                    }
                }
                Ok(Arguments(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// A JSON value at the top of a body: an object's members unparsed (in order,
/// duplicates kept, so that they can be refused), or what else it is.
enum Top<'a> {
    Object(Vec<(String, &'a RawValue)>),
    Array,
    Scalar,
}

impl<'de: 'a, 'a> Deserialize<'de> for Top<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Top<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Top<'a>, A::Error> {
                let mut members = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, &'a RawValue>()? {
                    members.push((k, v));
                }
                Ok(Top::Object(members))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Top<'a>, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Top::Array)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Top<'a>, E> {
                Ok(Top::Scalar)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Top<'a>, E> {
                Ok(Top::Scalar)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Top<'a>, E> {
                Ok(Top::Scalar)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Top<'a>, E> {
                Ok(Top::Scalar)
            }
            fn visit_str<E>(self, _: &str) -> Result<Top<'a>, E> {
                Ok(Top::Scalar)
            }
            fn visit_unit<E>(self) -> Result<Top<'a>, E> {
                Ok(Top::Scalar)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// The members of a JSON-RPC message (JSON-RPC 2.0 §4, §5).
const MESSAGE_MEMBERS: &[&str] = &["jsonrpc", "id", "method", "params", "result", "error"];
/// The members of `params` a policy or the gateway reads.
const PARAMS_MEMBERS: &[&str] = &["name", "uri", "arguments", "_meta"];

/// One character as a decoder that ignores case compares it: ASCII letters by their
/// lower case, and the non-ASCII characters whose case folding reaches an ASCII letter
/// (Unicode simple folding, which Go's `encoding/json` applies: `ſ` is `s`, the Kelvin
/// sign `K` is `k`; `ı` and `İ` upper-case to `I`). `None` for any other non-ASCII
/// character: it folds to no ASCII letter, so a name holding it matches no protocol
/// member.
fn fold(c: char) -> Option<u8> {
    match c {
        c if c.is_ascii() => Some((c as u8).to_ascii_lowercase()),
        '\u{017F}' => Some(b's'),
        '\u{212A}' => Some(b'k'),
        '\u{0130}' | '\u{0131}' => Some(b'i'),
        _ => None,
    }
}

/// True when a case-insensitive decoder would take `name` for `member` (ASCII).
pub(crate) fn folds_to(name: &str, member: &str) -> bool {
    let mut m = member.bytes();
    for c in name.chars() {
        match (fold(c), m.next()) {
            (Some(a), Some(b)) if a == b.to_ascii_lowercase() => {}
            _ => return false,
        }
    }
    m.next().is_none()
}

/// Refuses an object that decoders could read differently: a member twice, or a
/// member that is not one of `protocol` but folds to one of them.
fn unambiguous<'k>(
    names: impl Iterator<Item = &'k str> + Clone,
    protocol: &[&str],
) -> Result<(), EnvelopeError> {
    for name in names.clone() {
        if protocol.iter().any(|p| *p != name && folds_to(name, p)) {
            return Err(EnvelopeError::Ambiguous);
        }
    }
    let mut sorted: Vec<&str> = names.collect();
    sorted.sort_unstable();
    if sorted.windows(2).any(|w| w[0] == w[1]) {
        return Err(EnvelopeError::Ambiguous);
    }
    Ok(())
}

/// Why a request was refused before it reached the server (its shape, its headers,
/// its body), with the JSON-RPC error it earns.
#[derive(Debug, PartialEq, Eq)]
pub enum EnvelopeError {
    /// Not JSON at all: `-32700` Parse error (JSON-RPC 2.0 §5.1), HTTP 400.
    Parse,
    /// A batch: not allowed since the 2025-06-18 revision. `-32600`, HTTP 400.
    Batch,
    /// JSON, but not a JSON-RPC message object (no string `method`, nor a `result` or
    /// `error`). `-32600`, HTTP 400.
    NotAnObject,
    /// A member twice, or one that differs from a protocol member only by case: other
    /// decoders could read another message out of it. `-32600`, HTTP 400.
    Ambiguous,
    /// `tools/call`, `prompts/get` or `resources/read` without its target as a string.
    /// `-32602` Invalid params, HTTP 400.
    NoTarget,
    /// Content-Type is not JSON. HTTP 415.
    ContentType,
    /// A method Streamable HTTP does not define (only POST, GET and DELETE). HTTP 405.
    Method,
    /// A GET or DELETE with a body. HTTP 400.
    BodyNotAllowed,
    /// A header that may appear once appears twice. HTTP 400.
    RepeatedHeader,
    /// Over the size bound. HTTP 413.
    TooLarge,
}

impl Envelope {
    pub fn parse(body: &[u8]) -> Result<Self, EnvelopeError> {
        // The common case first: one typed pass, no intermediate `Value` tree.
        if let Ok(ObjectOnly(call)) = serde_json::from_slice::<ObjectOnly<StrictCall>>(body) {
            let StrictToolsCall::ToolsCall = call.method;
            return Ok(Self {
                id: Some(call.id.clone().into_json_value()),
                method: Some("tools/call".to_owned()),
                tool: Some(call.params.0.name),
                uri: None,
                arguments: call.params.0.arguments.map(|a| a.0),
                plain_call: Some(PlainCall {
                    id: call.id,
                    meta: call.params.0.meta,
                }),
            });
        }
        let members = match serde_json::from_slice::<Top>(body) {
            Err(_) => return Err(EnvelopeError::Parse),
            Ok(Top::Array) => return Err(EnvelopeError::Batch),
            Ok(Top::Scalar) => return Err(EnvelopeError::NotAnObject),
            Ok(Top::Object(m)) => m,
        };
        unambiguous(members.iter().map(|(k, _)| k.as_str()), MESSAGE_MEMBERS)?;
        let member = |name: &str| members.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
        let value = |raw: &RawValue| serde_json::from_str::<Value>(raw.get()).ok();
        let method = match member("method").map(value) {
            None => None,
            Some(Some(Value::String(m))) => Some(m),
            Some(_) => return Err(EnvelopeError::NotAnObject),
        };
        // A message without a method is a response: it carries a result or an error.
        if method.is_none() && member("result").is_none() && member("error").is_none() {
            return Err(EnvelopeError::NotAnObject);
        }
        let id = member("id").and_then(value);
        let (mut tool, mut uri, mut arguments) = (None, None, None);
        if let Some(raw) = member("params")
            && let Ok(Top::Object(params)) = serde_json::from_str::<Top>(raw.get())
        {
            unambiguous(params.iter().map(|(k, _)| k.as_str()), PARAMS_MEMBERS)?;
            let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
            let string = |raw: Option<&RawValue>| match raw.and_then(value) {
                Some(Value::String(s)) => Some(s),
                _ => None,
            };
            tool = string(param("name"));
            uri = string(param("uri"));
            if let Some(raw) = param("arguments") {
                match serde_json::from_str::<Arguments>(raw.get()) {
                    Ok(a) => arguments = Some(a.0),
                    Err(e) if e.to_string().starts_with(DUPLICATE) => {
                        return Err(EnvelopeError::Ambiguous);
                    }
                    // Not an object: no arguments a policy could key on.
                    Err(_) => {}
                }
            }
        }
        let e = Self {
            id,
            method,
            tool,
            uri,
            arguments,
            plain_call: None,
        };
        if matches!(
            e.method.as_deref(),
            Some("tools/call" | "prompts/get" | "resources/read")
        ) && e.target().is_none()
        {
            return Err(EnvelopeError::NoTarget);
        }
        Ok(e)
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
            Self::Ambiguous => (
                StatusCode::BAD_REQUEST,
                -32600,
                "Invalid Request: a member appears twice, or differs from a protocol member only by case",
            ),
            Self::NoTarget => (
                StatusCode::BAD_REQUEST,
                -32602,
                "Invalid params: tools/call and prompts/get need params.name, resources/read params.uri, as a string",
            ),
            Self::Method => (
                StatusCode::METHOD_NOT_ALLOWED,
                -32600,
                "Method not allowed: Streamable HTTP uses POST, GET and DELETE",
            ),
            Self::BodyNotAllowed => (
                StatusCode::BAD_REQUEST,
                -32600,
                "Invalid Request: GET and DELETE carry no body",
            ),
            Self::RepeatedHeader => (
                StatusCode::BAD_REQUEST,
                -32600,
                "Invalid Request: a header that may appear once appears twice",
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
        let mut r = (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
        if self == Self::Method {
            // A 405 names the methods that are allowed (RFC 9110 §15.5.6).
            r.headers_mut().insert(
                header::ALLOW,
                http::HeaderValue::from_static("GET, POST, DELETE"),
            );
        }
        r
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
        ] {
            let e = Envelope::parse(body.as_bytes()).unwrap();
            assert!(e.plain_call.is_none(), "{body}");
        }
    }

    /// Each of these passed a policy that denies `danger` (the gateway read `safe`, or
    /// no target at all) while a decoder that keeps the first duplicate, or matches
    /// names case-insensitively, reads `danger`.
    #[test]
    fn a_message_other_decoders_could_read_otherwise_is_refused() {
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"Name":"danger"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"safe","Name":"danger"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"danger","name":"safe"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call","params":{"name":"danger"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"METHOD":"tools/call","params":{"name":"danger"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"Uri":"file:///secret"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///pub","URI":"file:///secret"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"safe"},"paramſ":{"name":"danger"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"safe"},"params":{"name":"danger"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"c","arguments":{"operation":"divide","operation":"add"}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"c","Arguments":{"operation":"divide"}}}"#,
        ] {
            assert_eq!(
                Envelope::parse(body.as_bytes()).unwrap_err(),
                EnvelopeError::Ambiguous,
                "{body}"
            );
        }
    }

    #[test]
    fn a_call_without_a_string_target_is_refused() {
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":5}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["danger"]}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"uri":"x"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"name":"x"}}"#,
        ] {
            assert_eq!(
                Envelope::parse(body.as_bytes()).unwrap_err(),
                EnvelopeError::NoTarget,
                "{body}"
            );
        }
        // A method that is not a string, or a message with neither method nor result.
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":5}"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
        ] {
            assert_eq!(
                Envelope::parse(body.as_bytes()).unwrap_err(),
                EnvelopeError::NotAnObject,
                "{body}"
            );
        }
        // A response and other methods stay accepted.
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"cursor":"c"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///a"}}"#,
        ] {
            assert!(Envelope::parse(body.as_bytes()).is_ok(), "{body}");
        }
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
mod proptests;
