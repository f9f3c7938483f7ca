//! Operating mcpgate: Prometheus metrics on a listener of their own, OpenTelemetry
//! traces over OTLP/HTTP, and what both need from the process (its memory, its
//! connections). Everything here is off unless configured, and costs nothing then:
//! no recorder means every `metrics` macro is a no-op, and no OTLP endpoint means no
//! tracing layer that would record the debug-level spans.

pub mod metrics;
pub mod otel;
pub mod process;

/// `router` with the HTTP metrics layer and the request-span layer, each only when
/// enabled (call it once every route and the fallback are added: a layer wraps the
/// routes that exist when it is added).
pub fn instrument(router: axum::Router, metrics: bool, traces: bool) -> axum::Router {
    let router = match metrics {
        true => metrics::HttpMetrics::layer(router),
        false => router,
    };
    match traces {
        true => otel::layer(router),
        false => router,
    }
}
