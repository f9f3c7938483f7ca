//! Trace context carried in a request's `_meta` (MCP 2026-07-28, basic "OpenTelemetry
//! trace context": the keys `traceparent` and `tracestate`, in W3C Trace Context
//! format). This crate does not depend on OpenTelemetry: the deployment that exports
//! traces registers how a span continues a trace ([`continue_from_meta_with`]), and
//! the guard calls it on a tool call's span only when that span is recorded.

use std::sync::OnceLock;

use serde::Deserialize;

/// Makes `span` continue the trace of (`traceparent`, `tracestate`).
pub type ContinueTrace = fn(&tracing::Span, &str, Option<&str>);

static CONTINUE: OnceLock<ContinueTrace> = OnceLock::new();

/// Registers how spans continue a `_meta` trace context (once per process).
pub fn continue_from_meta_with(f: ContinueTrace) {
    let _ = CONTINUE.set(f);
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    params: Option<Params<'a>>,
}

#[derive(Deserialize)]
struct Params<'a> {
    #[serde(rename = "_meta", borrow)]
    meta: Option<Meta<'a>>,
}

#[derive(Deserialize)]
struct Meta<'a> {
    #[serde(borrow)]
    traceparent: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    tracestate: Option<std::borrow::Cow<'a, str>>,
}

/// If `span` is recorded and a continuation is registered, makes it continue the
/// trace context of `body`'s `params._meta`, when there is one.
pub(crate) fn continue_from_meta(span: &tracing::Span, body: &[u8]) {
    let Some(f) = CONTINUE.get() else { return };
    if span.is_disabled() {
        return;
    }
    let Ok(Message {
        params:
            Some(Params {
                meta:
                    Some(Meta {
                        traceparent: Some(tp),
                        tracestate,
                    }),
            }),
    }) = serde_json::from_slice::<Message<'_>>(body)
    else {
        return;
    };
    f(span, &tp, tracestate.as_deref());
}
