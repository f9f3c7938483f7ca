//! The direct answer to plain tool calls (`mcpgate_mcp::plain_calls`) against rmcp's own:
//! two calculator endpoints over real HTTP, one answering plain calls directly and one
//! leaving everything to rmcp, get the same requests. Every answer must be the same
//! bytes, and the direct path must be taken exactly where it is meant to be.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use mcpgate_calculator::Calculator;
use mcpgate_mcp::rmcp::model::{CallToolResult, JsonObject};
use mcpgate_mcp::{DirectTools, EndpointConfig, Guard, McpEndpoint, Principal};
use serde_json::{Value, json};

/// The calculator, counting the calls answered directly.
struct Counting {
    calc: Calculator,
    calls: AtomicUsize,
}

impl DirectTools for Counting {
    fn call_direct(
        &self,
        name: &str,
        arguments: Option<&JsonObject>,
        caller: Option<&Principal>,
    ) -> Option<CallToolResult> {
        let r = self.calc.call_direct(name, arguments, caller);
        if r.is_some() {
            self.calls.fetch_add(1, Ordering::SeqCst);
        }
        r
    }
}

async fn endpoint(direct: Option<Arc<Counting>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = EndpointConfig::new(format!("{base}/mcp").parse().unwrap());
    let calc = Calculator::new();
    let mut svc = McpEndpoint::service(move || calc.clone(), &config);
    if let Some(d) = direct {
        svc = svc.with_direct(d, &config);
    }
    let router =
        Guard::open(config.max_body_bytes).protect(Router::new().route_service("/mcp", svc));
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

fn meta(version: &str) -> Value {
    json!({"io.modelcontextprotocol/protocolVersion": version,
           "io.modelcontextprotocol/clientCapabilities": {}})
}

fn call(id: Value, name: &str, arguments: Value, meta: Option<Value>) -> Value {
    let mut params = json!({"name": name, "arguments": arguments});
    if let Some(m) = meta {
        params["_meta"] = m;
    }
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params})
}

#[derive(Debug, Clone)]
struct Case {
    what: &'static str,
    headers: Vec<(&'static str, String)>,
    body: String,
    direct: bool,
}

fn inline_headers(name: &str) -> Vec<(&'static str, String)> {
    vec![
        ("mcp-protocol-version", "2026-07-28".into()),
        ("mcp-method", "tools/call".into()),
        ("mcp-name", name.into()),
    ]
}

fn legacy_headers(version: &str) -> Vec<(&'static str, String)> {
    vec![("mcp-protocol-version", version.into())]
}

/// A plain 2025-11-25 call with one more header.
fn legacy_with(
    what: &'static str,
    header: &'static str,
    value: &str,
    id: i64,
    direct: bool,
) -> Case {
    let mut headers = legacy_headers("2025-11-25");
    headers.push((header, value.into()));
    Case {
        what,
        headers,
        body: call(
            json!(id),
            "calculator",
            json!({"operation": "add", "a": 2, "b": 2}),
            None,
        )
        .to_string(),
        direct,
    }
}

fn cases() -> Vec<Case> {
    let add = json!({"operation": "add", "a": 5, "b": 8});
    let inline = |what, id: Value, args: Value, direct| Case {
        what,
        headers: inline_headers("calculator"),
        body: call(id, "calculator", args, Some(meta("2026-07-28"))).to_string(),
        direct,
    };
    let mut cases = vec![
        inline("2026 add, number id", json!(1), add.clone(), true),
        inline(
            "2026 divide, string id",
            json!("req-ü"),
            json!({"operation": "divide", "a": 1, "b": 3}),
            true,
        ),
        inline(
            "2026 division by zero",
            json!(2),
            json!({"operation": "divide", "a": 1, "b": 0}),
            true,
        ),
        inline(
            "2026 overflow",
            json!(3),
            json!({"operation": "multiply", "a": 1e308, "b": 10}),
            true,
        ),
        inline(
            "2026 unknown operation",
            json!(4),
            json!({"operation": "pow\u{1F600}", "a": 1, "b": 2}),
            true,
        ),
        inline(
            "2026 wrong type",
            json!(5),
            json!({"operation": "add", "a": "x", "b": 2}),
            true,
        ),
        inline("2026 no arguments", json!(6), json!(null), true),
        inline("2026 negative id", json!(-7), add.clone(), true),
        Case {
            what: "2026 _meta with client info and a log level",
            headers: inline_headers("calculator"),
            body: call(
                json!(23),
                "calculator",
                add.clone(),
                Some(
                    json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                            "io.modelcontextprotocol/clientCapabilities": {"sampling": {}},
                            "io.modelcontextprotocol/clientInfo": {"name": "c", "version": "1"},
                            "io.modelcontextprotocol/logLevel": "info"}),
                ),
            )
            .to_string(),
            direct: true,
        },
        Case {
            what: "2025-11-25 add",
            headers: legacy_headers("2025-11-25"),
            body: call(json!(8), "calculator", add.clone(), None).to_string(),
            direct: true,
        },
        Case {
            what: "2025-06-18 subtract",
            headers: legacy_headers("2025-06-18"),
            body: call(
                json!("s"),
                "calculator",
                json!({"operation": "subtract", "a": 2.5, "b": 8}),
                None,
            )
            .to_string(),
            direct: true,
        },
        // Everything below is rmcp's to answer.
        Case {
            what: "unknown tool",
            headers: inline_headers("nope"),
            body: call(json!(9), "nope", add.clone(), Some(meta("2026-07-28"))).to_string(),
            direct: false,
        },
        Case {
            what: "Mcp-Name names another tool",
            headers: inline_headers("other"),
            body: call(
                json!(10),
                "calculator",
                add.clone(),
                Some(meta("2026-07-28")),
            )
            .to_string(),
            direct: false,
        },
        Case {
            what: "_meta without client capabilities",
            headers: inline_headers("calculator"),
            body: call(
                json!(11),
                "calculator",
                add.clone(),
                Some(json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28"})),
            )
            .to_string(),
            direct: false,
        },
        Case {
            what: "header and _meta disagree",
            headers: vec![
                ("mcp-protocol-version", "2025-11-25".into()),
                ("mcp-method", "tools/call".into()),
                ("mcp-name", "calculator".into()),
            ],
            body: call(
                json!(12),
                "calculator",
                add.clone(),
                Some(meta("2026-07-28")),
            )
            .to_string(),
            direct: false,
        },
        Case {
            what: "unsupported version in _meta",
            headers: inline_headers("calculator"),
            body: call(
                json!(13),
                "calculator",
                add.clone(),
                Some(meta("2030-01-01")),
            )
            .to_string(),
            direct: false,
        },
        Case {
            what: "legacy call with a progress token",
            headers: legacy_headers("2025-11-25"),
            body: call(
                json!(14),
                "calculator",
                add.clone(),
                Some(json!({"progressToken": "p"})),
            )
            .to_string(),
            direct: false,
        },
        Case {
            what: "unknown protocol version header",
            headers: legacy_headers("1999-01-01"),
            body: call(json!(15), "calculator", add.clone(), None).to_string(),
            direct: false,
        },
        Case {
            what: "no protocol version header",
            headers: vec![],
            body: call(json!(16), "calculator", add.clone(), None).to_string(),
            direct: false,
        },
        Case {
            what: "extra member in params",
            headers: legacy_headers("2025-11-25"),
            body: json!({"jsonrpc": "2.0", "id": 17, "method": "tools/call",
                         "params": {"name": "calculator", "arguments": add, "extra": true}})
            .to_string(),
            direct: false,
        },
        legacy_with(
            "Accept without SSE",
            "accept",
            "application/json",
            18,
            false,
        ),
        legacy_with("foreign Host", "host", "evil.example", 19, false),
        legacy_with(
            "foreign Origin",
            "origin",
            "https://evil.example",
            20,
            false,
        ),
        Case {
            what: "tools/list",
            headers: vec![
                ("mcp-protocol-version", "2026-07-28".into()),
                ("mcp-method", "tools/list".into()),
            ],
            body: json!({"jsonrpc": "2.0", "id": 21, "method": "tools/list",
                         "params": {"_meta": meta("2026-07-28")}})
            .to_string(),
            direct: false,
        },
    ];
    // A browser client on the endpoint's own origin: an exact match, answered directly;
    // a loopback origin on another port is allowed by a pattern, which only rmcp matches.
    cases.push(legacy_with(
        "the endpoint's own Origin",
        "origin",
        "OWN_ORIGIN",
        24,
        true,
    ));
    cases.push(legacy_with(
        "Origin allowed by a port pattern",
        "origin",
        "http://localhost:6274",
        22,
        false,
    ));
    cases
}

async fn send(http: &reqwest::Client, base: &str, case: &Case) -> (u16, String, Vec<u8>) {
    let mut rb = http
        .post(format!("{base}/mcp"))
        .header("content-type", "application/json");
    if !case.headers.iter().any(|(k, _)| *k == "accept") {
        rb = rb.header("accept", "application/json, text/event-stream");
    }
    for (k, v) in &case.headers {
        rb = rb.header(*k, v.replace("OWN_ORIGIN", base));
    }
    let r = rb.body(case.body.clone()).send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ct, r.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn direct_answers_equal_rmcp_answers_and_are_taken_only_where_meant() {
    crate::support::install_crypto();
    let counting = Arc::new(Counting {
        calc: Calculator::new(),
        calls: AtomicUsize::new(0),
    });
    let fast = endpoint(Some(counting.clone())).await;
    let plain = endpoint(None).await;
    let http = reqwest::Client::new();
    for case in cases() {
        let before = counting.calls.load(Ordering::SeqCst);
        let a = send(&http, &fast, &case).await;
        let taken = counting.calls.load(Ordering::SeqCst) - before;
        let b = send(&http, &plain, &case).await;
        assert_eq!(
            taken,
            usize::from(case.direct),
            "{}: direct path taken {taken} times",
            case.what
        );
        assert_eq!(
            (a.0, &a.1, String::from_utf8_lossy(&a.2)),
            (b.0, &b.1, String::from_utf8_lossy(&b.2)),
            "{}: direct and rmcp answers differ",
            case.what
        );
        if case.direct {
            assert_eq!(a.0, 200, "{}", case.what);
            let v: Value = serde_json::from_slice(&a.2).unwrap();
            assert!(v["result"].is_object(), "{}: {v}", case.what);
        }
    }
}

/// The same differential over generated requests: every combination of revision
/// headers, `_meta`, ids, tool names, arguments and `Accept` values gets the same bytes
/// from both endpoints (the same answer, or both refuse alike). Cases default to 2,000
/// (each is two HTTP round trips, about 12 s); `PROPTEST_CASES` runs more.
#[test]
fn generated_calls_get_the_same_answer_direct_or_through_rmcp() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    crate::support::install_crypto();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let counting = Arc::new(Counting {
        calc: Calculator::new(),
        calls: AtomicUsize::new(0),
    });
    let (fast, plain) =
        rt.block_on(async { (endpoint(Some(counting.clone())).await, endpoint(None).await) });
    let http = reqwest::Client::new();

    let number = prop_oneof![
        any::<i32>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        Just(json!(1e308)),
        Just(json!("3")),
        Just(Value::Null),
    ];
    let operation = prop_oneof![
        Just(json!("add")),
        Just(json!("subtract")),
        Just(json!("multiply")),
        Just(json!("divide")),
        Just(json!("pow")),
        Just(json!("")),
        Just(json!(1)),
    ];
    let arguments = prop_oneof![
        Just(Value::Null),
        Just(json!({})),
        Just(json!([])),
        (operation, number.clone(), number.clone(), any::<bool>()).prop_map(|(op, a, b, extra)| {
            let mut args = json!({"operation": op, "a": a, "b": b});
            if extra {
                args["extra"] = json!(true);
            }
            args
        }),
    ];
    let id = prop_oneof![
        any::<i64>().prop_map(|n| json!(n)),
        "[a-zé]{0,6}".prop_map(|s| json!(s)),
        Just(json!(1.5)),
        Just(Value::Null),
        Just(json!(true)),
    ];
    let meta = prop_oneof![
        Just(None),
        Just(Some(meta("2026-07-28"))),
        Just(Some(meta("2025-11-25"))),
        Just(Some(
            json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28"})
        )),
        Just(Some(json!({"progressToken": "p"}))),
    ];
    let version = prop_oneof![
        Just(Some("2026-07-28")),
        Just(Some("2025-11-25")),
        Just(Some("2025-06-18")),
        Just(Some("1999-01-01")),
        Just(None),
    ];
    let method_header = prop_oneof![
        Just(Some("tools/call")),
        Just(Some("tools/list")),
        Just(None)
    ];
    let name = prop_oneof![Just("calculator"), Just("nope"), Just("")];
    let name_header = prop_oneof![Just(Some("calculator")), Just(Some("other")), Just(None)];
    let accept = prop_oneof![
        Just(None),
        Just(Some("application/json")),
        Just(Some("application/json;q=1, text/event-stream")),
        Just(Some("text/event-stream, application/json")),
    ];
    let method = prop_oneof![4 => Just("tools/call"), 1 => Just("tools/list")];
    let case = (
        (id, method, name, arguments, meta),
        (version, method_header, name_header, accept),
    )
        .prop_map(
            |((id, method, name, arguments, meta), (version, mh, nh, accept))| {
                let mut body = call(id, name, arguments, meta);
                body["method"] = json!(method);
                let mut headers = Vec::new();
                for (k, v) in [
                    ("mcp-protocol-version", version),
                    ("mcp-method", mh),
                    ("mcp-name", nh),
                    ("accept", accept),
                ] {
                    if let Some(v) = v {
                        headers.push((k, v.to_owned()));
                    }
                }
                Case {
                    what: "generated",
                    headers,
                    body: body.to_string(),
                    direct: false,
                }
            },
        );
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let mut runner = TestRunner::new(Config::with_cases(cases));
    runner
        .run(&case, |case| {
            let (a, b) = rt.block_on(async {
                (
                    send(&http, &fast, &case).await,
                    send(&http, &plain, &case).await,
                )
            });
            prop_assert_eq!(
                (a.0, &a.1, String::from_utf8_lossy(&a.2)),
                (b.0, &b.1, String::from_utf8_lossy(&b.2)),
                "headers {:?}, body {}",
                case.headers,
                case.body
            );
            Ok(())
        })
        .unwrap();
    assert!(
        counting.calls.load(Ordering::SeqCst) > 0,
        "the generator reaches the direct path"
    );
}
