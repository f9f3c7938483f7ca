//! Logging, and OpenTelemetry traces over OTLP/HTTP when `--otlp-endpoint` is set.
//!
//! mcpgate's spans (the request, the guard, the tool call, store steps, outbound
//! calls) are at debug level. The log layer keeps its own filter (`RUST_LOG`, `info`
//! by default), so without an OTLP endpoint no layer wants them and creating one
//! costs a cached callsite check. With an endpoint, the OpenTelemetry layer takes
//! every `mcpgate*` span and exports them in batches, on the runtime's threads.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{HeaderExtractor, HttpError};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The tracer provider, when traces are exported: [`shutdown`](Self::shutdown) it
/// before the process exits so that the last batch is sent.
#[derive(Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports what is buffered now (blocks: call it outside the runtime).
    pub fn flush(&self) {
        if let Some(p) = &self.provider {
            let _ = p.force_flush();
        }
    }

    /// Exports what is buffered and stops the exporter. Call it outside the runtime
    /// (it blocks) while the runtime is still alive (the export runs on it).
    pub fn shutdown(self) {
        if let Some(p) = self.provider
            && let Err(e) = p.shutdown()
        {
            eprintln!("mcpgate: exporting the last traces failed: {e}");
        }
    }
}

/// Installs the process's subscriber: logs to stderr (`RUST_LOG`,
/// `MCPGATE_LOG_FORMAT=json`) and, with `otlp_endpoint`, spans to that OTLP/HTTP
/// receiver. `rt` runs the exports.
pub fn init(otlp_endpoint: Option<&str>, rt: &tokio::runtime::Handle) -> anyhow::Result<Telemetry> {
    use tracing_subscriber::{EnvFilter, fmt};
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("MCPGATE_LOG_FORMAT").is_ok_and(|v| v == "json");
    let log = fmt::layer().with_writer(std::io::stderr);
    let log = if json {
        log.json().with_filter(filter).boxed()
    } else {
        log.with_filter(filter).boxed()
    };
    let (otel, provider) = match otlp_endpoint {
        None => (None, None),
        Some(url) => {
            let provider = provider(url, rt)?;
            let layer = tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("mcpgate"))
                .with_filter(tracing_subscriber::filter::filter_fn(|m| {
                    // mcpgate's own spans at any level; events at info and above
                    // (attached to their span).
                    (m.is_span() && m.target().starts_with("mcpgate"))
                        || (m.is_event() && *m.level() <= tracing::Level::INFO)
                }));
            (Some(layer), Some(provider))
        }
    };
    tracing_subscriber::registry()
        .with(log)
        .with(otel)
        .try_init()?;
    Ok(Telemetry { provider })
}

/// The URL spans are posted to: `<endpoint>/v1/traces`, as the OTLP specification
/// builds it from a base endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`), unless the
/// endpoint already names it.
pub fn traces_url(endpoint: &str) -> String {
    let e = endpoint.trim_end_matches('/');
    if e.ends_with("/v1/traces") {
        e.to_owned()
    } else {
        format!("{e}/v1/traces")
    }
}

fn provider(endpoint: &str, rt: &tokio::runtime::Handle) -> anyhow::Result<SdkTracerProvider> {
    let url = traces_url(endpoint);
    url::Url::parse(&url).map_err(|e| anyhow::anyhow!("--otlp-endpoint {endpoint:?}: {e}"))?;
    let client = Exporter {
        http: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()?,
        rt: rt.clone(),
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_endpoint(url)
        .build()?;
    let resource = opentelemetry_sdk::Resource::builder_empty()
        .with_service_name("mcpgate")
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// The OTLP exporter's HTTP client: the process's reqwest, on the tokio runtime.
/// The batch processor exports from a thread of its own, outside any runtime, so
/// the request is spawned on the runtime and awaited from there.
#[derive(Debug)]
struct Exporter {
    http: reqwest::Client,
    rt: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for Exporter {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, HttpError> {
        let http = self.http.clone();
        let sent = self.rt.spawn(async move {
            let (parts, body) = request.into_parts();
            let r = http
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await?;
            let mut answer = http::Response::new(bytes::Bytes::new());
            *answer.status_mut() = r.status();
            *answer.headers_mut() = r.headers().clone();
            *answer.body_mut() = r.bytes().await?;
            Ok::<_, reqwest::Error>(answer)
        });
        Ok(sent.await??)
    }
}

/// The server span of each request, continuing the caller's W3C `traceparent`
/// (W3C Trace Context §3.2) when it sends one. Installed only when traces are
/// exported.
pub fn layer(router: axum::Router) -> axum::Router {
    let propagator = Arc::new(TraceContextPropagator::new());
    router.layer(axum::middleware::from_fn(
        move |req: Request, next: Next| {
            let propagator = propagator.clone();
            async move {
                let route = req
                    .extensions()
                    .get::<MatchedPath>()
                    .map_or("unmatched", MatchedPath::as_str)
                    .to_owned();
                let span = tracing::debug_span!(
                    target: "mcpgate::http",
                    "request",
                    otel.name = format!("{} {route}", req.method()),
                    otel.kind = "server",
                    http.request.method = %req.method(),
                    http.route = %route,
                    http.response.status_code = tracing::field::Empty,
                );
                let parent = propagator.extract(&HeaderExtractor(req.headers()));
                let _ = span.set_parent(parent);
                let response = next.run(req).instrument(span.clone()).await;
                span.record("http.response.status_code", response.status().as_u16());
                response
            }
        },
    ))
}

/// Continues the trace a `tools/call` names in `params._meta.traceparent` (MCP
/// 2026-07-28, basic "OpenTelemetry trace context"): the guard calls this on the tool
/// call's span when traces are exported.
pub fn continue_from_meta(span: &tracing::Span, traceparent: &str, tracestate: Option<&str>) {
    let mut carrier = std::collections::HashMap::new();
    carrier.insert("traceparent".to_owned(), traceparent.to_owned());
    if let Some(s) = tracestate {
        carrier.insert("tracestate".to_owned(), s.to_owned());
    }
    let parent = TraceContextPropagator::new().extract(&carrier);
    let _ = span.set_parent(parent);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_go_to_the_traces_path_of_the_endpoint() {
        for (given, url) in [
            ("http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces"),
            ("http://127.0.0.1:4318/", "http://127.0.0.1:4318/v1/traces"),
            (
                "https://otel.example/v1/traces",
                "https://otel.example/v1/traces",
            ),
        ] {
            assert_eq!(traces_url(given), url);
        }
    }
}
