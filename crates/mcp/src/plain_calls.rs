//! Answering plain `tools/call` requests without starting an rmcp service for them.
//!
//! In stateless mode rmcp serves every POST by deserializing the body into its message
//! types, serializing it back to check the SEP-2243 headers, starting a one-shot service
//! with its own peer, channels and task, and serializing the answer. For a tool that is
//! a plain function of its arguments, that machinery is most of the cost of a call
//! (callgrind: about 170k of the 230k instructions of an unguarded calculator call).
//!
//! A tool set that implements [`DirectTools`] lets the endpoint answer the one request
//! shape that dominates traffic — a well-formed `tools/call` on a known revision, with
//! headers that agree with the body — by calling the tool function and shaping the
//! result with rmcp's own result types and per-revision rules. Every other request, and
//! any call this module is not sure of, goes to rmcp unchanged, so that rmcp alone
//! decides every error and every other method. A differential test holds the two
//! answers equal for the calculator.

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderName, HeaderValue, header};
use rmcp::model::{
    CallToolResult, ClientCapabilities, JsonObject, JsonRpcResponse, JsonRpcVersion2_0,
    ProtocolVersion, RequestId, ServerJsonRpcMessage, ServerResult,
};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::guard::envelope::Envelope;
use crate::principal::Principal;

/// A tool set whose calls are plain functions of their arguments and caller: they send
/// nothing to the client while they run (no progress, no logging notifications, no
/// sampling or elicitation requests) and finish quickly. Such calls can be answered
/// without an rmcp service per request.
pub trait DirectTools: Send + Sync + 'static {
    /// The result of calling `name`, or `None` when `name` is not one of these tools
    /// (rmcp then answers, with the handler's own unknown-tool error, say).
    fn call_direct(
        &self,
        name: &str,
        arguments: Option<&JsonObject>,
        caller: Option<&Principal>,
    ) -> Option<CallToolResult>;
}

/// Which revision's rules shape the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Revision {
    /// `2026-07-28`: per-request `_meta` carries the version and client capabilities;
    /// results carry `resultType` (SEP-2567, SEP-2322).
    Inline,
    /// `2025-06-18` and `2025-11-25`: the version travels in the `MCP-Protocol-Version`
    /// header only, and results keep the shape without `resultType`.
    Header,
}

/// What the endpoint checks itself before answering directly: `Host` and `Origin`,
/// narrowed to exact matches of the allowed values (rmcp decides anything else).
#[derive(Debug, Clone)]
pub struct DirectGate {
    pub hosts: Arc<[String]>,
    /// Exact origins only; patterns such as `http://localhost:*` are left to rmcp.
    pub origins: Arc<[String]>,
}

impl DirectGate {
    fn admits(&self, headers: &HeaderMap) -> bool {
        let mut hosts = headers.get_all(header::HOST).iter();
        let (Some(host), None) = (hosts.next(), hosts.next()) else {
            return false;
        };
        if !self.hosts.iter().any(|h| h.as_bytes() == host.as_bytes()) {
            return false;
        }
        let mut origins = headers.get_all(header::ORIGIN).iter();
        match (origins.next(), origins.next()) {
            (None, _) => true,
            (Some(o), None) => self.origins.iter().any(|a| a.as_bytes() == o.as_bytes()),
            _ => false,
        }
    }
}

/// Answers `envelope` directly when it is a plain call of a direct tool on a revision
/// this module knows, with headers rmcp would accept; `None` otherwise.
pub fn answer(
    tools: &dyn DirectTools,
    gate: &DirectGate,
    headers: &HeaderMap,
    envelope: Envelope,
    caller: Option<&Principal>,
) -> Option<Response> {
    let call = envelope.plain_call?;
    let name = envelope.tool?;
    if !gate.admits(headers) || !accepts_json_and_sse(headers) {
        return None;
    }
    let revision = revision(headers, call.meta.as_deref(), &name)?;
    let result = tools.call_direct(&name, envelope.arguments.as_ref(), caller)?;
    Some(respond(call.id, revision, result))
}

// Named once: a lookup by `&str` parses the name on every call.
static MCP_PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
static MCP_METHOD: HeaderName = HeaderName::from_static("mcp-method");
static MCP_NAME: HeaderName = HeaderName::from_static("mcp-name");

/// The one header value of `name`, if there is exactly one and it is text.
fn single<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    let mut all = headers.get_all(name).iter();
    match (all.next(), all.next()) {
        (Some(v), None) => v.to_str().ok(),
        _ => None,
    }
}

/// The keys of a 2026-07-28 request's `_meta` that decide its revision (SEP-2575). The
/// types are rmcp's, so a value rmcp could not read fails here too, and the call goes
/// to rmcp, which answers it.
#[derive(Deserialize)]
struct InlineMeta {
    #[serde(rename = "io.modelcontextprotocol/protocolVersion", default)]
    protocol_version: Option<ProtocolVersion>,
    #[serde(rename = "io.modelcontextprotocol/clientCapabilities", default)]
    client_capabilities: Option<ClientCapabilities>,
}

/// The revision a call is on, when its headers and `_meta` agree the way the transport
/// requires; `None` leaves the call to rmcp (and so to rmcp's error, if it is one).
fn revision(headers: &HeaderMap, meta: Option<&RawValue>, name: &str) -> Option<Revision> {
    let header_version = single(headers, &MCP_PROTOCOL_VERSION)?;
    let Some(meta) = meta else {
        // Header-only revisions, without `_meta`.
        return [ProtocolVersion::V_2025_11_25, ProtocolVersion::V_2025_06_18]
            .iter()
            .any(|v| v.as_str() == header_version)
            .then_some(Revision::Header);
    };
    // With `_meta`, only 2026-07-28 (a progress token on an older revision, say,
    // defers). The header must repeat the body's version, the standard headers must
    // name the method and tool (SEP-2243), and `_meta` must carry the client
    // capabilities. Mcp-Param-* headers are checked against the tool's schema by rmcp,
    // so their presence defers.
    let meta: InlineMeta = serde_json::from_str(meta.get()).ok()?;
    let v = meta.protocol_version?;
    meta.client_capabilities?;
    if v != ProtocolVersion::V_2026_07_28
        || header_version != v.as_str()
        || single(headers, &MCP_METHOD)? != "tools/call"
        || single(headers, &MCP_NAME)? != name
        || headers.keys().any(|k| k.as_str().starts_with("mcp-param-"))
    {
        return None;
    }
    Some(Revision::Inline)
}

/// The transport asks POSTs to accept both JSON and SSE (MCP transport, "Sending
/// Messages to the Server"); only the plain spelling is recognised here.
fn accepts_json_and_sse(headers: &HeaderMap) -> bool {
    let (mut json, mut sse) = (false, false);
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else {
            return false;
        };
        if value.contains('"') {
            return false;
        }
        for entry in value.split(',') {
            let mut parts = entry.split(';');
            let essence = parts.next().unwrap_or_default().trim();
            if parts.next().is_some() {
                // Parameters (a weight of 0, say) are rmcp's to judge.
                continue;
            }
            json |= essence.eq_ignore_ascii_case("application/json");
            sse |= essence.eq_ignore_ascii_case("text/event-stream");
        }
    }
    json && sse
}

/// The JSON-RPC response, shaped by rmcp's per-revision rules for results.
fn respond(id: RequestId, revision: Revision, result: CallToolResult) -> Response {
    let mut result = ServerResult::CallToolResult(result);
    match revision {
        Revision::Inline => result.fill_missing_cache_hints(),
        Revision::Header => {
            result.strip_result_type_for_legacy_peer();
            result.strip_non_object_output_for_legacy_peer();
        }
    }
    let message = ServerJsonRpcMessage::Response(JsonRpcResponse {
        jsonrpc: JsonRpcVersion2_0,
        id,
        result,
    });
    match serde_json::to_vec(&message) {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "serializing a tool result failed");
            http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn accept_must_name_both_types_plainly() {
        assert!(accepts_json_and_sse(&headers(&[(
            "accept",
            "application/json, text/event-stream"
        )])));
        assert!(accepts_json_and_sse(&headers(&[
            ("accept", "text/event-stream"),
            ("accept", "Application/JSON")
        ])));
        assert!(!accepts_json_and_sse(&headers(&[(
            "accept",
            "application/json"
        )])));
        assert!(!accepts_json_and_sse(&headers(&[(
            "accept",
            "application/json, text/event-stream;q=0"
        )])));
        assert!(!accepts_json_and_sse(&headers(&[("accept", "*/*")])));
    }

    #[test]
    fn the_gate_wants_exact_host_and_origin() {
        let gate = DirectGate {
            hosts: vec!["calc.example".to_owned()].into(),
            origins: vec!["https://calc.example".to_owned()].into(),
        };
        assert!(gate.admits(&headers(&[("host", "calc.example")])));
        assert!(gate.admits(&headers(&[
            ("host", "calc.example"),
            ("origin", "https://calc.example")
        ])));
        assert!(!gate.admits(&headers(&[])));
        assert!(!gate.admits(&headers(&[("host", "evil.example")])));
        assert!(!gate.admits(&headers(&[
            ("host", "calc.example"),
            ("host", "calc.example")
        ])));
        assert!(!gate.admits(&headers(&[
            ("host", "calc.example"),
            ("origin", "https://evil.example")
        ])));
    }

    fn call(meta: Option<serde_json::Value>) -> Option<Box<RawValue>> {
        meta.map(|m| serde_json::value::to_raw_value(&m).unwrap())
    }

    #[test]
    fn revisions_need_agreeing_headers_and_meta() {
        let meta = serde_json::json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                                      "io.modelcontextprotocol/clientCapabilities": {}});
        let inline = headers(&[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "calculator"),
        ]);
        assert_eq!(
            revision(&inline, call(Some(meta.clone())).as_deref(), "calculator"),
            Some(Revision::Inline)
        );
        // Tool name header for another tool, or missing, or a parameter header.
        assert_eq!(
            revision(&inline, call(Some(meta.clone())).as_deref(), "other"),
            None
        );
        let no_name = headers(&[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
        ]);
        assert_eq!(
            revision(&no_name, call(Some(meta.clone())).as_deref(), "calculator"),
            None
        );
        let mut param = inline.clone();
        param.insert("mcp-param-a", HeaderValue::from_static("1"));
        assert_eq!(
            revision(&param, call(Some(meta.clone())).as_deref(), "calculator"),
            None
        );
        // Header and body disagree; required meta missing.
        let old_header = headers(&[
            ("mcp-protocol-version", "2025-11-25"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "calculator"),
        ]);
        assert_eq!(
            revision(&old_header, call(Some(meta)).as_deref(), "calculator"),
            None
        );
        let thin = serde_json::json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28"});
        assert_eq!(
            revision(&inline, call(Some(thin)).as_deref(), "calculator"),
            None
        );
        // Header-only revisions: known versions, no _meta.
        let legacy = headers(&[("mcp-protocol-version", "2025-11-25")]);
        assert_eq!(
            revision(&legacy, call(None).as_deref(), "calculator"),
            Some(Revision::Header)
        );
        let progress = serde_json::json!({"progressToken": 1});
        assert_eq!(
            revision(&legacy, call(Some(progress)).as_deref(), "calculator"),
            None
        );
        assert_eq!(
            revision(
                &headers(&[("mcp-protocol-version", "2025-03-26")]),
                call(None).as_deref(),
                "calculator"
            ),
            None
        );
        assert_eq!(
            revision(&headers(&[]), call(None).as_deref(), "calculator"),
            None
        );
    }
}
