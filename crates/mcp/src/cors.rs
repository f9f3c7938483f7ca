//! CORS for `/mcp` at the price of a header or two for the clients that are not
//! browsers.
//!
//! A request without `Origin` is not a CORS request (Fetch standard, "CORS protocol"),
//! yet tower-http's layer builds, per request, a header map of what it adds to every
//! answer (`Vary`, `Access-Control-Expose-Headers`), clones its configuration and
//! merges the map into the response: a few thousand instructions on each call of an
//! MCP client that is a program. [`FastCors`] answers such requests with the same
//! headers, worked out once at start by running the very same layer, so that they
//! cannot drift from it; preflights and requests with an `Origin` go through the layer
//! itself.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use tower::{Layer, Service, ServiceExt};
use tower_http::cors::{Cors, CorsLayer};

/// A [`CorsLayer`] with a fast path for requests that carry no `Origin`.
#[derive(Clone)]
pub struct FastCors {
    layer: CorsLayer,
    /// What the layer adds to the answer of a request without `Origin` (not a
    /// preflight), in its order.
    plain: Arc<[(HeaderName, HeaderValue)]>,
}

impl FastCors {
    pub fn new(layer: CorsLayer) -> Self {
        let plain = headers_without_origin(&layer);
        Self {
            layer,
            plain: plain.into(),
        }
    }
}

/// The headers `layer` adds to the answer of a `POST` without `Origin`, from running
/// it once over an answer that has none.
fn headers_without_origin(layer: &CorsLayer) -> Vec<(HeaderName, HeaderValue)> {
    let bare =
        tower::service_fn(|_: Request| async { Ok::<_, Infallible>(Response::new(Body::empty())) });
    let req = Request::post("/")
        .body(Body::empty())
        .expect("a valid request");
    let mut answer = std::pin::pin!(layer.layer(bare).oneshot(req));
    // The inner service answers at once and the layer waits on nothing else.
    let Poll::Ready(Ok(resp)) = answer
        .as_mut()
        .poll(&mut Context::from_waker(std::task::Waker::noop()))
    else {
        unreachable!("CORS over a ready service is ready");
    };
    let mut out = Vec::new();
    let mut last = None;
    for (name, value) in resp.into_parts().0.headers {
        if let Some(n) = name {
            last = Some(n);
        }
        if let Some(n) = &last {
            out.push((n.clone(), value.clone()));
        }
    }
    out
}

impl<S> Layer<S> for FastCors {
    type Service = FastCorsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        FastCorsService {
            cors: self.layer.layer(inner),
            plain: self.plain.clone(),
        }
    }
}

/// The service is cloned for every request (axum's routes are): it holds the layer's
/// service alone, and reaches the inner one through it.
#[derive(Clone)]
pub struct FastCorsService<S> {
    cors: Cors<S>,
    plain: Arc<[(HeaderName, HeaderValue)]>,
}

impl<S> Service<Request> for FastCorsService<S>
where
    S: Service<Request, Response = Response> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    Cors<S>: Service<Request, Response = Response, Error = S::Error>,
    <Cors<S> as Service<Request>>::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The layer's readiness is the inner service's.
        self.cors.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if req.method() == Method::OPTIONS || req.headers().contains_key(header::ORIGIN) {
            return Box::pin(self.cors.call(req));
        }
        let plain = self.plain.clone();
        let answer = self.cors.get_mut().call(req);
        Box::pin(async move {
            let mut resp = answer.await?;
            add(resp.headers_mut(), &plain);
            Ok(resp)
        })
    }
}

/// As the layer merges its headers: `Vary` is added to the answer's own, the others
/// replace any the answer has.
fn add(headers: &mut HeaderMap, plain: &[(HeaderName, HeaderValue)]) {
    for (name, value) in plain {
        if name == header::VARY {
            headers.append(name.clone(), value.clone());
        } else {
            headers.insert(name.clone(), value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer() -> CorsLayer {
        CorsLayer::new()
            .allow_origin(tower_http::cors::AllowOrigin::exact(
                HeaderValue::from_static("https://app.example"),
            ))
            .allow_methods([Method::POST])
            .expose_headers([
                header::WWW_AUTHENTICATE,
                HeaderName::from_static("mcp-session-id"),
            ])
    }

    /// An answer that already has a `Vary` and an expose list of its own.
    async fn upstream(_: Request) -> Result<Response, Infallible> {
        let mut r = Response::new(Body::from("ok"));
        r.headers_mut()
            .insert(header::VARY, HeaderValue::from_static("accept"));
        r.headers_mut().insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("x-upstream"),
        );
        Ok(r)
    }

    async fn headers_of(
        svc: impl Service<Request, Response = Response, Error = Infallible>,
        req: Request,
    ) -> Vec<(String, String)> {
        let resp = svc.oneshot(req).await.unwrap();
        let mut v: Vec<_> = resp
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        v.sort();
        v
    }

    #[tokio::test]
    async fn without_origin_the_answer_is_the_layers_to_the_header() {
        let fast = FastCors::new(layer());
        assert!(!fast.plain.is_empty(), "the layer adds headers even then");
        for method in [Method::POST, Method::GET, Method::DELETE] {
            let req = || {
                Request::builder()
                    .method(method.clone())
                    .body(Body::empty())
                    .unwrap()
            };
            let slow = layer().layer(tower::service_fn(upstream));
            let quick = fast.layer(tower::service_fn(upstream));
            assert_eq!(
                headers_of(quick, req()).await,
                headers_of(slow, req()).await
            );
        }
    }

    #[tokio::test]
    async fn preflights_and_requests_with_an_origin_go_through_the_layer() {
        let fast = FastCors::new(layer());
        let with_origin = || {
            Request::post("/")
                .header(header::ORIGIN, "https://app.example")
                .body(Body::empty())
                .unwrap()
        };
        let quick = headers_of(fast.layer(tower::service_fn(upstream)), with_origin()).await;
        assert!(quick.contains(&(
            "access-control-allow-origin".into(),
            "https://app.example".into()
        )));
        let preflight = || {
            Request::builder()
                .method(Method::OPTIONS)
                .header(header::ORIGIN, "https://app.example")
                .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
                .body(Body::empty())
                .unwrap()
        };
        let quick = headers_of(fast.layer(tower::service_fn(upstream)), preflight()).await;
        let slow = headers_of(layer().layer(tower::service_fn(upstream)), preflight()).await;
        assert_eq!(quick, slow);
        assert!(
            quick
                .iter()
                .any(|(n, _)| n == "access-control-allow-methods")
        );
    }
}
