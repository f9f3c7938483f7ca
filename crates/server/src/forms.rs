//! Bounded, strict parsing of `application/x-www-form-urlencoded` bodies and query
//! strings. OAuth parameters "MUST NOT be included more than once" (RFC 6749 §3.1,
//! §3.2); a repeated one is refused rather than silently picking one.

use std::collections::HashMap;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use http_body_util::BodyExt;
use mcpgate_core::OAuthError;
use serde_json::json;

use crate::error::ApiError;

/// Largest form body accepted by the OAuth endpoints.
pub const MAX_FORM_BYTES: usize = 16 * 1024;

/// How much of an oversized body is read (and thrown away) before answering 413, so
/// that a client still sending gets the answer instead of a reset connection. Bodies
/// beyond it get the same answer with `Connection: close`.
pub const DRAIN_BYTES: usize = 2 * 1024 * 1024;

/// A body over its bound: answered `413` with an OAuth-shaped JSON error.
#[derive(Debug)]
pub struct TooLarge {
    pub max: usize,
    /// The rest of the body was not read: the connection must close.
    pub undrained: bool,
}

impl IntoResponse for TooLarge {
    fn into_response(self) -> Response {
        let body = json!({
            "error": "invalid_request",
            "error_description": format!("the request body is larger than {} bytes", self.max),
        });
        let mut resp = (StatusCode::PAYLOAD_TOO_LARGE, Json(body)).into_response();
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.undrained {
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }
}

/// Reads a body of at most `max` bytes. A larger one is read on (and discarded) up
/// to [`DRAIN_BYTES`] so the 413 reaches the client; a body declared larger than that
/// is not read at all.
pub async fn read_bounded(
    headers: &http::HeaderMap,
    body: Body,
    max: usize,
) -> Result<Bytes, TooLarge> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_BYTES as u64) {
        return Err(TooLarge {
            max,
            undrained: true,
        });
    }
    let mut body = body;
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Err(TooLarge {
                max,
                undrained: true,
            });
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen += data.len();
        if seen > DRAIN_BYTES {
            return Err(TooLarge {
                max,
                undrained: true,
            });
        }
        if seen <= max {
            buf.extend_from_slice(&data);
        }
    }
    if seen > max {
        return Err(TooLarge {
            max,
            undrained: false,
        });
    }
    Ok(Bytes::from(buf))
}

/// Parameters of a form or query, each name at most once — except names listed as
/// repeatable (the consent page's `scope` checkboxes).
#[derive(Debug, Default, Clone)]
pub struct Params {
    single: HashMap<String, String>,
    multi: HashMap<String, Vec<String>>,
}

const REPEATABLE: &[&str] = &["scope_choice"];

impl Params {
    pub fn parse(raw: &[u8]) -> Result<Self, OAuthError> {
        let mut p = Params::default();
        for (k, v) in url::form_urlencoded::parse(raw) {
            if REPEATABLE.contains(&k.as_ref()) {
                p.multi
                    .entry(k.into_owned())
                    .or_default()
                    .push(v.into_owned());
            } else if p.single.insert(k.to_string(), v.into_owned()).is_some() {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {k} is repeated"
                )));
            }
        }
        Ok(p)
    }

    /// Every single-valued parameter, as (name, value).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.single.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// A parameter; an empty value counts as absent (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.single
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn require(&self, name: &'static str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("{name} is required")))
    }

    pub fn all(&self, name: &str) -> &[String] {
        self.multi.get(name).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// Extracts a bounded form body as [`Params`].
pub struct Form(pub Params);

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = Response;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        let ct_ok = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !ct_ok {
            return Err(ApiError::from(OAuthError::invalid_request(
                "Content-Type must be application/x-www-form-urlencoded",
            ))
            .into_response());
        }
        let (parts, body) = req.into_parts();
        let bytes = read_bounded(&parts.headers, body, MAX_FORM_BYTES)
            .await
            .map_err(IntoResponse::into_response)?;
        Params::parse(&bytes)
            .map(Form)
            .map_err(|e| ApiError::from(e).into_response())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused() {
        assert!(Params::parse(b"code=a&code=b").is_err());
        let p = Params::parse(b"scope_choice=a&scope_choice=b&x=").unwrap();
        assert_eq!(p.all("scope_choice"), ["a", "b"]);
        assert_eq!(p.get("x"), None);
    }
}

#[cfg(test)]
mod proptests {
    //! `PROPTEST_CASES=100000 cargo test -p mcpgate-server proptests` runs them longer.
    use proptest::prelude::*;

    use super::Params;

    use crate::proptest_cases as cases;

    proptest! {
        #![proptest_config(cases())]

        /// Any bytes parse or are refused, never panic; a parsed form never holds a
        /// name twice, and what it holds round-trips through encoding.
        #[test]
        fn form_bodies_parse_strictly(raw in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(p) = Params::parse(&raw) {
                let mut enc = url::form_urlencoded::Serializer::new(String::new());
                for (k, v) in &p.single {
                    enc.append_pair(k, v);
                }
                let again = Params::parse(enc.finish().as_bytes()).unwrap();
                prop_assert_eq!(&again.single, &p.single);
            }
        }

        /// A repeated OAuth parameter is always refused (RFC 6749 §3.1), however its
        /// name is encoded.
        #[test]
        fn repeated_parameters_are_always_refused(
            name in "[a-z_]{1,12}",
            a in "[ -~]{0,20}",
            b in "[ -~]{0,20}",
            encode_second in any::<bool>(),
        ) {
            prop_assume!(name != "scope_choice");
            let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let second = if encode_second {
                name.bytes().map(|c| format!("%{c:02X}")).collect::<String>()
            } else {
                name.clone()
            };
            let body = format!("{name}={}&{second}={}", enc(&a), enc(&b));
            prop_assert!(Params::parse(body.as_bytes()).is_err());
        }
    }
}
