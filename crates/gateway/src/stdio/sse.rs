//! Server messages as an SSE response (MCP transport, "Streamable HTTP": each
//! JSON-RPC message one `message` event).

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{StatusCode, header};

pub fn sse_event(msg: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(msg.len() + 24);
    out.extend_from_slice(b"event: message\ndata: ");
    out.extend_from_slice(msg);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

pub fn sse_response(body: Body) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}
