//! Bounded, strict parsing of `application/x-www-form-urlencoded` bodies and query
//! strings. OAuth parameters "MUST NOT be included more than once" (RFC 6749 §3.1,
//! §3.2); a repeated one is refused rather than silently picking one.

use std::collections::HashMap;

use axum::body::{Bytes, to_bytes};
use axum::extract::{FromRequest, Request};
use http::header;
use mcpgate_core::OAuthError;

use crate::error::ApiError;

/// Largest form body accepted by the OAuth endpoints.
pub const MAX_FORM_BYTES: usize = 16 * 1024;

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
    type Rejection = ApiError;

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
            return Err(OAuthError::invalid_request(
                "Content-Type must be application/x-www-form-urlencoded",
            )
            .into());
        }
        let bytes: Bytes = to_bytes(req.into_body(), MAX_FORM_BYTES)
            .await
            .map_err(|_| ApiError::from(OAuthError::invalid_request("request body too large")))?;
        Ok(Form(Params::parse(&bytes)?))
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
