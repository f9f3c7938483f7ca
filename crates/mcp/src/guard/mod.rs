//! The resource-server guard: a tower layer in front of `/mcp`.
//!
//! For each request it (1) takes the bearer token from the `Authorization` header only
//! (never from the query or the body: MCP "Token Requirements"), (2) validates it with
//! the configured [`TokenValidator`] — audience, issuer, expiry, revocation, (3) reads
//! the JSON-RPC body once, with a bound, refusing malformed input with the JSON-RPC
//! error the transport names, (4) for `tools/call`, checks the scopes the tool policy
//! demands *before* the tool runs, and (5) hands the [`Principal`] to the handler.

pub mod challenge;
pub mod dpop;
pub use challenge::tool_forbidden;
pub mod envelope;

use std::sync::Arc;

use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    middleware::{Next, from_fn_with_state},
    response::{IntoResponse, Response},
};
use http::{Method, header};

use crate::audit::{AuditSink, ToolCallEvent};
use crate::policy::ToolScopePolicy;
use crate::principal::Principal;
use crate::validator::{Rejection, TokenValidator};
pub use challenge::{Challenger, Refusal};
use dpop::Scheme;
pub use envelope::{Envelope, EnvelopeError};
use mcpgate_core::ScopeSet;

/// Configuration of one guarded endpoint.
#[derive(Clone)]
pub struct Guard {
    inner: Arc<GuardInner>,
}

struct GuardInner {
    /// `None` runs the endpoint unauthenticated (envelope checks only).
    validator: Option<Arc<dyn TokenValidator>>,
    policy: ToolScopePolicy,
    challenger: Challenger,
    max_body_bytes: usize,
    audit: Option<Arc<dyn AuditSink>>,
    /// How DPoP proofs are checked; `None`: DPoP-bound tokens are refused.
    dpop: Option<dpop::DpopCheck>,
}

impl Guard {
    /// A guard that authenticates every request with `validator`.
    pub fn new(
        validator: Arc<dyn TokenValidator>,
        policy: ToolScopePolicy,
        metadata_url: String,
        max_body_bytes: usize,
    ) -> Self {
        // MCP "Refresh Tokens": `offline_access` is never a resource's to ask for.
        let scope_hint = ScopeSet::from_tokens(
            policy
                .all_scopes()
                .iter()
                .filter(|s| *s != "offline_access"),
        )
        .to_string();
        Self {
            inner: Arc::new(GuardInner {
                validator: Some(validator),
                policy,
                challenger: Challenger {
                    metadata_url,
                    scope_hint,
                },
                max_body_bytes,
                audit: None,
                dpop: None,
            }),
        }
    }

    /// No authentication: the JSON-RPC envelope checks alone (development, benchmarks).
    pub fn open(max_body_bytes: usize) -> Self {
        Self {
            inner: Arc::new(GuardInner {
                validator: None,
                policy: ToolScopePolicy::new(),
                challenger: Challenger {
                    metadata_url: String::new(),
                    scope_hint: String::new(),
                },
                max_body_bytes,
                audit: None,
                dpop: None,
            }),
        }
    }

    /// Reports every `tools/call` decision to `sink`.
    pub fn with_audit(self, sink: Arc<dyn AuditSink>) -> Self {
        let inner = GuardInner {
            validator: self.inner.validator.clone(),
            policy: self.inner.policy.clone(),
            challenger: self.inner.challenger.clone(),
            max_body_bytes: self.inner.max_body_bytes,
            audit: Some(sink),
            dpop: self.inner.dpop.clone(),
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Accepts DPoP-bound tokens with proofs checked by `check` (RFC 9449 §7).
    pub fn with_dpop(self, check: dpop::DpopCheck) -> Self {
        let inner = GuardInner {
            validator: self.inner.validator.clone(),
            policy: self.inner.policy.clone(),
            challenger: self.inner.challenger.clone(),
            max_body_bytes: self.inner.max_body_bytes,
            audit: self.inner.audit.clone(),
            dpop: Some(check),
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Wraps a router (typically the one holding `/mcp`) with the guard.
    pub fn protect<S: Clone + Send + Sync + 'static>(
        &self,
        router: axum::Router<S>,
    ) -> axum::Router<S> {
        router.layer(from_fn_with_state(self.clone(), middleware))
    }
}

/// Pulls the token out of `Authorization: Bearer <token>` (RFC 6750 §2.1) or
/// `Authorization: DPoP <token>` (RFC 9449 §7.1); the scheme is case-insensitive
/// (RFC 9110 §11.1).
fn access_token(headers: &http::HeaderMap) -> Option<(Scheme, &str)> {
    // `from_utf8` rather than `HeaderValue::to_str`: the same answer for a token
    // (validators refuse anything but their own syntax), at a fraction of the cost
    // over a 500-byte value.
    let value = std::str::from_utf8(headers.get(header::AUTHORIZATION)?.as_bytes()).ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Scheme::Dpop
    } else {
        return None;
    };
    let token = token.trim();
    (!token.is_empty()).then_some((scheme, token))
}

/// A DPoP-bound token with the `DPoP` scheme and a good proof of its key; anything
/// else that is not a plain bearer call is refused (RFC 9449 §7.1, §7.2).
async fn check_binding(
    g: &GuardInner,
    method: &Method,
    headers: &http::HeaderMap,
    scheme: Scheme,
    token: &str,
    p: &Principal,
) -> Result<(), Refusal> {
    match (&p.jkt, scheme, &g.dpop) {
        (Some(jkt), Scheme::Dpop, Some(check)) => check.check(method, headers, token, jkt).await,
        (Some(_), Scheme::Bearer, _) => Err(Refusal::InvalidToken),
        (None, Scheme::Dpop, _) => Err(Refusal::DpopProof(
            "the access token is not bound to a DPoP key: send it as a bearer token".into(),
        )),
        _ => Err(Refusal::DpopProof(
            "this resource does not accept DPoP-bound tokens".into(),
        )),
    }
}

/// The guard as an axum middleware function (`from_fn_with_state(guard, middleware)`),
/// in a debug-level span (recorded only when traces are exported).
pub async fn middleware(State(g): State<Guard>, req: Request, next: Next) -> Response {
    use tracing::Instrument;
    let span = tracing::debug_span!(target: "mcpgate::guard", "mcp guard");
    guard(g, req, next).instrument(span).await
}

/// Headers a request may carry once only. Two values of one of them would let the
/// guard read one and the server behind it the other: two bearer tokens, two sessions
/// (the binding checked for one, the upstream serving the other), two versions or
/// method names (the policy decided for one message, the server dispatching another).
static SINGLE_VALUED: [http::HeaderName; 7] = [
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    http::HeaderName::from_static("mcp-session-id"),
    http::HeaderName::from_static("mcp-protocol-version"),
    http::HeaderName::from_static("mcp-method"),
    http::HeaderName::from_static("mcp-name"),
    http::HeaderName::from_static("last-event-id"),
];

/// The request's shape, before its token is read: Streamable HTTP defines POST (a
/// message), GET (a stream, no body) and DELETE (ending a session, no body) and
/// nothing else (MCP transport, "Sending Messages", "Listening for Messages from the
/// Server", "Session Management"); anything else never reaches the server.
fn check_request_shape(req: &Request) -> Result<(), EnvelopeError> {
    let m = req.method();
    if m == Method::GET || m == Method::DELETE {
        let has_body = req.headers().contains_key(header::TRANSFER_ENCODING)
            || req
                .headers()
                .get(header::CONTENT_LENGTH)
                .is_some_and(|v| v.as_bytes() != b"0");
        if has_body {
            return Err(EnvelopeError::BodyNotAllowed);
        }
    } else if m != Method::POST {
        return Err(EnvelopeError::Method);
    }
    let h = req.headers();
    // As many values as names: no header appears twice, and nothing to look up.
    if h.len() != h.keys_len()
        && SINGLE_VALUED
            .iter()
            .any(|n| h.get_all(n).iter().nth(1).is_some())
    {
        return Err(EnvelopeError::RepeatedHeader);
    }
    Ok(())
}

async fn guard(g: Guard, req: Request, next: Next) -> Response {
    let g = &g.inner;
    // CORS preflights carry no credentials by design; let them through (the CORS
    // layer outside answers them; nothing behind the guard serves OPTIONS).
    if req.method() == Method::OPTIONS {
        return next.run(req).await;
    }
    if let Err(e) = check_request_shape(&req) {
        return e.into_response();
    }
    let principal = match authenticate(g, req.method(), req.headers()).await {
        Ok(p) => p,
        Err(refusal) => return after_body(req, refusal, g.max_body_bytes).await,
    };
    if req.method() != Method::POST {
        // GET/DELETE: rmcp answers (405 in stateless mode).
        return next.run(with_principal(req, principal)).await;
    }
    if !envelope::is_json_content_type(req.headers().get(header::CONTENT_TYPE)) {
        return EnvelopeError::ContentType.into_response();
    }
    let (mut parts, body) = req.into_parts();
    let Some(bytes) = read_bounded(&parts.headers, body, g.max_body_bytes).await else {
        return EnvelopeError::TooLarge.into_response();
    };
    let envelope = match Envelope::parse(&bytes) {
        Ok(e) => e,
        Err(e) => return e.into_response(),
    };
    let mut tool_span = None;
    if let (Some(p), Some("tools/call"), Some(tool)) = (
        &principal,
        envelope.method.as_deref(),
        envelope.tool.as_deref(),
    ) {
        let decision = g.policy.decide(tool, envelope.arguments.as_ref());
        let need = decision.needs;
        let allowed = !decision.denied && p.scopes.is_superset(need);
        if let Some(sink) = &g.audit {
            sink.tool_call(&ToolCallEvent {
                caller: p,
                tool: crate::policy::truncate(tool, 128),
                operation: decision.keyed_by,
                allowed,
                needed: need,
                rule: decision.rule,
            });
        }
        if decision.denied {
            tracing::info!(target: "mcpgate::audit", event = "tool_call_denied", tool, subject = %p.subject, client_id = %p.client_id, "the policy allows no call of this tool");
            return challenge::tool_forbidden(envelope.id.as_ref());
        }
        if !allowed {
            tracing::info!(target: "mcpgate::audit", event = "tool_call_denied", tool, subject = %p.subject, client_id = %p.client_id, need = %need);
            return g
                .challenger
                .respond(Refusal::InsufficientScope(need.to_string()));
        }
        let span = tracing::debug_span!(target: "mcpgate::tool", "tools/call", otel.kind = "server", mcp.method.name = "tools/call", gen_ai.tool.name = tool);
        if !span.is_disabled() {
            crate::trace::continue_from_meta(&span, &bytes);
            tool_span = Some(span);
        }
    }
    if let Some(p) = principal {
        parts.extensions.insert(p);
    }
    // The endpoint answers plain tool calls from this reading (crate::plain_calls).
    parts.extensions.insert(envelope);
    let run = next.run(Request::from_parts(parts, Body::from(bytes)));
    match tool_span {
        Some(span) => tracing::Instrument::instrument(run, span).await,
        None => run.await,
    }
}

/// The caller, from the request's access token (and DPoP proof): `None` when this guard
/// validates no tokens; the challenge to answer when the token is missing or refused.
async fn authenticate(
    g: &GuardInner,
    method: &Method,
    headers: &http::HeaderMap,
) -> Result<Option<Arc<Principal>>, Response> {
    Ok(match &g.validator {
        None => None,
        Some(v) => {
            let Some((scheme, token)) = access_token(headers) else {
                metrics::counter!("mcpgate_token_validation_failures_total", "reason" => "missing")
                    .increment(1);
                return Err(g.challenger.respond(Refusal::MissingToken));
            };
            match v.validate(token).await {
                Ok(p) if p.jkt.is_none() && scheme == Scheme::Bearer => Some(p),
                Ok(p) => {
                    if let Err(refusal) = check_binding(g, method, headers, scheme, token, &p).await
                    {
                        metrics::counter!("mcpgate_token_validation_failures_total",
                            "reason" => "dpop")
                        .increment(1);
                        return Err(g.challenger.respond(refusal));
                    }
                    Some(p)
                }
                Err(Rejection::Invalid(reason)) => {
                    tracing::debug!(%reason, "access token refused");
                    metrics::counter!("mcpgate_token_validation_failures_total",
                        "reason" => reason.label())
                    .increment(1);
                    return Err(g.challenger.respond(Refusal::InvalidToken));
                }
                Err(Rejection::Unavailable(reason)) => {
                    tracing::warn!(%reason, "token validation unavailable");
                    metrics::counter!("mcpgate_token_validation_failures_total",
                        "reason" => "introspection_error")
                    .increment(1);
                    return Err(g.challenger.respond(Refusal::Unavailable));
                }
            }
        }
    })
}

/// A refusal answered before the request's body was read leaves that body on the
/// connection: an HTTP/1.1 server then closes the connection without saying so, and a
/// client that reuses it (as it may: nothing said `Connection: close`) fails on its next
/// request (the official Python client's discovery after a 401 did, now and then). So
/// the body is read, bounded, and dropped first; one too large to read closes the
/// connection, saying so.
async fn after_body(req: Request, mut refusal: Response, max: usize) -> Response {
    let (parts, body) = req.into_parts();
    if read_bounded(&parts.headers, body, max).await.is_none() {
        refusal
            .headers_mut()
            .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
    }
    refusal
}

fn with_principal(mut req: Request, p: Option<Arc<Principal>>) -> Request {
    if let Some(p) = p {
        req.extensions_mut().insert(p);
    }
    req
}

/// How much of an oversized body is read and thrown away before answering 413, so the
/// client still sending it receives the answer rather than a reset connection.
const DRAIN_BYTES: usize = 2 * 1024 * 1024;

/// Reads at most `max` bytes; `None` when the body is larger (drained up to
/// [`DRAIN_BYTES`] first; a body declared larger than that is not read).
async fn read_bounded(headers: &http::HeaderMap, body: Body, max: usize) -> Option<Bytes> {
    use http_body_util::BodyExt;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_BYTES as u64) {
        return None;
    }
    let mut body = body;
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let data = frame.ok()?.into_data().unwrap_or_default();
        seen += data.len();
        if seen > DRAIN_BYTES {
            return None;
        }
        if seen <= max {
            buf.extend_from_slice(&data);
        }
    }
    (seen <= max).then(|| Bytes::from(buf))
}
