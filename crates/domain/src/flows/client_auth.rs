//! Client authentication at the token, introspection and revocation endpoints
//! (RFC 6749 §2.3.1; OAuth 2.1 §2.4): HTTP Basic, a secret in the form, or, for a
//! public client, its `client_id` alone, each client by the one method it registered
//! (RFC 7591 §2 `token_endpoint_auth_method`). The edge parses what the request
//! presented ([`Presented`]); this decides. Secrets are compared as SHA-256 digests
//! in constant time.

use mcpgate_core::secret::{constant_time_eq, hash_token};

use crate::model::{AuthMethod, Client};
use crate::{Authority, OAuthError, OAuthResult};

/// Longest client id looked up.
pub const MAX_CLIENT_ID_LEN: usize = 512;

/// What a request presented to authenticate its client.
#[derive(Debug, Clone)]
pub enum Presented {
    /// `Authorization: Basic` (RFC 6749 §2.3.1), already decoded.
    Basic { client_id: String, secret: String },
    /// In the form: the id, with a secret (`client_secret_post`) or without (a public
    /// client, `none`).
    Form {
        client_id: String,
        secret: Option<String>,
    },
}

impl Presented {
    /// Whether the client used HTTP Basic (a refusal then carries `WWW-Authenticate`,
    /// RFC 6749 §5.2).
    pub fn used_basic(&self) -> bool {
        matches!(self, Self::Basic { .. })
    }

    fn method(&self) -> AuthMethod {
        match self {
            Self::Basic { .. } => AuthMethod::ClientSecretBasic,
            Self::Form {
                secret: Some(_), ..
            } => AuthMethod::ClientSecretPost,
            Self::Form { secret: None, .. } => AuthMethod::None,
        }
    }
}

fn failed() -> OAuthError {
    OAuthError::invalid_client("client authentication failed")
}

/// The client `presented` authenticates, or `invalid_client`.
pub async fn authenticate(s: &Authority, presented: &Presented) -> OAuthResult<Client> {
    let (client_id, secret) = match presented {
        Presented::Basic { client_id, secret } => (client_id, Some(secret)),
        Presented::Form { client_id, secret } => (client_id, secret.as_ref()),
    };
    if client_id.len() > MAX_CLIENT_ID_LEN {
        return Err(failed());
    }
    let client = s.store.client(client_id).await?.ok_or_else(failed)?;
    let secret_ok = match (&client.secret_hash, secret) {
        (Some(stored), Some(given)) => constant_time_eq(stored, &hash_token(given)),
        (None, None) => true,
        _ => false,
    };
    // The client must use the method it was registered with: a secret issued for the
    // Authorization header does not work in the form, nor the other way round, and a
    // public client presents no secret. The secret is checked whatever the method, so
    // a wrong method is not an oracle for a right secret: both failures look the same.
    if secret_ok && presented.method() == client.auth_method {
        Ok(client)
    } else {
        Err(failed())
    }
}

/// Whether `client` may introspect tokens (RFC 7662 §2.1: the endpoint requires
/// authorization): a confidential client holding the introspection right.
pub fn may_introspect(client: &Client) -> OAuthResult<()> {
    if client.is_public() || !client.can_introspect {
        return Err(OAuthError::invalid_client(
            "this client may not introspect tokens",
        ));
    }
    Ok(())
}
