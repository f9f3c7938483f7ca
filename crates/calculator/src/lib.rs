//! The reference tool set: one `calculator` tool with four operations, each behind its
//! own scope (`op:add`, `op:sub`, `op:mult`, `op:div`).
//!
//! - [`arithmetic`]: the operations themselves, with the rule that a result is a finite
//!   number or a tool error (never `inf`/`NaN`).
//! - [`server`]: the rmcp handler that lists and calls the tool, and logs who did what.
//! - [`scope_policy`]: the scopes each operation needs, as data the guard reads.

pub mod arithmetic;
pub mod server;

pub use arithmetic::{CalcError, Operation};
pub use server::Calculator;

use mcpgate_core::ScopeSet;
use mcpgate_mcp::{ToolRule, ToolScopePolicy};

/// The one tool's name, as clients call it.
pub const TOOL_NAME: &str = "calculator";

/// The scopes of the calculator with the words a consent page shows for each.
pub const SCOPES: [(&str, &str); 4] = [
    ("op:add", "Add numbers with the calculator"),
    ("op:sub", "Subtract numbers with the calculator"),
    ("op:mult", "Multiply numbers with the calculator"),
    ("op:div", "Divide numbers with the calculator"),
];

/// Which scope each operation needs: `add → op:add`, `subtract → op:sub`,
/// `multiply → op:mult`, `divide → op:div`.
pub fn scope_policy() -> ToolScopePolicy {
    ToolScopePolicy::new().tool(
        TOOL_NAME,
        ToolRule::ByArgument {
            argument: "operation",
            scopes: Operation::ALL
                .iter()
                .map(|op| (op.name(), ScopeSet::from_tokens([op.scope()])))
                .collect(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_operation_needs_its_own_scope() {
        let p = scope_policy();
        for (op, scope) in [
            ("add", "op:add"),
            ("subtract", "op:sub"),
            ("multiply", "op:mult"),
            ("divide", "op:div"),
        ] {
            let args = json!({"operation": op, "a": 1, "b": 2});
            assert_eq!(p.required(TOOL_NAME, args.as_object()).to_string(), scope);
        }
        assert_eq!(p.all_scopes().to_string(), "op:add op:div op:mult op:sub");
    }
}
