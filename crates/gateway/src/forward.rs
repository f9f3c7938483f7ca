//! Streamable HTTP upstreams: the request goes over one pooled client with the
//! client's credentials removed, and the response comes back as a stream, so SSE
//! answers to POST and GET flow through as the upstream writes them.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::response::Response;
use futures_util::StreamExt;
use http::{HeaderValue, Method, StatusCode};
use http_body_util::BodyDataStream;
use mcpgate_mcp::Principal;
use mcpgate_mcp::guard::Envelope;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::errors::GatewayError;
use crate::{SESSION_HEADER, Upstream, filter, headers};

pub struct HttpUpstream {
    client: reqwest::Client,
    url: Url,
    sessions: crate::sessions::SessionBook,
    /// Cancelled on shutdown: open response streams end, so shutdown never waits on
    /// an upstream's long-lived SSE stream.
    cancel: CancellationToken,
}

impl HttpUpstream {
    pub fn new(client: reqwest::Client, url: Url, cancel: CancellationToken) -> Self {
        Self {
            client,
            url,
            sessions: Default::default(),
            cancel,
        }
    }
}

/// Forwards one request and streams the answer back.
#[tracing::instrument(level = "debug", target = "mcpgate::outbound", name = "upstream",
    skip_all, fields(otel.kind = "client", upstream = %up.cfg.name))]
pub async fn forward(
    up: &Upstream,
    h: &HttpUpstream,
    principal: Arc<Principal>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let envelope = parts.extensions.get::<Envelope>();
    let id = envelope.and_then(|e| e.id.clone());
    let method = envelope.and_then(|e| e.method.clone()).unwrap_or_default();
    let narrows = up.policy.narrows(&method);
    let session = parts
        .headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(sid) = &session
        && let Err(e) = h.sessions.check(sid, &principal.subject)
    {
        return e.respond(id.as_ref());
    }
    // POST bodies were read and bounded by the guard; GET and DELETE have none.
    let Ok(bytes) = to_bytes(body, up.max_body_bytes).await else {
        return GatewayError::BadGateway.respond(id.as_ref());
    };
    let mut out_headers = headers::for_upstream(&parts.headers);
    up.identity.apply(&principal, &mut out_headers).await;
    let mut url = h.url.clone();
    if let Some(q) = parts.uri.query() {
        url.set_query(Some(q));
    }
    let send = h
        .client
        .request(parts.method.clone(), url)
        .headers(out_headers)
        .body(bytes)
        .send();
    let resp = match tokio::time::timeout(up.timeout(), send).await {
        Err(_) => {
            tracing::warn!(upstream = up.name(), "upstream timed out");
            return GatewayError::Timeout.respond(id.as_ref());
        }
        Ok(Err(e)) => {
            tracing::warn!(upstream = up.name(), error = %e, "upstream request failed");
            return GatewayError::BadGateway.respond(id.as_ref());
        }
        Ok(Ok(r)) => r,
    };
    let status = resp.status();
    match &session {
        None => {
            if status.is_success()
                && let Some(new) = resp
                    .headers()
                    .get(SESSION_HEADER)
                    .and_then(|v| v.to_str().ok())
            {
                h.sessions.bind(new, &principal.subject);
            }
        }
        Some(sid) => {
            if status == StatusCode::NOT_FOUND
                || (parts.method == Method::DELETE && status.is_success())
            {
                h.sessions.forget(sid);
            }
        }
    }
    let resp: http::Response<reqwest::Body> = resp.into();
    let (mut rparts, rbody) = resp.into_parts();
    headers::for_client(&mut rparts.headers);
    if narrows && status.is_success() {
        let Ok(full) = to_bytes(Body::new(rbody), filter::MAX_LIST_BYTES).await else {
            return GatewayError::BadGateway.respond(id.as_ref());
        };
        let sse = is_sse(&rparts.headers);
        let filtered = filter::list(&full, &method, &up.policy, &principal.scopes, sse);
        return Response::from_parts(rparts, Body::from(filtered));
    }
    let stream = BodyDataStream::new(rbody).take_until(h.cancel.clone().cancelled_owned());
    Response::from_parts(rparts, Body::from_stream(stream))
}

fn is_sse(h: &http::HeaderMap) -> bool {
    h.get(http::header::CONTENT_TYPE)
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}
