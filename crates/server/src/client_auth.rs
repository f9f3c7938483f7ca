//! The edge of client authentication (RFC 6749 §2.3.1; OAuth 2.1 §2.4): what the
//! request presented, parsed from the `Authorization` header and the form; the domain
//! decides ([`mcpgate_domain::flows::client_auth`]).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use mcpgate_core::OAuthError;
use mcpgate_domain::flows::client_auth::{self, Presented};
use mcpgate_domain::model::Client;

use crate::error::ApiError;
use crate::forms::Params;
use crate::state::AuthServer;

fn basic_credentials(headers: &HeaderMap) -> Option<Result<(String, String), ()>> {
    let v = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decode = || -> Option<(String, String)> {
        let raw = String::from_utf8(STANDARD.decode(rest.trim()).ok()?).ok()?;
        let (id, secret) = raw.split_once(':')?;
        // RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
        let dec = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
        };
        Some((dec(id)?, dec(secret)?))
    };
    Some(decode().ok_or(()))
}

/// What the request presented to authenticate its client.
pub fn presented(headers: &HeaderMap, form: &Params) -> Result<Presented, ApiError> {
    let fail = |basic: bool| ApiError {
        error: OAuthError::invalid_client("client authentication failed"),
        basic,
    };
    let assertion = form.get("client_assertion");
    if assertion.is_some() || form.get("client_assertion_type").is_some() {
        if form.get("client_assertion_type") != Some(client_auth::CLIENT_ASSERTION_TYPE) {
            return Err(OAuthError::invalid_request(format!(
                "client_assertion_type must be {}",
                client_auth::CLIENT_ASSERTION_TYPE
            ))
            .into());
        }
        if basic_credentials(headers).is_some() || form.get("client_secret").is_some() {
            // RFC 6749 §2.3: only one authentication method per request.
            return Err(OAuthError::invalid_request("use one client authentication method").into());
        }
        return Ok(Presented::Assertion {
            client_id: form.get("client_id").map(str::to_owned),
            assertion: assertion.ok_or_else(|| fail(false))?.to_owned(),
        });
    }
    match basic_credentials(headers) {
        Some(Ok((client_id, secret))) => {
            if form.get("client_secret").is_some() {
                // RFC 6749 §2.3: only one authentication method per request.
                return Err(
                    OAuthError::invalid_request("use one client authentication method").into(),
                );
            }
            if form.get("client_id").is_some_and(|f| f != client_id) {
                return Err(fail(true));
            }
            Ok(Presented::Basic { client_id, secret })
        }
        Some(Err(())) => Err(fail(true)),
        None => Ok(Presented::Form {
            client_id: form.get("client_id").ok_or_else(|| fail(false))?.to_owned(),
            secret: form.get("client_secret").map(str::to_owned),
        }),
    }
}

/// Authenticates the calling client.
pub async fn authenticate(
    s: &AuthServer,
    headers: &HeaderMap,
    form: &Params,
) -> Result<Client, ApiError> {
    let p = presented(headers, form)?;
    client_auth::authenticate(&s.auth, &p)
        .await
        .map_err(|error| ApiError {
            error,
            basic: p.used_basic(),
        })
}
