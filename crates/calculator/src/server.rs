//! The rmcp handler of the calculator. Arguments are validated here, by hand, so that
//! each kind of bad input gets the answer the MCP tools specification names: an unknown
//! tool is a protocol error (`-32602`); a wrong type, a missing argument or an unknown
//! operation is a tool execution error (`isError: true`) the model can correct.

use std::sync::Arc;

use mcpgate_mcp::rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
        JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig,
        Tool, ToolAnnotations,
    },
    service::RequestContext,
};
use mcpgate_mcp::{DirectTools, Principal};
use serde_json::{Value, json};

use crate::{Operation, TOOL_NAME};

/// The calculator tool set. Cloning is cheap: the tool definition is shared.
#[derive(Debug, Clone)]
pub struct Calculator {
    tool: Arc<Tool>,
}

impl Default for Calculator {
    fn default() -> Self {
        Self::new()
    }
}

impl Calculator {
    pub fn new() -> Self {
        Self {
            tool: Arc::new(tool_definition()),
        }
    }

    /// Runs one call; `who` is only for the debug line. The record of who called what
    /// is the guard's audit (counts per caller and operation), not a log line per call:
    /// formatting and writing one cost a third of a call.
    pub fn call(&self, arguments: Option<&JsonObject>, who: Option<&Principal>) -> CallToolResult {
        let (op, a, b) = match parse_arguments(arguments) {
            Ok(v) => v,
            Err(msg) => {
                tool_error();
                return CallToolResult::error(vec![ContentBlock::text(msg)]);
            }
        };
        let outcome = op.apply(a, b);
        tracing::debug!(
            target: "mcpgate::audit",
            event = "tool_call",
            tool = TOOL_NAME,
            operation = op.name(),
            subject = who.map(|p| p.subject.as_str()).unwrap_or("anonymous"),
            user = who.map(Principal::display_name).unwrap_or("anonymous"),
            client_id = who.map(|p| p.client_id.as_str()).unwrap_or("-"),
            ok = outcome.is_ok(),
            "calculator {op}"
        );
        match outcome {
            Ok(r) => {
                let mut result = CallToolResult::structured(json!({ "result": r }));
                result.content = vec![ContentBlock::text(format_number(r))];
                result
            }
            Err(e) => {
                tool_error();
                CallToolResult::error(vec![ContentBlock::text(e.to_string())])
            }
        }
    }
}

/// Counts a call the guard allowed whose result is a tool error (`isError: true`).
fn tool_error() {
    metrics::counter!("mcpgate_tool_calls_total", "resource" => "calculator",
        "tool" => TOOL_NAME, "outcome" => "tool_error")
    .increment(1);
}

fn tool_definition() -> Tool {
    let input = json!({
        "type": "object",
        "properties": {
            "operation": {
                "type": "string",
                "enum": ["add", "subtract", "multiply", "divide"],
                "description": "The operation to perform"
            },
            "a": { "type": "number", "description": "The first operand" },
            "b": { "type": "number", "description": "The second operand" }
        },
        "required": ["operation", "a", "b"]
    });
    let output = json!({
        "type": "object",
        "properties": { "result": { "type": "number", "description": "The result" } },
        "required": ["result"]
    });
    let mut tool = Tool::new(TOOL_NAME, "Perform basic math operations", as_object(input));
    tool.output_schema = Some(Arc::new(as_object(output)));
    tool.title = Some("Calculator".into());
    let mut ann = ToolAnnotations::default();
    ann.read_only_hint = Some(true);
    ann.destructive_hint = Some(false);
    ann.idempotent_hint = Some(true);
    ann.open_world_hint = Some(false);
    tool.annotations = Some(ann);
    tool
}

fn as_object(v: Value) -> JsonObject {
    match v {
        Value::Object(m) => m,
        _ => unreachable!("schema literals are objects"),
    }
}

fn parse_arguments(args: Option<&JsonObject>) -> Result<(Operation, f64, f64), String> {
    let args = args.ok_or("Missing arguments: operation, a and b are required")?;
    let op = match args.get("operation") {
        None => return Err("Missing argument: operation".into()),
        Some(Value::String(s)) => Operation::parse(s).ok_or_else(|| {
            format!(
                "Unknown operation {:?}: use add, subtract, multiply or divide",
                s.chars().take(32).collect::<String>()
            )
        })?,
        Some(_) => return Err("Argument operation must be a string".into()),
    };
    let number = |name: &str| match args.get(name) {
        None => Err(format!("Missing argument: {name}")),
        Some(Value::Number(n)) => n
            .as_f64()
            .ok_or_else(|| format!("Argument {name} is not a number")),
        Some(_) => Err(format!("Argument {name} must be a number")),
    };
    Ok((op, number("a")?, number("b")?))
}

/// Integers print without a fractional part (`13`, not `13.0`).
fn format_number(r: f64) -> String {
    if r.fract() == 0.0 && r.abs() < 1e15 {
        format!("{}", r as i64)
    } else {
        format!("{r}")
    }
}

/// The calculator is a plain function of its arguments: its calls can be answered
/// without an rmcp service per request (see `mcpgate_mcp::plain_calls`).
impl DirectTools for Calculator {
    fn call_direct(
        &self,
        name: &str,
        arguments: Option<&JsonObject>,
        caller: Option<&Principal>,
    ) -> Option<CallToolResult> {
        (name == TOOL_NAME).then(|| self.call(arguments, caller))
    }
}

impl ServerHandler for Calculator {
    fn get_info(&self) -> ServerConfig {
        // Prompts and resources are declared, with empty lists, because 2026-07-28
        // clients list them unconditionally and cache by the result's `ttlMs`.
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_prompts()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new(
            "mcpgate-calculator",
            env!("CARGO_PKG_VERSION"),
        ))
        .with_instructions(
            "A calculator. Call the `calculator` tool with an operation (add, subtract, \
             multiply, divide) and two numbers a and b.",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _cx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(vec![(*self.tool).clone()]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        cx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if request.name != TOOL_NAME {
            let name: String = request.name.chars().take(64).collect();
            return Err(ErrorData::invalid_params(
                format!("Unknown tool: {name}"),
                None,
            ));
        }
        Ok(self
            .call(request.arguments.as_ref(), Principal::from_context(&cx))
            .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(r: &CallToolResult) -> String {
        serde_json::to_value(&r.content).unwrap()[0]["text"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn add_returns_text_and_structured_result() {
        let r = Calculator::new().call(json!({"operation":"add","a":5,"b":8}).as_object(), None);
        assert_ne!(r.is_error, Some(true));
        assert_eq!(text(&r), "13");
        assert_eq!(r.structured_content, Some(json!({"result": 13.0})));
    }

    #[test]
    fn bad_inputs_are_tool_errors() {
        let c = Calculator::new();
        for (args, needle) in [
            (json!({"operation":"pow","a":1,"b":2}), "Unknown operation"),
            (json!({"operation":"add","a":"1","b":2}), "must be a number"),
            (json!({"operation":"add","a":1}), "Missing argument: b"),
            (
                json!({"operation":"divide","a":1,"b":0}),
                "Division by zero",
            ),
            (
                json!({"operation":"multiply","a":1e308,"b":10}),
                "not a finite number",
            ),
        ] {
            let r = c.call(args.as_object(), None);
            assert_eq!(r.is_error, Some(true), "{args}");
            assert!(text(&r).contains(needle), "{args}: {}", text(&r));
            assert!(r.structured_content.is_none());
        }
    }
}
