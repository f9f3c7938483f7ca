//! List answers narrowed to what the caller's token may use (`hide_unauthorized_*`),
//! in a JSON body or in the `data:` lines of an SSE body, by [`GatewayPolicy::narrow`].

use mcpgate_core::ScopeSet;
use serde_json::Value;

use crate::policy::GatewayPolicy;

/// Largest list answer the gateway rewrites.
pub const MAX_LIST_BYTES: usize = 8 * 1024 * 1024;

/// Filters a whole response body to `method`'s list; `None` when a message in it
/// cannot be read (not JSON): a list that cannot be narrowed is not passed on.
/// Messages that are not results (errors, notifications) pass unchanged.
pub fn list(
    body: &[u8],
    method: &str,
    policy: &GatewayPolicy,
    scopes: &ScopeSet,
    sse: bool,
) -> Option<Vec<u8>> {
    if !sse {
        return Some(
            filter_message(body, method, policy, scopes)?.unwrap_or_else(|| body.to_vec()),
        );
    }
    let text = std::str::from_utf8(body).ok()?;
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (content, end) = match line.strip_suffix('\n') {
            Some(c) => (c.strip_suffix('\r').unwrap_or(c), "\n"),
            None => (line, ""),
        };
        match content.strip_prefix("data:") {
            // An event with empty data primes a reconnection (MCP transport, "Resumability
            // and Redelivery"): nothing to narrow.
            Some(data) if data.trim().is_empty() => out.push_str(line),
            Some(data) => {
                let data = data.strip_prefix(' ').unwrap_or(data);
                match filter_message(data.as_bytes(), method, policy, scopes)? {
                    Some(new) => {
                        out.push_str("data: ");
                        out.push_str(std::str::from_utf8(&new).ok()?);
                        out.push_str(end);
                    }
                    None => out.push_str(line),
                }
            }
            None => out.push_str(line),
        }
    }
    Some(out.into_bytes())
}

/// Filters one JSON-RPC message: `Some(Some(narrowed))` for a result, `Some(None)`
/// for any other message (left as it is), `None` when it is not JSON at all.
fn filter_message(
    msg: &[u8],
    method: &str,
    policy: &GatewayPolicy,
    scopes: &ScopeSet,
) -> Option<Option<Vec<u8>>> {
    let mut v: Value = serde_json::from_slice(msg).ok()?;
    let Some(result) = v.get_mut("result").and_then(Value::as_object_mut) else {
        return Some(None);
    };
    policy.narrow(method, result, scopes);
    Some(serde_json::to_vec(&v).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcpgate_mcp::{ToolRule, ToolScopePolicy};

    fn policy() -> GatewayPolicy {
        GatewayPolicy {
            tools: ToolScopePolicy::new()
                .tool("echo", ToolRule::Fixed(ScopeSet::from_tokens(["a"])))
                .tool("add", ToolRule::Fixed(ScopeSet::from_tokens(["b"])))
                .default_rule(ToolRule::Deny),
            hide_tools: true,
            ..Default::default()
        }
    }

    #[test]
    fn json_and_sse_lists_are_narrowed() {
        let msg = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo"},{"name":"add"},{"name":"rm"}]}}"#;
        let scopes = ScopeSet::from_tokens(["a"]);
        let out = list(msg.as_bytes(), "tools/list", &policy(), &scopes, false).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["result"]["tools"].as_array().unwrap().len(), 1);
        let sse = format!("id: 1\ndata: \n\nevent: message\ndata: {msg}\n\n");
        let out = String::from_utf8(
            list(sse.as_bytes(), "tools/list", &policy(), &scopes, true).unwrap(),
        )
        .unwrap();
        assert!(out.starts_with("id: 1\ndata: \n\nevent: message\ndata: {"));
        assert!(out.ends_with("\n\n"));
        assert!(out.contains("echo") && !out.contains("\"add\"") && !out.contains("rm"));
    }

    #[test]
    fn a_list_that_cannot_be_read_is_not_passed_on() {
        let scopes = ScopeSet::from_tokens(["a"]);
        let p = policy();
        assert!(list(b"\x1f\x8b gzip", "tools/list", &p, &scopes, false).is_none());
        let sse = "event: message\ndata: {\"result\":{\"tools\":[{\"na\n\n";
        assert!(list(sse.as_bytes(), "tools/list", &p, &scopes, true).is_none());
        // An error answer lists nothing: it passes as it is.
        let err = br#"{"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"x"}}"#;
        assert_eq!(list(err, "tools/list", &p, &scopes, false).unwrap(), err);
    }
}
