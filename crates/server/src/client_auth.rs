//! Client authentication at the token, introspection and revocation endpoints
//! (RFC 6749 §2.3.1; OAuth 2.1 §2.4): HTTP Basic, a secret in the form, or — for a
//! public client — its `client_id` alone, each client by the one method it registered.
//! Secrets are compared as SHA-256 digests in constant time.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use mcpgate_core::OAuthError;
use mcpgate_core::secret::{constant_time_eq, hash_token};
use mcpgate_domain::model::{AuthMethod, Client};

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

/// Authenticates the calling client.
pub async fn authenticate(
    s: &AuthServer,
    headers: &HeaderMap,
    form: &Params,
) -> Result<Client, ApiError> {
    let fail = |basic: bool| ApiError {
        error: OAuthError::invalid_client("client authentication failed"),
        basic,
    };
    let (client_id, secret, basic) = match basic_credentials(headers) {
        Some(Ok((id, secret))) => {
            if form.get("client_secret").is_some() {
                // RFC 6749 §2.3: only one authentication method per request.
                return Err(
                    OAuthError::invalid_request("use one client authentication method").into(),
                );
            }
            if form.get("client_id").is_some_and(|f| f != id) {
                return Err(fail(true));
            }
            (id, Some(secret), true)
        }
        Some(Err(())) => return Err(fail(true)),
        None => {
            let id = form.get("client_id").ok_or_else(|| fail(false))?.to_owned();
            (id, form.get("client_secret").map(str::to_owned), false)
        }
    };
    if client_id.len() > 512 {
        return Err(fail(basic));
    }
    let client = s
        .auth
        .store
        .client(&client_id)
        .await?
        .ok_or_else(|| fail(basic))?;
    // The client must use the method it was registered with (RFC 7591 §2): a
    // secret issued for the Authorization header does not work in the form, nor the
    // other way round, and a public client presents no secret.
    let presented = match (&secret, basic) {
        (None, _) => AuthMethod::None,
        (Some(_), true) => AuthMethod::ClientSecretBasic,
        (Some(_), false) => AuthMethod::ClientSecretPost,
    };
    let secret_ok = match (&client.secret_hash, secret) {
        (Some(stored), Some(given)) => constant_time_eq(stored, &hash_token(&given)),
        (None, None) => true,
        _ => false,
    };
    // The secret is checked whatever the method, so a wrong method is not an oracle
    // for a right secret: both failures look the same.
    if secret_ok && presented == client.auth_method {
        Ok(client)
    } else {
        Err(fail(basic))
    }
}
