//! GitHub: OAuth 2.0 without OpenID Connect. The code is redeemed with the `oauth2`
//! library (PKCE S256, `state`); the person is the user API's numeric `id` (logins can
//! be renamed), and the only email that identifies them is the primary one GitHub has
//! verified (emails API). The issuer `https://github.com` uses `api.github.com`; a
//! GitHub Enterprise Server issuer `https://ghe.example` uses `https://ghe.example/api/v3`.

use mcpgate_core::secret::Secret;
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse, TokenUrl,
};
use serde::Deserialize;

use super::oidc::Http;
use super::{Identity, IdpError, IdpSettings, Registry, Started};

fn endpoints(issuer: &str) -> (String, String, String) {
    let base = issuer.trim_end_matches('/');
    let api = if base == "https://github.com" {
        "https://api.github.com".to_owned()
    } else {
        format!("{base}/api/v3")
    };
    (
        format!("{base}/login/oauth/authorize"),
        format!("{base}/login/oauth/access_token"),
        api,
    )
}

fn client(
    p: &IdpSettings,
    redirect_uri: &str,
) -> Result<
    BasicClient<
        oauth2::EndpointSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointSet,
    >,
    IdpError,
> {
    let (auth, token, _) = endpoints(&p.issuer);
    let bad = |e: oauth2::url::ParseError| IdpError::Discovery(e.to_string());
    Ok(BasicClient::new(ClientId::new(p.client_id.clone()))
        .set_client_secret(ClientSecret::new(p.client_secret.expose().to_owned()))
        .set_auth_uri(AuthUrl::new(auth).map_err(bad)?)
        .set_token_uri(TokenUrl::new(token).map_err(bad)?)
        .set_redirect_uri(RedirectUrl::new(redirect_uri.to_owned()).map_err(bad)?))
}

pub fn begin(p: &IdpSettings, redirect_uri: &str) -> Result<Started, IdpError> {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = client(p, redirect_uri)?
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("read:user".into()))
        .add_scope(Scope::new("user:email".into()))
        .set_pkce_challenge(challenge)
        .url();
    Ok(Started {
        authorize_url: url.to_string(),
        state: Secret::new(state.secret().clone()),
        // No ID token, so no nonce: `state` and PKCE bind the callback to this sign-in.
        nonce: Secret::new(String::new()),
        pkce_verifier: Secret::new(verifier.secret().clone()),
    })
}

#[derive(Deserialize)]
struct GithubUser {
    id: u64,
    login: String,
}

#[derive(Deserialize)]
struct GithubEmail {
    email: String,
    primary: bool,
    verified: bool,
}

pub async fn finish(
    reg: &Registry,
    p: &IdpSettings,
    redirect_uri: &str,
    code: &str,
    pkce_verifier: &str,
) -> Result<Identity, IdpError> {
    let token = client(p, redirect_uri)?
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
        .request_async(&Http(reg.http()))
        .await
        .map_err(|e| IdpError::Exchange(format!("{e:?}")))?;
    let (_, _, api) = endpoints(&p.issuer);
    let get = |path: &str| {
        reg.http()
            .get(format!("{api}{path}"))
            .bearer_auth(token.access_token().secret())
            .header(http::header::ACCEPT, "application/vnd.github+json")
            .header(http::header::USER_AGENT, "mcpgate")
    };
    let user: GithubUser = get("/user")
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| IdpError::UserInfo(e.to_string()))?
        .json()
        .await
        .map_err(|e| IdpError::UserInfo(e.to_string()))?;
    let emails: Vec<GithubEmail> = get("/user/emails")
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| IdpError::UserInfo(e.to_string()))?
        .json()
        .await
        .map_err(|e| IdpError::UserInfo(e.to_string()))?;
    let primary = emails.into_iter().find(|e| e.primary);
    Ok(Identity {
        subject: user.id.to_string(),
        email_verified: primary.as_ref().is_some_and(|e| e.verified),
        email: primary.map(|e| e.email),
        hosted_domain: None,
        preferred_username: Some(user.login),
        groups: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_and_enterprise_endpoints() {
        let (a, t, api) = endpoints("https://github.com");
        assert_eq!(a, "https://github.com/login/oauth/authorize");
        assert_eq!(t, "https://github.com/login/oauth/access_token");
        assert_eq!(api, "https://api.github.com");
        let (_, _, api) = endpoints("https://ghe.example/");
        assert_eq!(api, "https://ghe.example/api/v3");
    }
}
