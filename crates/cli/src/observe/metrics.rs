//! Prometheus metrics: the `metrics` facade's recorder, rendered in the Prometheus
//! text format at `/metrics` on a listener of its own (`--metrics-listen`), never on
//! the public port.
//!
//! Recording stays off the guarded call's cost: the HTTP layer keeps one pair of
//! pre-registered handles per (route, status) and, once a pair exists, a request
//! costs a read lock, a lookup by the route template and two atomic updates; tool
//! calls are not recorded per call at all but added from the audit tally's counts
//! when they are written (every `--audit-interval`). Labels are bounded: routes are
//! the router's templates, never raw paths; tool names are kept up to
//! [`MAX_TOOL_LABELS`].

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mcpgate_mcp::audit::TakenCounts;
use metrics::{
    Counter, Histogram, counter, describe_counter, describe_gauge, describe_histogram, gauge,
    histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::process;

/// Latency buckets, in seconds: from the guarded call's half a millisecond to the
/// password hash's hundreds of milliseconds.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Most distinct tool names given a label of their own; later ones count as `other`.
/// Callers name the tools they call, so the set must be bounded.
pub const MAX_TOOL_LABELS: usize = 200;

/// How often histograms' samples are folded into their buckets when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder (once; later calls return the same handle).
/// Before this, every metric macro in every crate records nothing.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .expect("latency buckets are not empty")
                .install_recorder()
                .expect("no other metrics recorder is installed");
            describe();
            handle
        })
        .clone()
}

/// Whether [`install`] has run in this process.
pub fn installed() -> bool {
    HANDLE.get().is_some()
}

fn describe() {
    describe_counter!(
        "mcpgate_http_requests_total",
        "HTTP requests answered, by route template and status"
    );
    describe_histogram!(
        "mcpgate_http_request_duration_seconds",
        "Time from a request's arrival to its answer's head, by route template and status"
    );
    describe_counter!(
        "mcpgate_tool_calls_total",
        "tools/call requests by resource, tool and outcome (allowed, insufficient_scope; tool_error counts allowed calls whose tool reported an error)"
    );
    describe_counter!(
        "mcpgate_tokens_issued_total",
        "Access tokens issued by the token endpoint, by grant type"
    );
    describe_counter!(
        "mcpgate_token_validation_failures_total",
        "Bearer tokens the guard refused, by reason"
    );
    describe_counter!(
        "mcpgate_sign_ins_total",
        "Password sign-ins by outcome (ok, failed, throttled)"
    );
    describe_counter!(
        "mcpgate_registrations_total",
        "Clients registered through dynamic client registration (RFC 7591)"
    );
    describe_counter!(
        "mcpgate_revocations_total",
        "Revocations, by where they were asked for"
    );
    describe_counter!(
        "mcpgate_introspection_cache_total",
        "Token validations by introspection, answered from the cache (hit) or by the authorization server (miss)"
    );
    describe_histogram!(
        "mcpgate_db_step_duration_seconds",
        "Time of a store step (one atomic operation on the database), by step"
    );
    describe_gauge!(
        "mcpgate_db_pool_connections",
        "Database pool connections, by state (open, idle)"
    );
    describe_gauge!(
        "mcpgate_http_open_connections",
        "TCP connections open on the public listener"
    );
    describe_gauge!("process_resident_memory_bytes", "Resident memory in bytes");
    describe_gauge!("process_open_fds", "Open file descriptors");
}

/// What the `/metrics` handler samples when it is scraped.
#[derive(Clone)]
pub struct Sampler {
    /// The public listener, whose open connections are counted.
    pub public: SocketAddr,
    /// (open, idle) connections of the database pool, when there is one.
    pub pool: Option<Arc<dyn Fn() -> (u32, u32) + Send + Sync>>,
}

impl Sampler {
    fn sample(&self) {
        if let Some(rss) = process::resident_bytes() {
            gauge!("process_resident_memory_bytes").set(rss as f64);
        }
        if let Some(fds) = process::open_fds() {
            gauge!("process_open_fds").set(fds as f64);
        }
        if let Some(n) = process::open_connections(self.public) {
            gauge!("mcpgate_http_open_connections").set(n as f64);
        }
        if let Some(pool) = &self.pool {
            let (open, idle) = pool();
            gauge!("mcpgate_db_pool_connections", "state" => "open").set(open);
            gauge!("mcpgate_db_pool_connections", "state" => "idle").set(idle);
        }
    }
}

/// Binds `addr` and serves `/metrics` there (see [`serve`]); returns the bound address.
pub async fn spawn(
    addr: SocketAddr,
    handle: PrometheusHandle,
    sampler: Sampler,
    stop: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("--metrics-listen {addr}: {e}"))?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = serve(listener, handle, sampler, stop).await {
            tracing::error!(error = %e, "the metrics listener failed");
        }
    });
    Ok(bound)
}

/// Serves `GET /metrics` on `listener` until `stop` is cancelled, and folds the
/// histograms' samples every few seconds meanwhile.
pub async fn serve(
    listener: TcpListener,
    handle: PrometheusHandle,
    sampler: Sampler,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let upkeep = handle.clone();
    let upkeep_stop = stop.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(UPKEEP_EVERY);
        loop {
            tokio::select! {
                _ = tick.tick() => upkeep.run_upkeep(),
                _ = upkeep_stop.cancelled() => break,
            }
        }
    });
    let router = Router::new().route(
        "/metrics",
        get(move || {
            let (handle, sampler) = (handle.clone(), sampler.clone());
            async move {
                sampler.sample();
                (
                    [(
                        http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    handle.render(),
                )
                    .into_response()
            }
        }),
    );
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
}

/// The handles of one (route, status): created on its first request, then reused.
struct Handles {
    requests: Counter,
    latency: Histogram,
}

/// Per-route request counts and latencies, as a tower layer ([`HttpMetrics::layer`]):
/// a service and a future of its own rather than an axum `from_fn` middleware, which
/// boxes the inner call and allocates on every request.
#[derive(Default)]
pub struct HttpMetrics {
    /// Route template → handles per status. Both sets are bounded: the router's
    /// templates and the statuses it answers.
    routes: RwLock<HashMap<Box<str>, PerStatus>>,
}

/// The handles of one route, per status.
type PerStatus = Vec<(u16, Arc<Handles>)>;

/// The route label of requests no route matched (the directory of what is served).
const UNMATCHED: &str = "unmatched";

impl HttpMetrics {
    /// Wraps every route of `router`, and its fallback (call it once they are added);
    /// routed requests carry their [`MatchedPath`], the fallback's are `unmatched`.
    pub fn layer(router: Router) -> Router {
        router.layer(MetricsLayer(Arc::new(Self::default())))
    }

    fn handles(&self, route: &str, status: u16) -> Arc<Handles> {
        if let Some(h) = self
            .routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(route)
            .and_then(|v| v.iter().find(|(s, _)| *s == status))
        {
            return h.1.clone();
        }
        let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
        let per_status = routes.entry(route.into()).or_default();
        if let Some((_, h)) = per_status.iter().find(|(s, _)| *s == status) {
            return h.clone();
        }
        let labels = [("route", route.to_owned()), ("status", status.to_string())];
        let h = Arc::new(Handles {
            requests: counter!("mcpgate_http_requests_total", &labels),
            latency: histogram!("mcpgate_http_request_duration_seconds", &labels),
        });
        per_status.push((status, h.clone()));
        h
    }

    fn record(&self, route: Option<&MatchedPath>, status: u16, start: Instant) {
        let h = self.handles(route.map_or(UNMATCHED, MatchedPath::as_str), status);
        h.requests.increment(1);
        h.latency.record(start.elapsed());
    }
}

#[derive(Clone)]
struct MetricsLayer(Arc<HttpMetrics>);

impl<S> tower::Layer<S> for MetricsLayer {
    type Service = Recorded<S>;

    fn layer(&self, inner: S) -> Recorded<S> {
        Recorded {
            inner,
            metrics: self.0.clone(),
        }
    }
}

#[derive(Clone)]
struct Recorded<S> {
    inner: S,
    metrics: Arc<HttpMetrics>,
}

impl<S> tower::Service<Request> for Recorded<S>
where
    S: tower::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = RecordedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let route = req.extensions().get::<MatchedPath>().cloned();
        RecordedFuture {
            start: Instant::now(),
            route,
            metrics: self.metrics.clone(),
            inner: self.inner.call(req),
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner call's future; records its answer's status and latency when ready.
    struct RecordedFuture<F> {
        #[pin]
        inner: F,
        start: Instant,
        route: Option<MatchedPath>,
        metrics: Arc<HttpMetrics>,
    }
}

impl<F, E> Future for RecordedFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let out = std::task::ready!(this.inner.poll(cx));
        if let Ok(r) = &out {
            this.metrics
                .record(this.route.as_ref(), r.status().as_u16(), *this.start);
        }
        Poll::Ready(out)
    }
}

/// Adds a write's tool-call counts to `mcpgate_tool_calls_total`. In gateway mode the
/// audit names tools `<upstream>/<tool>`, and the upstream is the resource label;
/// otherwise the resource is the calculator. The `tool` label is the policy rule that
/// decided (the tool's name where the policy names it, else the pattern that matched,
/// `(default)` or `(unlisted)`): a caller who makes up tool names cannot make up
/// labels.
pub fn add_tool_calls(taken: &TakenCounts, gateway: bool) {
    if !installed() {
        return;
    }
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let mut sums: HashMap<(&str, &str, &'static str), u64> = HashMap::new();
    for c in &taken.counts {
        let resource = match gateway {
            true => c.tool.split_once('/').map_or("", |(r, _)| r),
            false => "calculator",
        };
        let tool = c.rule.as_str();
        let outcome = if c.allowed {
            "allowed"
        } else {
            "insufficient_scope"
        };
        *sums.entry((resource, tool, outcome)).or_default() += c.count;
    }
    let mut seen = SEEN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    for ((resource, tool, outcome), n) in sums {
        let key = format!("{resource}/{tool}");
        let (resource, tool) = if seen.contains(&key) || seen.len() < MAX_TOOL_LABELS {
            seen.insert(key);
            (resource, tool)
        } else {
            ("other", "other")
        };
        counter!("mcpgate_tool_calls_total", "resource" => resource.to_owned(),
            "tool" => tool.to_owned(), "outcome" => outcome)
        .increment(n);
    }
}
