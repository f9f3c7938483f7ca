//! Streamable HTTP upstreams: the request goes over the upstream's pool of
//! connections ([`crate::client`]) with the allowed headers only, and the response comes
//! back as a stream, so SSE answers to POST and GET flow through as the upstream
//! writes them. The body is the one the guard read (and bounded) for its envelope,
//! sent on as it came: it is never parsed or serialized again here.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, HttpBody, to_bytes};
use axum::extract::Request;
use axum::response::Response;
use http::{HeaderValue, Method, StatusCode};
use http_body::{Frame, SizeHint};
use mcpgate_mcp::Principal;
use mcpgate_mcp::guard::Envelope;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use url::Url;

use crate::client::{Pool, Target, UpstreamClient};
use crate::credentials::Asking;
use crate::errors::GatewayError;
use crate::sessions::{Bound, InUse, SessionBook};
use crate::{SESSION_HEADER, Upstream, filter, headers};

pub struct HttpUpstream {
    pool: Arc<Pool>,
    target: Target,
    sessions: Arc<SessionBook>,
    /// The operator's headers forwarded beside the transport's own.
    extra_headers: Vec<http::HeaderName>,
    /// Cancelled on shutdown: open response streams end, so shutdown never waits on
    /// an upstream's long-lived SSE stream.
    cancel: CancellationToken,
}

impl HttpUpstream {
    pub fn new(
        client: UpstreamClient,
        url: &Url,
        cfg: &crate::config::UpstreamConfig,
        cancel: CancellationToken,
    ) -> Self {
        let per_person = cfg
            .max_sessions_per_person
            .unwrap_or(crate::sessions::DEFAULT_PER_PERSON);
        let target = Target::new(url);
        Self {
            pool: Pool::new(&client, &target),
            target,
            sessions: Arc::new(SessionBook::new(per_person, crate::sessions::MAX_SESSIONS)),
            extra_headers: cfg.forwarded_headers(),
            cancel,
        }
    }

    /// Tells the upstream to end sessions the gateway no longer carries (MCP
    /// transport, "Session Management": a client that no longer needs a session
    /// SHOULD send DELETE). In the background; an upstream that refuses it keeps a
    /// session nobody can reach through the gateway, until it expires there.
    fn end_sessions(&self, ids: Vec<String>) {
        for id in ids {
            let Ok(value) = HeaderValue::from_str(&id) else {
                continue;
            };
            let mut req = http::Request::new(Body::empty());
            *req.method_mut() = Method::DELETE;
            *req.uri_mut() = self.target.path();
            let h = req.headers_mut();
            h.insert(http::header::HOST, self.target.host());
            h.insert(SESSION_HEADER.clone(), value);
            self.target.authorize(h);
            let pool = self.pool.clone();
            tokio::spawn(async move {
                let send = pool.send(req);
                match tokio::time::timeout(std::time::Duration::from_secs(10), send).await {
                    Ok(Ok(r)) => tracing::debug!(status = %r.status(), "ended an upstream session"),
                    _ => tracing::debug!("could not end an upstream session"),
                }
            });
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
    let (mut parts, body) = req.into_parts();
    // Taken, not cloned: nothing after the gateway reads the envelope.
    let envelope = parts.extensions.remove::<Envelope>();
    let read_by_guard = envelope.is_some();
    let (id, method) = envelope.map_or((None, None), |e| (e.id, e.method));
    let method = method.unwrap_or_default();
    // With the person's own credentials the body is read first (it is in memory: the
    // guard read it), to be sent again with a refreshed token, to see how the client
    // is asked, and, on a 2026-07-28 retry, to take out the answer to mcpgate's own
    // question.
    let modern =
        up.credentials.is_some() && crate::stdio::stateless::is_modern_header(&parts.headers);
    let (body, held) = match &up.credentials {
        None => (body, None),
        Some(_) => {
            let Ok(bytes) = to_bytes(body, up.max_body_bytes).await else {
                return GatewayError::BadGateway.respond(id.as_ref());
            };
            let bytes = match modern {
                true => crate::credentials::without_our_answer(&bytes).unwrap_or(bytes),
                false => bytes,
            };
            (Body::from(bytes.clone()), Some(bytes))
        }
    };
    let asking = || Asking::of(modern, &method, held.as_deref().unwrap_or_default());
    // The person is asked to connect (again), in the client's revision.
    let ask = async |c: &dyn crate::PersonalCredentials| {
        crate::credentials::ask(c, &principal.subject, id.as_ref(), asking()).await
    };
    // The person's own token for an upstream that wants it; without one, the page
    // where they give it (bound to them, good once), and nothing goes upstream.
    let presented = match up.credentials {
        None => "",
        Some(_) => crate::credentials::presented(&parts.headers),
    };
    let mut personal = match &up.credentials {
        None => None,
        Some(c) => match c.token(&principal.subject, presented).await {
            Ok(Some(t)) => Some(t),
            Ok(None) => return ask(c.as_ref()).await,
            Err(_) => return GatewayError::BadGateway.respond(id.as_ref()),
        },
    };
    let narrows = up.policy.narrows(&method);
    let session = parts
        .headers
        .get(&SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let in_use = match &session {
        None => None,
        Some(sid) => match h.sessions.check(sid, &principal.subject) {
            Ok(t) => Some(t),
            Err(e) => return e.respond(id.as_ref()),
        },
    };
    // A POST body is the one the guard read and bounded (it left its envelope): it goes
    // on as it is, in one piece. Anything else (GET and DELETE have no body) is bounded
    // here.
    let mut body = if read_by_guard || held.is_some() {
        body
    } else {
        let Ok(bytes) = to_bytes(body, up.max_body_bytes).await else {
            return GatewayError::BadGateway.respond(id.as_ref());
        };
        Body::from(bytes)
    };
    // What the upstream sees comes from the operator: the allowed headers, the
    // upstream's own URL (query included; the client's is not carried over), the
    // identity the gateway vouches for. Made again for a call sent a second time.
    let outgoing = async || {
        let mut out = headers::for_upstream(&parts.headers, &h.extra_headers);
        out.insert(http::header::HOST, h.target.host());
        up.identity.apply(&principal, &mut out).await;
        h.target.authorize(&mut out);
        out
    };
    let mut out_headers = outgoing().await;
    let mut retried = false;
    let resp = loop {
        // With the person's own token, the body (read above, in memory) is sent from
        // its bytes, so that it can be sent once more with a refreshed token.
        if let Some(t) = &personal {
            let Ok(v) = HeaderValue::from_str(&format!("Bearer {t}")) else {
                return GatewayError::BadGateway.respond(id.as_ref());
            };
            out_headers.insert(http::header::AUTHORIZATION, v);
            body = Body::from(held.clone().unwrap_or_default());
        }
        let mut out = http::Request::new(std::mem::take(&mut body));
        *out.method_mut() = parts.method.clone();
        *out.uri_mut() = h.target.path();
        *out.headers_mut() = std::mem::take(&mut out_headers);
        let send = h.pool.send(out);
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
        let (Some(c), Some(used)) = (&up.credentials, &personal) else {
            break resp;
        };
        if resp.status() != StatusCode::UNAUTHORIZED {
            break resp;
        }
        // The person's own token no longer works there (revoked, expired). One from
        // the upstream's sign-in is refreshed and the call sent once more; otherwise
        // the person is asked to connect again. The upstream's challenge is not
        // passed on: the client's token, mcpgate's, is fine.
        tracing::info!(
            upstream = up.name(),
            "the upstream refused a person's token"
        );
        // A fresh token refused too: the person connects again; no further refresh.
        let fresh = match retried {
            true => None,
            false => match c.refused(&principal.subject, presented, used).await {
                Ok(fresh) => fresh.filter(|f| f != used),
                Err(_) => return GatewayError::BadGateway.respond(id.as_ref()),
            },
        };
        let Some(fresh) = fresh else {
            return ask(c.as_ref()).await;
        };
        personal = Some(fresh);
        out_headers = outgoing().await;
        retried = true;
    };
    let status = resp.status();
    if status == StatusCode::FORBIDDEN
        && let Some(c) = &up.credentials
        && let Some(scope) = crate::credentials::needed_scope(resp.headers())
    {
        // The person's account there lacks scope: they are asked to allow it there
        // (a step-up at the upstream's own sign-in), not told the client's token,
        // mcpgate's, lacks it.
        match c.insufficient(&principal.subject, &scope).await {
            Ok(Some(e)) => return e.answer(id.as_ref(), asking()),
            Ok(None) => {}
            Err(_) => return GatewayError::BadGateway.respond(id.as_ref()),
        }
    }
    match &session {
        None => {
            if status.is_success()
                && let Some(new) = resp
                    .headers()
                    .get(&SESSION_HEADER)
                    .and_then(|v| v.to_str().ok())
            {
                match h.sessions.bind(new, &principal.subject) {
                    Bound::Yes(dropped) => h.end_sessions(dropped),
                    Bound::Full => {
                        tracing::warn!(
                            upstream = up.name(),
                            "every session of this person is in use; a new one was refused"
                        );
                        h.end_sessions(vec![new.to_owned()]);
                        return GatewayError::Busy.respond(id.as_ref());
                    }
                }
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
    let (mut rparts, rbody) = resp.into_parts();
    headers::for_client(&mut rparts.headers);
    if narrows && status.is_success() {
        // A list the gateway cannot read is not passed on unread: it may name what
        // the caller must not see.
        let readable = !rparts.headers.contains_key(http::header::CONTENT_ENCODING);
        let Ok(full) = to_bytes(Body::new(rbody), filter::MAX_LIST_BYTES).await else {
            return GatewayError::BadGateway.respond(id.as_ref());
        };
        let sse = is_sse(&rparts.headers);
        let filtered = readable
            .then(|| filter::list(&full, &method, &up.policy, &principal.scopes, sse))
            .flatten();
        let Some(filtered) = filtered else {
            tracing::warn!(
                upstream = up.name(),
                "a list answer the gateway could not read was refused"
            );
            return GatewayError::BadGateway.respond(id.as_ref());
        };
        return Response::from_parts(rparts, Body::from(filtered));
    }
    let mut body = Cancellable::new(rbody, h.cancel.clone());
    body.in_use = in_use;
    Response::from_parts(rparts, Body::new(body))
}

/// An upstream's response body that ends when the gateway shuts down. Frames,
/// trailers and the length pass through unchanged, so a sized answer keeps its
/// `Content-Length` and an SSE stream flows event by event.
struct Cancellable<B> {
    body: B,
    cancel: CancellationToken,
    /// Made the first time the body waits: an answer that is already here (most
    /// JSON answers) never needs it.
    cancelled: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
    /// The session this answer belongs to counts as in use until it is sent.
    in_use: Option<InUse>,
}

impl<B> Cancellable<B> {
    fn new(body: B, cancel: CancellationToken) -> Self {
        Self {
            body,
            cancel,
            cancelled: None,
            in_use: None,
        }
    }
}

impl<B: HttpBody + Unpin> HttpBody for Cancellable<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        if this.cancel.is_cancelled() {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        let cancel = &this.cancel;
        let cancelled = this
            .cancelled
            .get_or_insert_with(|| Box::pin(cancel.clone().cancelled_owned()));
        match cancelled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.cancel.is_cancelled() || self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

fn is_sse(h: &http::HeaderMap) -> bool {
    h.get(http::header::CONTENT_TYPE)
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::time::Duration;

    async fn next_frame(b: &mut Cancellable<Body>) -> Option<Result<Frame<Bytes>, axum::Error>> {
        std::future::poll_fn(|cx| Pin::new(&mut *b).poll_frame(cx)).await
    }

    #[tokio::test]
    async fn a_waiting_stream_ends_when_the_gateway_shuts_down() {
        let cancel = CancellationToken::new();
        let silent = futures_util::stream::pending::<Result<Bytes, std::io::Error>>();
        let mut body = Cancellable::new(Body::from_stream(silent), cancel.clone());
        let waiting = tokio::spawn(async move { next_frame(&mut body).await.is_none() });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "an idle stream stays open");
        cancel.cancel();
        let ended = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        assert!(ended.expect("woken by the shutdown").unwrap());
    }

    #[tokio::test]
    async fn a_sized_answer_passes_whole_with_its_length() {
        let mut body = Cancellable::new(Body::from(r#"{"ok":1}"#), CancellationToken::new());
        assert_eq!(body.size_hint().exact(), Some(8), "Content-Length survives");
        let frame = next_frame(&mut body).await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), r#"{"ok":1}"#);
        assert!(next_frame(&mut body).await.is_none());
    }
}
