//! Serving 2026-07-28 (stateless) requests from stdio servers that speak the
//! `initialize` revisions, as nearly all do today: the gateway is the modern server
//! for the client and a legacy client for the pooled process.
//!
//! - The request is checked as a modern server must (`streamable-http.mdx` "Protocol
//!   Version Header", "Server Validation"; `basic/index.mdx` "`_meta`"): the version in
//!   `_meta` is one the gateway serves and the `MCP-Protocol-Version`, `Mcp-Method`
//!   and `Mcp-Name` headers repeat the body.
//! - Methods the revision removed (`versioning.mdx`, changelog) get 404 `-32601`, and
//!   `server/discover` is answered from the pooled process's `InitializeResult`.
//! - Results gain what the revision requires of them: `resultType` (SEP-2322) and,
//!   for cacheable results, `ttlMs` and `cacheScope` (`server/utilities/caching.mdx`).
//!
//! [`Shape`] also narrows list results to what the caller may use, for sessions too.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use mcpgate_core::ScopeSet;
use serde_json::{Value, json};

use mcpgate_mcp::Principal;

use crate::Upstream;
use crate::policy::GatewayPolicy;

/// The one modern revision the pool serves.
pub const MODERN: &str = "2026-07-28";
pub const PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";

/// Methods 2026-07-28 removed, and `subscriptions/listen`, which a pool of stateless
/// borrows cannot carry: a modern server answers them as unknown.
const NOT_SERVED: &[&str] = &[
    "initialize",
    "ping",
    "logging/setLevel",
    "resources/subscribe",
    "resources/unsubscribe",
    "subscriptions/listen",
];

/// A modern request refused before any process is borrowed.
#[derive(Debug)]
pub struct Refused {
    pub status: StatusCode,
    pub body: Value,
}

fn refuse(
    status: StatusCode,
    id: Option<&Value>,
    code: i64,
    message: &str,
    data: Option<Value>,
) -> Refused {
    let mut error = json!({"code": code, "message": message});
    if let Some(d) = data {
        error["data"] = d;
    }
    Refused {
        status,
        body: json!({"jsonrpc": "2.0", "id": id, "error": error}),
    }
}

/// The revisions that open with `initialize` and carry the version in a header only.
const LEGACY: &[&str] = &["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// True when a request without a session speaks 2026-07-28 (or a later revision): its
/// `_meta` names a protocol version, or its `MCP-Protocol-Version` header names a
/// revision that is not one of the `initialize` ones (a modern request that lacks
/// `_meta` must get the modern error, `-32602`). Otherwise `initialize` opens a legacy
/// session (`versioning.mdx`, "Backward Compatibility").
pub fn is_modern(msg: &Value, headers: &HeaderMap) -> bool {
    let meta = msg
        .pointer("/params/_meta")
        .and_then(|m| m.get(PROTOCOL_VERSION))
        .is_some();
    meta || is_modern_header(headers)
}

/// True when the `MCP-Protocol-Version` header names a revision after the
/// `initialize` ones: such a client has no session, and none to ask for. One lookup by
/// a prebuilt name (it runs on forwarded calls); the last value counts, as in
/// [`McpHeaders::read`].
pub fn is_modern_header(headers: &HeaderMap) -> bool {
    static VERSION: http::HeaderName = http::HeaderName::from_static("mcp-protocol-version");
    headers
        .get_all(&VERSION)
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| is_modern_version(v.trim()))
}

/// True when `version` is a revision after the `initialize` ones.
fn is_modern_version(version: &str) -> bool {
    !LEGACY.contains(&version)
}

/// True when `msg` is the final answer to a request and says the method is unknown:
/// a modern server answers that with HTTP 404 (`streamable-http.mdx`, "Protocol
/// Version Header"), which tells dual-era clients what they talk to.
pub fn is_method_not_found(msg: &[u8]) -> bool {
    serde_json::from_slice::<Value>(msg).is_ok_and(|v| {
        v.get("method").is_none()
            && v.pointer("/error/code").and_then(Value::as_i64) == Some(-32601)
    })
}

/// The transport's headers of one request, read in one pass over the headers rather
/// than one hashed lookup each (this runs on every forwarded call).
#[derive(Debug, Default, Clone, Copy)]
pub struct McpHeaders<'h> {
    pub version: Option<&'h str>,
    pub method: Option<&'h str>,
    pub name: Option<&'h str>,
}

impl<'h> McpHeaders<'h> {
    pub fn read(headers: &'h HeaderMap) -> Self {
        let mut out = Self::default();
        for (n, v) in headers {
            let slot = match n.as_str() {
                "mcp-protocol-version" => &mut out.version,
                "mcp-method" => &mut out.method,
                "mcp-name" => &mut out.name,
                _ => continue,
            };
            *slot = v.to_str().ok().map(str::trim);
        }
        out
    }

    /// True when the version names a revision after the `initialize` ones.
    pub fn is_modern(&self) -> bool {
        self.version.is_some_and(is_modern_version)
    }

    /// The `Mcp-Method` and `Mcp-Name` headers (SEP-2243; MCP transport, "Standard
    /// Request Headers", "Server Validation") must repeat the body's method and, for
    /// `tools/call`, `prompts/get` and `resources/read`, its target: a server or proxy
    /// may route on the headers, and the policy decided on the body. Required when
    /// `required` (a 2026-07-28 request); checked whenever present otherwise. The
    /// message to answer with `-32020` when they do not agree.
    pub fn agree(
        &self,
        method: &str,
        target: Option<&str>,
        required: bool,
    ) -> Result<(), &'static str> {
        let named = self.method.map(decoded);
        if (required || named.is_some()) && named.as_deref() != Some(method) {
            return Err("Header mismatch: Mcp-Method must name the method");
        }
        if let Some(target) = target {
            let name = self.name.map(decoded);
            if (required || name.is_some()) && name.as_deref() != Some(target) {
                return Err("Header mismatch: Mcp-Name must name the target");
            }
        }
        Ok(())
    }
}

/// A header value with `=?base64?…?=` decoded (`streamable-http.mdx`, "Standard
/// Request Headers"); borrowed unless it was encoded (undecodable: empty, which
/// matches no method or name).
fn decoded(v: &str) -> Cow<'_, str> {
    let Some(b64) = v
        .strip_prefix("=?base64?")
        .and_then(|s| s.strip_suffix("?="))
    else {
        return Cow::Borrowed(v);
    };
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap_or_default();
    Cow::Owned(String::from_utf8(raw).unwrap_or_default())
}

/// Checks a modern request; the method to serve when it passes.
pub fn check(msg: &Value, headers: &HeaderMap) -> Result<String, Refused> {
    let id = msg.get("id");
    let bad = StatusCode::BAD_REQUEST;
    let Some(method) = msg.get("method").and_then(Value::as_str) else {
        return Err(refuse(bad, id, -32600, "Invalid Request: no method", None));
    };
    let meta = msg.pointer("/params/_meta");
    let version = meta
        .and_then(|m| m.get(PROTOCOL_VERSION))
        .and_then(Value::as_str);
    let Some(version) = version else {
        return Err(refuse(
            bad,
            id,
            -32602,
            "Invalid params: _meta has no protocol version",
            None,
        ));
    };
    let mcp = McpHeaders::read(headers);
    if mcp.version.map(decoded).as_deref() != Some(version) {
        return Err(refuse(
            bad,
            id,
            -32020,
            "Header mismatch: MCP-Protocol-Version must repeat the version in _meta",
            None,
        ));
    }
    if version != MODERN {
        return Err(refuse(
            bad,
            id,
            -32022,
            "Unsupported protocol version",
            Some(json!({"supported": [MODERN], "requested": version})),
        ));
    }
    if meta.and_then(|m| m.get(CLIENT_CAPABILITIES)).is_none() {
        return Err(refuse(
            bad,
            id,
            -32602,
            "Invalid params: _meta has no client capabilities",
            None,
        ));
    }
    let named = match method {
        "tools/call" | "prompts/get" => msg.pointer("/params/name"),
        "resources/read" => msg.pointer("/params/uri"),
        _ => None,
    };
    if let Err(message) = mcp.agree(method, named.and_then(Value::as_str), true) {
        return Err(refuse(bad, id, -32020, message, None));
    }
    if NOT_SERVED.contains(&method) {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            id,
            -32601,
            "Method not found",
            None,
        ));
    }
    Ok(method.to_owned())
}

/// The `DiscoverResult` of a legacy server, from its `InitializeResult`: its
/// capabilities, less those a stateless client cannot use (logging levels, change
/// notifications and subscriptions need a session or `subscriptions/listen`).
pub fn discover(init: &Value) -> Value {
    let mut caps = init
        .get("capabilities")
        .cloned()
        .unwrap_or_else(|| json!({}));
    if let Some(c) = caps.as_object_mut() {
        c.remove("logging");
        for kind in ["tools", "prompts", "resources"] {
            if let Some(k) = c.get_mut(kind).and_then(Value::as_object_mut) {
                k.remove("listChanged");
                k.remove("subscribe");
            }
        }
    }
    let mut r = json!({
        "resultType": "complete",
        "supportedVersions": [MODERN],
        "capabilities": caps,
        "ttlMs": 0,
        "cacheScope": "private",
    });
    if let Some(info) = init.get("serverInfo") {
        r["_meta"] = json!({"io.modelcontextprotocol/serverInfo": info});
    }
    if let Some(i) = init.get("instructions") {
        r["instructions"] = i.clone();
    }
    r
}

/// How the messages of one request are shaped on their way to the client.
pub struct Shape {
    /// The id the client chose, put back on the answer (the pool sends its own).
    pub client_id: Option<Value>,
    /// Give results what 2026-07-28 requires, and drop server requests (MRTR
    /// replaces them: `streamable-http.mdx` "Receiving Messages").
    pub modern: bool,
    /// The method, for caching hints and list filtering.
    pub method: String,
    /// List results narrowed to what these scopes may use (`hide_unauthorized_tools`).
    pub filter: Option<(Arc<GatewayPolicy>, ScopeSet)>,
    /// In the pool (`modern`), the `progressToken` of the request on loan: a process
    /// lent to one request at a time may still send notifications of an earlier one
    /// (a request that timed out and kept working), and those are not this client's.
    /// Only progress naming this token, and log messages, reach it.
    pub progress_token: Option<Value>,
}

/// Results whose caching hints 2026-07-28 requires (`caching.mdx` "Cacheable Results").
const CACHEABLE: &[&str] = &[
    "tools/list",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
];

impl Shape {
    /// The shape of a request within a legacy session: lists narrowed, nothing else.
    pub fn for_session(up: &Upstream, p: &Principal, method: String) -> Self {
        let filter = up
            .policy
            .narrows(&method)
            .then(|| (up.policy.clone(), p.scopes.clone()));
        Self {
            client_id: None,
            modern: false,
            method,
            filter,
            progress_token: None,
        }
    }

    /// Whether this request's messages need any change at all.
    pub fn needed(&self) -> bool {
        self.client_id.is_some() || self.modern || self.filter.is_some()
    }

    /// One server message, reshaped; `None` drops it.
    pub fn apply(&self, msg: Bytes) -> Option<Bytes> {
        if !self.needed() {
            return Some(msg);
        }
        let Ok(mut v) = serde_json::from_slice::<Value>(&msg) else {
            return Some(msg);
        };
        if let Some(method) = v.get("method").and_then(Value::as_str) {
            if !self.modern {
                return Some(msg);
            }
            // Server requests are not carried on a modern stream (MRTR replaces
            // them), and notifications only when they are this request's.
            let ours = v.get("id").is_none()
                && match method {
                    "notifications/progress" => {
                        self.progress_token.is_some()
                            && v.pointer("/params/progressToken") == self.progress_token.as_ref()
                    }
                    "notifications/message" => true,
                    _ => false,
                };
            return ours.then_some(msg);
        }
        if let Some(id) = &self.client_id {
            v["id"] = id.clone();
        }
        if let Some(r) = v.get_mut("result").and_then(Value::as_object_mut) {
            if let Some((policy, scopes)) = &self.filter {
                policy.narrow(&self.method, r, scopes);
            }
            if self.modern {
                r.entry("resultType").or_insert_with(|| "complete".into());
                if CACHEABLE.contains(&self.method.as_str()) {
                    r.entry("ttlMs").or_insert_with(|| 0.into());
                    r.entry("cacheScope").or_insert_with(|| "private".into());
                }
            }
        }
        serde_json::to_vec(&v).ok().map(Bytes::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modern_headers(method: &str, name: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("mcp-protocol-version", MODERN.parse().unwrap());
        h.insert("mcp-method", method.parse().unwrap());
        if let Some(n) = name {
            h.insert("mcp-name", n.parse().unwrap());
        }
        h
    }

    /// The header's lookup and the one-pass read agree: the last value counts, trimmed;
    /// an `initialize` revision or none is not modern.
    #[test]
    fn the_version_header_is_read_alike_by_both_readers() {
        let cases: &[&[&str]] = &[
            &[],
            &["2025-11-25"],
            &[MODERN],
            &[" 2026-07-28 "],
            &[MODERN, "2025-06-18"],
            &["2025-06-18", MODERN],
        ];
        for values in cases {
            let mut h = HeaderMap::new();
            for v in *values {
                h.append("mcp-protocol-version", v.parse().unwrap());
            }
            let expected = values.last().is_some_and(|v| v.trim() == MODERN);
            assert_eq!(is_modern_header(&h), expected, "{values:?}");
            assert_eq!(McpHeaders::read(&h).is_modern(), expected, "{values:?}");
        }
    }

    fn call(method: &str, version: &str) -> Value {
        json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": {"name": "echo",
            "_meta": {PROTOCOL_VERSION: version, CLIENT_CAPABILITIES: {}}}})
    }

    #[test]
    fn modern_requests_are_checked_as_a_modern_server_must() {
        let ok = call("tools/call", MODERN);
        assert!(is_modern(&ok, &HeaderMap::new()));
        assert_eq!(
            check(&ok, &modern_headers("tools/call", Some("echo"))).unwrap(),
            "tools/call"
        );
        // Mcp-Name base64-encoded is decoded before comparing.
        let enc = modern_headers("tools/call", Some("=?base64?ZWNobw==?="));
        assert!(check(&ok, &enc).is_ok());
        let e = check(&ok, &modern_headers("tools/call", Some("other"))).unwrap_err();
        assert_eq!(
            (e.status, e.body["error"]["code"].as_i64()),
            (StatusCode::BAD_REQUEST, Some(-32020))
        );
        let e = check(&ok, &modern_headers("tools/list", Some("echo"))).unwrap_err();
        assert_eq!(e.body["error"]["code"], -32020);
        let old = call("tools/call", "2099-01-01");
        let mut h = modern_headers("tools/call", Some("echo"));
        h.insert("mcp-protocol-version", "2099-01-01".parse().unwrap());
        let e = check(&old, &h).unwrap_err();
        assert_eq!(e.body["error"]["code"], -32022);
        assert_eq!(e.body["error"]["data"]["supported"][0], MODERN);
        let e = check(&call("ping", MODERN), &modern_headers("ping", None)).unwrap_err();
        assert_eq!(
            (e.status, e.body["error"]["code"].as_i64()),
            (StatusCode::NOT_FOUND, Some(-32601))
        );
        let legacy = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
        let mut h = HeaderMap::new();
        assert!(!is_modern(&legacy, &h));
        h.insert("mcp-protocol-version", "2025-11-25".parse().unwrap());
        assert!(!is_modern(&legacy, &h));
        // A modern header without `_meta`: modern, and refused as such.
        h.insert("mcp-protocol-version", MODERN.parse().unwrap());
        assert!(is_modern(&legacy, &h));
        assert_eq!(
            check(&legacy, &h).unwrap_err().body["error"]["code"],
            -32602
        );
        assert!(is_method_not_found(
            br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"x"}}"#
        ));
        assert!(!is_method_not_found(
            br#"{"jsonrpc":"2.0","id":1,"result":{}}"#
        ));
    }

    #[test]
    fn discover_comes_from_the_initialize_result() {
        let init = json!({"protocolVersion": "2025-11-25", "serverInfo": {"name": "s", "version": "1"},
            "capabilities": {"tools": {"listChanged": true}, "logging": {}, "resources": {"subscribe": true}},
            "instructions": "use it"});
        let d = discover(&init);
        assert_eq!(d["supportedVersions"], json!([MODERN]));
        assert_eq!(d["capabilities"], json!({"tools": {}, "resources": {}}));
        assert_eq!(
            d["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
            "s"
        );
        assert_eq!(d["instructions"], "use it");
        assert_eq!(d["resultType"], "complete");
    }

    #[test]
    fn results_get_the_client_id_and_the_modern_fields() {
        let s = Shape {
            client_id: Some(json!("c-1")),
            modern: true,
            method: "tools/list".into(),
            filter: None,
            progress_token: Some(json!("p-1")),
        };
        let out = s
            .apply(Bytes::from_static(
                br#"{"jsonrpc":"2.0","id":"mcpgate-pool-3","result":{"tools":[]}}"#,
            ))
            .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["id"], "c-1");
        assert_eq!(v["result"]["resultType"], "complete");
        assert_eq!(v["result"]["ttlMs"], 0);
        assert_eq!(v["result"]["cacheScope"], "private");
        // Server requests are not carried on a modern stream; notifications are.
        assert!(
            s.apply(Bytes::from_static(
                br#"{"jsonrpc":"2.0","id":1,"method":"sampling/createMessage"}"#
            ))
            .is_none()
        );
        let progress = |token: &str| {
            Bytes::from(format!(
                r#"{{"jsonrpc":"2.0","method":"notifications/progress","params":{{"progressToken":"{token}","progress":1}}}}"#
            ))
        };
        assert!(s.apply(progress("p-1")).is_some());
        // Another request's progress (an earlier borrower's), a change notice: not
        // this client's.
        assert!(s.apply(progress("p-0")).is_none());
        assert!(
            s.apply(Bytes::from_static(
                br#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#
            ))
            .is_none()
        );
        assert!(
            s.apply(Bytes::from_static(
                br#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"x"}}"#
            ))
            .is_some()
        );
    }
}
