//! Client authentication at the token, introspection and revocation endpoints
//! (RFC 6749 §2.3.1; OAuth 2.1 §2.4): HTTP Basic, a secret in the form, a JWT signed
//! with the client's key (`private_key_jwt`, RFC 7523 §2.2), or, for a public client,
//! its `client_id` alone, each client by the one method it registered (RFC 7591 §2
//! `token_endpoint_auth_method`). The edge parses what the request presented
//! ([`Presented`]); this decides. Secrets are compared as SHA-256 digests in constant
//! time.

use mcpgate_core::jose;
use mcpgate_core::jwt::LEEWAY_SECS;
use mcpgate_core::secret::{constant_time_eq, hash_token};
use serde::Deserialize;

use super::keysets::{self, Origin};
use crate::model::{AuthMethod, Client, ClientKind};
use crate::{Authority, OAuthError, OAuthResult};

/// `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The longest an assertion may be valid: a client makes a fresh one per request.
pub const MAX_ASSERTION_LIFETIME_SECS: i64 = 3600;
/// The signing algorithms accepted for client assertions (RFC 8414
/// `token_endpoint_auth_signing_alg_values_supported`): what [`jose`] pins keys to.
pub const ASSERTION_ALGS: [&str; 8] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "EdDSA",
];

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
    /// `client_assertion` (RFC 7523 §2.2), with the `client_id` of the form if any
    /// (RFC 7521 §4.2: optional, and then the assertion's subject).
    Assertion {
        client_id: Option<String>,
        assertion: String,
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
            Self::Assertion { .. } => AuthMethod::PrivateKeyJwt,
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
        Presented::Assertion {
            client_id,
            assertion,
        } => return by_assertion(s, client_id.as_deref(), assertion).await,
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

/// What a client assertion says (RFC 7523 §3).
#[derive(Deserialize)]
struct AssertionClaims {
    sub: String,
    exp: i64,
    jti: String,
    aud: serde_json::Value,
}

/// A client authenticated by a JWT it signed (RFC 7523 §3, with the audience rule of
/// its update, draft-ietf-oauth-rfc7523bis §4, which OAuth 2.1 §2.4 requires):
/// - `iss` and `sub` are the client's id; the client registered `private_key_jwt`;
/// - the signature verifies with the client's keys, the algorithm pinned per key;
/// - `aud` is this server's issuer identifier, as its sole value (the token endpoint's
///   URL is not accepted);
/// - `exp` has not passed and is at most an hour away;
/// - `jti` was never presented before (on any instance): a replay is refused;
/// - `typ`, when present, is `JWT` or `client-authentication+jwt`, never another JWT's
///   type (an access token, a DPoP proof, an ID-JAG cannot pass for an assertion).
async fn by_assertion(s: &Authority, hint: Option<&str>, assertion: &str) -> OAuthResult<Client> {
    let header = jose::header(assertion).map_err(|_| failed())?;
    let typ_ok = header.typ.as_deref().is_none_or(|t| {
        t.eq_ignore_ascii_case("JWT") || t.eq_ignore_ascii_case("client-authentication+jwt")
    });
    if !typ_ok {
        return Err(failed());
    }
    // Whose assertion it claims to be, to find the keys that must verify it.
    let claimed = unverified_subject(assertion).ok_or_else(failed)?;
    if hint.is_some_and(|h| h != claimed) || claimed.len() > MAX_CLIENT_ID_LEN {
        return Err(failed());
    }
    let client = s.store.client(&claimed).await?.ok_or_else(failed)?;
    let (AuthMethod::PrivateKeyJwt, Some(keys)) = (client.auth_method, &client.keys) else {
        return Err(failed());
    };
    let origin = match client.kind {
        ClientKind::MetadataDocument => Origin::Stranger,
        _ => Origin::Operator,
    };
    let set = keysets::of_client(s, keys, origin, header.kid.as_deref()).await?;
    let issuer = s.cfg.issuer.as_str();
    let claims: AssertionClaims = jose::verify(assertion, &set, |v| {
        v.set_issuer(&[&client.client_id]);
        v.validate_aud = true;
        v.set_audience(&[issuer]);
        v.set_required_spec_claims(&["iss", "sub", "aud", "exp"]);
    })
    .map_err(|_| failed())?;
    let sole_audience = match &claims.aud {
        serde_json::Value::String(a) => a == issuer,
        serde_json::Value::Array(a) => a.len() == 1 && a[0] == issuer,
        _ => false,
    };
    let now = s.now();
    if claims.sub != client.client_id
        || !sole_audience
        || claims.exp + LEEWAY_SECS <= now
        || claims.exp > now + MAX_ASSERTION_LIFETIME_SECS
        || claims.jti.is_empty()
        || claims.jti.len() > 256
    {
        return Err(failed());
    }
    if !s
        .store
        .remember_jti(
            "client_assertion",
            &client.client_id,
            &claims.jti,
            claims.exp + LEEWAY_SECS,
        )
        .await?
    {
        return Err(OAuthError::invalid_client(
            "this client assertion was already used",
        ));
    }
    Ok(client)
}

/// The `sub` of a JWT, before any check: only to choose the keys to check it with.
fn unverified_subject(jwt: &str) -> Option<String> {
    Some(
        jose::unverified_claims(jwt)?
            .get("sub")?
            .as_str()?
            .to_owned(),
    )
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
