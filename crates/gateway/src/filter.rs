//! List answers narrowed to what the caller's token may use (`hide_unauthorized_*`),
//! in a JSON body or in the `data:` lines of an SSE body, by [`GatewayPolicy::narrow`].

use mcpgate_core::ScopeSet;
use serde_json::Value;

use crate::policy::GatewayPolicy;

/// Largest list answer the gateway rewrites.
pub const MAX_LIST_BYTES: usize = 8 * 1024 * 1024;

/// Filters a whole response body to `method`'s list; anything it cannot read is
/// returned unchanged.
pub fn list(
    body: &[u8],
    method: &str,
    policy: &GatewayPolicy,
    scopes: &ScopeSet,
    sse: bool,
) -> Vec<u8> {
    if !sse {
        return filter_message(body, method, policy, scopes).unwrap_or_else(|| body.to_vec());
    }
    let text = String::from_utf8_lossy(body);
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (content, end) = match line.strip_suffix('\n') {
            Some(c) => (c.strip_suffix('\r').unwrap_or(c), "\n"),
            None => (line, ""),
        };
        match content.strip_prefix("data:") {
            Some(data) => {
                let data = data.strip_prefix(' ').unwrap_or(data);
                match filter_message(data.as_bytes(), method, policy, scopes) {
                    Some(new) => {
                        out.push_str("data: ");
                        out.push_str(&String::from_utf8_lossy(&new));
                        out.push_str(end);
                    }
                    None => out.push_str(line),
                }
            }
            None => out.push_str(line),
        }
    }
    out.into_bytes()
}

/// Filters one JSON-RPC message when it is a result.
fn filter_message(
    msg: &[u8],
    method: &str,
    policy: &GatewayPolicy,
    scopes: &ScopeSet,
) -> Option<Vec<u8>> {
    let mut v: Value = serde_json::from_slice(msg).ok()?;
    let result = v.get_mut("result")?.as_object_mut()?;
    policy.narrow(method, result, scopes);
    serde_json::to_vec(&v).ok()
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
        let out = list(msg.as_bytes(), "tools/list", &policy(), &scopes, false);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["result"]["tools"].as_array().unwrap().len(), 1);
        let sse = format!("event: message\ndata: {msg}\n\n");
        let out = String::from_utf8(list(sse.as_bytes(), "tools/list", &policy(), &scopes, true))
            .unwrap();
        assert!(out.starts_with("event: message\ndata: {"));
        assert!(out.ends_with("\n\n"));
        assert!(out.contains("echo") && !out.contains("\"add\"") && !out.contains("rm"));
    }
}
