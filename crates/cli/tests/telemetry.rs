//! Metrics and traces of a whole app, in a test binary of their own: the metrics
//! recorder and the trace subscriber are process-wide, so no other test may share
//! the process. The tests run one at a time on one runtime (which also runs the
//! trace exporter and the OTLP receiver) and read metrics as differences between a
//! scrape before and one after their workload.

#[allow(dead_code)]
#[path = "it/support.rs"]
mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use mcpgate::app::AppConfig;
use mcpgate::observe::{self, otel::Telemetry};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde_json::json;
use support::*;
use tokio_util::sync::CancellationToken;

/// A span as the OTLP receiver got it.
#[derive(Debug, Clone)]
struct Received {
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
}

struct World {
    rt: tokio::runtime::Runtime,
    telemetry: Telemetry,
    spans: Arc<Mutex<Vec<Received>>>,
    metrics_at: SocketAddr,
}

/// The process's runtime, recorder, subscriber, OTLP receiver and metrics listener.
static WORLD: LazyLock<World> = LazyLock::new(|| {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let spans = Arc::new(Mutex::new(Vec::new()));
    let receiver = rt.block_on(otlp_receiver(spans.clone()));
    let telemetry = observe::otel::init(Some(&format!("http://{receiver}")), rt.handle()).unwrap();
    mcpgate_mcp::trace::continue_from_meta_with(observe::otel::continue_from_meta);
    let handle = observe::metrics::install();
    let metrics_at = rt.block_on(async {
        let sampler = observe::metrics::Sampler {
            public: "127.0.0.1:9".parse().unwrap(),
            pool: None,
        };
        let addr = "127.0.0.1:0".parse().unwrap();
        observe::metrics::spawn(addr, handle, sampler, CancellationToken::new())
            .await
            .unwrap()
    });
    World {
        rt,
        telemetry,
        spans,
        metrics_at,
    }
});

/// One test at a time: the metrics are the process's.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A small OTLP/HTTP receiver: `POST /v1/traces` with a protobuf
/// `ExportTraceServiceRequest` (OTLP specification, "OTLP/HTTP"), decoded with the
/// OpenTelemetry project's own message definitions.
async fn otlp_receiver(spans: Arc<Mutex<Vec<Received>>>) -> SocketAddr {
    let router = Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let spans = spans.clone();
            async move {
                let req = ExportTraceServiceRequest::decode(body).expect("an OTLP trace export");
                let mut got = spans.lock().unwrap();
                for rs in req.resource_spans {
                    for ss in rs.scope_spans {
                        for s in ss.spans {
                            got.push(Received {
                                name: s.name,
                                trace_id: hex(&s.trace_id),
                                span_id: hex(&s.span_id),
                                parent_span_id: hex(&s.parent_span_id),
                            });
                        }
                    }
                }
                (
                    [("content-type", "application/x-protobuf")],
                    Vec::<u8>::new(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

fn observed(cfg: &mut AppConfig) {
    cfg.http_metrics = true;
    cfg.http_traces = true;
}

/// Every sample of a scrape, parsed by a Prometheus text-format parser.
async fn scrape() -> prometheus_parse::Scrape {
    let text = reqwest::get(format!("http://{}/metrics", WORLD.metrics_at))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("the metrics parse as Prometheus text format")
}

/// The value of `metric` with exactly-matching `labels` (0 when absent); for a
/// histogram, its count.
fn value(s: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    s.samples
        .iter()
        .filter(|x| x.metric == metric)
        .filter(|x| labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match &x.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            prometheus_parse::Value::Histogram(h) => h.iter().map(|b| b.count).fold(0.0, f64::max),
            prometheus_parse::Value::Summary(_) => 0.0,
        })
        .sum()
}

/// A metric, its labels, and how much the workload adds to it.
type Expected<'a> = (&'a str, Vec<(&'a str, &'a str)>, f64);

async fn call_with_meta(app: &TestApp, token: &str, meta_traceparent: &str) -> u16 {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "calculator", "arguments": {"operation": "add", "a": 1, "b": 2},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": {},
                  "traceparent": meta_traceparent}}});
    app.http
        .post(app.mcp_url())
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "calculator")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn a_scripted_workload_shows_in_the_metrics_with_its_labels_and_counts() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    WORLD.rt.block_on(async {
        let app = TestApp::spawn_configured(temp_dir(), |_| {}, observed).await;
        let before = scrape().await;

        // Registration, sign-in and consent (only op:add), the code exchange.
        let (client_id, t) = app.tokens(Some(&["op:add"])).await;
        let access = t["access_token"].as_str().unwrap();
        // A failed sign-in.
        let r = Browser::new(&app).login("alice", "not the password").await;
        assert_eq!(r.status(), 401);
        // Allowed calls, one of them a tool error; a call refused for its scope.
        for _ in 0..3 {
            assert_eq!(app.calc_status(access, "add", 1.0, 2.0).await, 200);
        }
        let r = app
            .calc("add", json!("one"), json!(2))
            .bearer_auth(access)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(body_json(r).await["result"]["isError"], true);
        assert_eq!(app.calc_status(access, "divide", 1.0, 2.0).await, 403);
        // Tools that do not exist, named by the caller: counted, but under the rule
        // that decided (none), never as labels of their own.
        for i in 0..5 {
            let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": format!("junk-{i}"), "arguments": {}}});
            let r = app
                .http
                .post(app.mcp_url())
                .bearer_auth(access)
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", "2025-11-25")
                .json(&call)
                .send()
                .await
                .unwrap();
            assert!(body_json(r).await["error"].is_object());
        }
        // Refused tokens: none, and a malformed one.
        let r = app.calc("add", json!(1), json!(2)).send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(app.calc_status("garbage", "add", 1.0, 2.0).await, 401);
        // A refresh, then the revocation of the new refresh token (RFC 7009).
        let r = app
            .refresh(&client_id, t["refresh_token"].as_str().unwrap(), None)
            .await;
        assert_eq!(r.status(), 200);
        let refreshed = body_json(r).await;
        let r = app
            .http
            .post(app.url("/revoke"))
            .form(&[
                ("token", refreshed["refresh_token"].as_str().unwrap()),
                ("client_id", client_id.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        // Tool calls reach the metrics when the audit writes them (every 50 ms here).
        tokio::time::sleep(Duration::from_millis(300)).await;

        let after = scrape().await;
        let delta = |metric: &str, labels: &[(&str, &str)]| {
            value(&after, metric, labels) - value(&before, metric, labels)
        };
        let mcp = format!("{}/mcp", app.path());
        let expected: Vec<Expected> = vec![
            ("mcpgate_registrations_total", vec![], 1.0),
            ("mcpgate_sign_ins_total", vec![("outcome", "ok")], 1.0),
            ("mcpgate_sign_ins_total", vec![("outcome", "failed")], 1.0),
            (
                "mcpgate_tokens_issued_total",
                vec![("grant_type", "authorization_code")],
                1.0,
            ),
            (
                "mcpgate_tokens_issued_total",
                vec![("grant_type", "refresh_token")],
                1.0,
            ),
            ("mcpgate_revocations_total", vec![("kind", "token")], 1.0),
            (
                "mcpgate_tool_calls_total",
                vec![
                    ("resource", "calculator"),
                    ("tool", "calculator"),
                    ("outcome", "allowed"),
                ],
                4.0,
            ),
            (
                "mcpgate_tool_calls_total",
                vec![
                    ("resource", "calculator"),
                    ("tool", "calculator"),
                    ("outcome", "insufficient_scope"),
                ],
                1.0,
            ),
            (
                "mcpgate_tool_calls_total",
                vec![
                    ("resource", "calculator"),
                    ("tool", "calculator"),
                    ("outcome", "tool_error"),
                ],
                1.0,
            ),
            (
                "mcpgate_tool_calls_total",
                vec![
                    ("resource", "calculator"),
                    ("tool", "(unlisted)"),
                    ("outcome", "allowed"),
                ],
                5.0,
            ),
            (
                "mcpgate_token_validation_failures_total",
                vec![("reason", "missing")],
                1.0,
            ),
            (
                "mcpgate_token_validation_failures_total",
                vec![("reason", "malformed")],
                1.0,
            ),
            (
                "mcpgate_http_requests_total",
                vec![("route", &mcp), ("status", "200")],
                9.0,
            ),
            (
                "mcpgate_http_requests_total",
                vec![("route", &mcp), ("status", "403")],
                1.0,
            ),
            (
                "mcpgate_http_requests_total",
                vec![("route", &mcp), ("status", "401")],
                2.0,
            ),
            (
                "mcpgate_http_request_duration_seconds",
                vec![("route", &mcp), ("status", "200")],
                9.0,
            ),
            (
                "mcpgate_db_step_duration_seconds",
                // The one exchange of the workload: spending the code and writing
                // what it issues is one store step.
                vec![("step", "redeem_code_into_family")],
                1.0,
            ),
        ];
        let mut wrong = Vec::new();
        for (metric, labels, want) in &expected {
            let got = delta(metric, labels);
            if got != *want {
                wrong.push(format!("{metric}{labels:?}: {got}, expected {want}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        let made_up: Vec<_> = after
            .samples
            .iter()
            .filter_map(|s| s.labels.get("tool"))
            .filter(|t| t.starts_with("junk"))
            .collect();
        assert!(made_up.is_empty(), "labels chosen by a caller: {made_up:?}");
        // Routes are templates, never raw paths: a path nobody serves is `unmatched`.
        let r = app
            .http
            .get(app.url("/no/such/path/12345"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        let s = scrape().await;
        assert!(value(&s, "mcpgate_http_requests_total", &[("route", "unmatched")]) >= 1.0);
        assert!(
            s.samples
                .iter()
                .all(|x| x.labels.get("route").is_none_or(|r| !r.contains("12345")))
        );
        // The process's own gauges.
        assert!(value(&s, "process_resident_memory_bytes", &[]) > 1e6);
        assert!(value(&s, "process_open_fds", &[]) > 3.0);
    });
}

#[test]
fn a_tool_call_is_one_trace_continuing_the_callers_traceparent() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (trace_id, parent) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let meta_trace = "0af7651916cd43dd8448eb211c80319c";
    WORLD.rt.block_on(async {
        let app = TestApp::spawn_configured(temp_dir(), |_| {}, observed).await;
        let token = app.all_ops();
        let r = app
            .calc_as(&token, "add", 1.0, 2.0)
            .header("traceparent", format!("00-{trace_id}-{parent}-01"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        // MCP 2026-07-28: trace context in the request's `_meta`.
        let status = call_with_meta(
            &app,
            &token,
            &format!("00-{meta_trace}-b7ad6b7169203331-01"),
        )
        .await;
        assert_eq!(status, 200);
    });
    std::thread::spawn(|| WORLD.telemetry.flush())
        .join()
        .unwrap();
    let spans = WORLD.spans.lock().unwrap().clone();
    let of =
        |t: &str| -> Vec<Received> { spans.iter().filter(|s| s.trace_id == t).cloned().collect() };
    let trace = of(trace_id);
    let names: Vec<&str> = trace.iter().map(|s| s.name.as_str()).collect();
    for want in ["mcp guard", "tools/call"] {
        assert!(names.contains(&want), "no {want:?} span in {names:?}");
    }
    let request = trace
        .iter()
        .find(|s| s.name.starts_with("POST ") && s.name.ends_with("/mcp"))
        .unwrap_or_else(|| panic!("no request span in {names:?}"));
    assert_eq!(
        request.parent_span_id, parent,
        "the caller's span is the parent"
    );
    let by_id: HashMap<&str, &Received> = trace.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let guard = trace.iter().find(|s| s.name == "mcp guard").unwrap();
    assert_eq!(guard.parent_span_id, request.span_id);
    let tool = trace.iter().find(|s| s.name == "tools/call").unwrap();
    assert_eq!(tool.parent_span_id, guard.span_id);
    assert!(by_id.len() == trace.len(), "span ids are unique");
    let meta: Vec<String> = of(meta_trace).into_iter().map(|s| s.name).collect();
    assert!(
        meta.iter().any(|n| n == "tools/call"),
        "the tool call continues the trace of its _meta.traceparent: {meta:?}"
    );
}
