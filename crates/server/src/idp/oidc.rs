//! Sign-in with an OpenID Connect provider (OpenID Connect Core 1.0 §3.1, the
//! authorization code flow), through the `openidconnect` library: discovery (with the
//! issuer checked against the document), PKCE S256 (RFC 7636), `state`, `nonce`, and the
//! ID token checks of §3.1.3.7 (signature by the provider's JWKS with RS256, PS256,
//! ES256, ES384 or EdDSA, `iss`, `aud`, `azp`, `exp`, `nonce`).
//!
//! No RFC 8707 `resource` parameter is sent upstream: the provider only signs the
//! person in (Entra ID rejects the parameter, others ignore it).

use std::future::Future;
use std::pin::Pin;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcpgate_core::secret::Secret;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreJwsSigningAlgorithm,
    CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse, UserInfoClaims,
};

use super::{Identity, IdpError, IdpSettings, Preset, Registry, Started};

/// Largest answer read from a provider.
const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// The provider's metadata and keys, as discovered.
pub struct Discovered {
    metadata: CoreProviderMetadata,
}

/// An HTTP client for the library: ours (no redirects, timeouts), with bounded bodies.
pub(crate) struct Http<'a>(pub &'a reqwest::Client);

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct HttpError(String);

impl<'c> openidconnect::AsyncHttpClient<'c> for Http<'_> {
    type Error = HttpError;
    type Future =
        Pin<Box<dyn Future<Output = Result<openidconnect::HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let mut resp = self
                .0
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await
                .map_err(|e| HttpError(e.to_string()))?;
            let mut out = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| HttpError(e.to_string()))? {
                if out.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(HttpError("response too large".into()));
                }
                out.extend_from_slice(&chunk);
            }
            let mut b = http::Response::builder().status(resp.status());
            for (k, v) in resp.headers() {
                b = b.header(k, v);
            }
            b.body(out).map_err(|e| HttpError(e.to_string()))
        })
    }
}

/// Fetches the provider's OpenID configuration and keys. The library refuses a
/// document whose `issuer` differs from the one configured (Discovery §4.3).
pub async fn discover(reg: &Registry, issuer: &str) -> Result<Discovered, IdpError> {
    let issuer =
        IssuerUrl::new(issuer.to_owned()).map_err(|e| IdpError::Discovery(e.to_string()))?;
    let metadata = CoreProviderMetadata::discover_async(issuer, &Http(reg.http()))
        .await
        .map_err(|e| IdpError::Discovery(format!("{e:?}")))?;
    Ok(Discovered { metadata })
}

fn client(
    d: &Discovered,
    p: &IdpSettings,
    redirect_uri: &str,
) -> Result<
    CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    >,
    IdpError,
> {
    let redirect = RedirectUrl::new(redirect_uri.to_owned())
        .map_err(|e| IdpError::Discovery(e.to_string()))?;
    Ok(CoreClient::from_provider_metadata(
        d.metadata.clone(),
        ClientId::new(p.client_id.clone()),
        Some(ClientSecret::new(p.client_secret.expose().to_owned())),
    )
    .set_redirect_uri(redirect))
}

pub fn begin(d: &Discovered, p: &IdpSettings, redirect_uri: &str) -> Result<Started, IdpError> {
    let client = client(d, p, redirect_uri)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()));
    if let Some(scope) = &p.groups_scope {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
    Ok(Started {
        authorize_url: url.to_string(),
        state: Secret::new(state.secret().clone()),
        nonce: Secret::new(nonce.secret().clone()),
        pkce_verifier: Secret::new(verifier.secret().clone()),
    })
}

/// Claims some providers add to the ID token, read after the library has verified it.
#[derive(serde::Deserialize, Default)]
struct ExtraClaims {
    /// Google: the Workspace domain of the account.
    #[serde(default)]
    hd: Option<String>,
    /// Entra ID: the email's domain is verified by its owner.
    #[serde(default)]
    xms_edov: Option<serde_json::Value>,
}

pub async fn finish(
    reg: &Registry,
    d: &Discovered,
    p: &IdpSettings,
    redirect_uri: &str,
    code: &str,
    nonce: &str,
    pkce_verifier: &str,
) -> Result<Identity, IdpError> {
    let client = client(d, p, redirect_uri)?;
    let http = Http(reg.http());
    let token = client
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .map_err(|e| IdpError::Exchange(e.to_string()))?
        .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
        .request_async(&http)
        .await
        .map_err(|e| IdpError::Exchange(format!("{e:?}")))?;
    let id_token = token
        .id_token()
        .ok_or_else(|| IdpError::IdToken("the token response has no id_token".into()))?;
    let verifier = client.id_token_verifier().set_allowed_algs([
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        CoreJwsSigningAlgorithm::RsaSsaPssSha256,
        CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        CoreJwsSigningAlgorithm::EcdsaP384Sha384,
        CoreJwsSigningAlgorithm::EdDsa,
    ]);
    let claims = id_token
        .claims(&verifier, &Nonce::new(nonce.to_owned()))
        .map_err(|e| IdpError::IdToken(e.to_string()))?;
    // Core §3.1.3.7 step 5: an `azp` must be this client. The library leaves this
    // check to its users (its other-audience check already refuses extra audiences).
    if claims
        .authorized_party()
        .is_some_and(|azp| azp.as_str() != p.client_id)
    {
        return Err(IdpError::IdToken("azp names another client".into()));
    }
    // The verified ID token's payload, for the claims the library does not model.
    let payload: serde_json::Map<String, serde_json::Value> = id_token
        .to_string()
        .split('.')
        .nth(1)
        .and_then(|b| URL_SAFE_NO_PAD.decode(b).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let extra: ExtraClaims =
        serde_json::from_value(serde_json::Value::Object(payload.clone())).unwrap_or_default();
    let mut groups = p
        .groups_claim
        .as_deref()
        .and_then(|c| payload.get(c))
        .map(group_names);
    let subject = claims.subject().to_string();
    let mut email = claims.email().map(|e| e.to_string());
    let mut verified = claims.email_verified();
    let mut username = claims.preferred_username().map(|u| u.to_string());
    let want_groups = p.groups_claim.is_some() && groups.is_none();
    if email.is_none() || want_groups {
        // OpenID Connect Core §5.4: claims asked for by scope may come from the
        // UserInfo endpoint only; the library checks its `sub` against the ID token's.
        if let Ok(req) =
            client.user_info(token.access_token().clone(), Some(claims.subject().clone()))
        {
            let info: UserInfoClaims<OtherClaims, CoreGenderClaim> = req
                .request_async(&http)
                .await
                .map_err(|e| IdpError::UserInfo(format!("{e:?}")))?;
            if email.is_none() {
                email = info.email().map(|e| e.to_string());
                verified = info.email_verified();
            }
            username = username.or(info.preferred_username().map(|u| u.to_string()));
            if want_groups {
                groups = p
                    .groups_claim
                    .as_deref()
                    .and_then(|c| info.additional_claims().0.get(c))
                    .map(group_names);
            }
        }
    }
    // Configured but sent nowhere: the provider says the person is in no group.
    if p.groups_claim.is_some() && groups.is_none() {
        groups = Some(Vec::new());
    }
    let email_verified = match p.preset {
        // Entra ID has no email_verified; xms_edov says the domain's owner vouches.
        Preset::Entra => {
            verified == Some(true)
                || matches!(extra.xms_edov, Some(serde_json::Value::Bool(true)))
                || extra.xms_edov.as_ref().and_then(|v| v.as_str()) == Some("1")
        }
        _ => verified == Some(true),
    };
    Ok(Identity {
        subject,
        email,
        email_verified,
        hosted_domain: if p.preset == Preset::Google {
            extra.hd
        } else {
            None
        },
        preferred_username: username,
        groups,
    })
}

/// Most group names read from one claim; the rest are ignored (a person in more groups
/// than this has them matched against the first ones only).
const MAX_GROUPS: usize = 1000;

/// A groups claim's names: an array of strings (or one string); anything else in it is
/// ignored. Bounded in count and length.
fn group_names(v: &serde_json::Value) -> Vec<String> {
    let keep = |s: &str| (!s.is_empty() && s.len() <= 256).then(|| s.to_owned());
    match v {
        serde_json::Value::String(s) => keep(s).into_iter().collect(),
        serde_json::Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().and_then(keep))
            .take(MAX_GROUPS)
            .collect(),
        _ => Vec::new(),
    }
}

/// The userinfo claims the library does not model, kept as they came.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
struct OtherClaims(serde_json::Map<String, serde_json::Value>);

impl openidconnect::AdditionalClaims for OtherClaims {}
