//! DPoP at the token endpoint (RFC 9449 §5): a client that sends a proof gets tokens
//! bound to its key. The proof is checked for this request (`POST` to the token
//! endpoint's public URL), its `jti` remembered in the store (a replay is refused on
//! every instance), and, when the server requires nonces, it must carry one: else
//! `use_dpop_nonce` with a fresh `DPoP-Nonce` (§8).

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue};
use mcpgate_core::dpop::{self, DpopError, Expected};
use mcpgate_core::{ErrorCode, OAuthError};

use crate::error::ApiError;
use crate::state::AuthServer;

/// The thumbprint of the key of the request's DPoP proof, once checked; `None` when
/// the request has no proof (the tokens are then bearer tokens).
pub async fn token_proof(s: &AuthServer, headers: &HeaderMap) -> Result<Option<String>, Response> {
    let refuse = |why: String| {
        ApiError::from(OAuthError::new(ErrorCode::InvalidDpopProof, why)).into_response()
    };
    let proof = match dpop::the_proof(headers.get_all("dpop").iter().map(|v| v.as_bytes())) {
        Ok(Some(p)) => p,
        Ok(None) => return Ok(None),
        Err(why) => return Err(refuse(why.into())),
    };
    let now = s.auth.now();
    let nonces = s.cfg.dpop_nonces.as_deref();
    let url = s.cfg.rules.endpoint("/token");
    let checked = dpop::verify(
        proof,
        Expected {
            method: "POST",
            url: &url,
            now,
            nonces,
            access_token: None,
        },
    );
    let p = match checked {
        Ok(p) => p,
        Err(DpopError::Nonce) => {
            let mut r = ApiError::from(OAuthError::new(
                ErrorCode::UseDpopNonce,
                "the DPoP proof must carry the nonce this server gives",
            ))
            .into_response();
            if let Some(n) = nonces
                && let Ok(v) = HeaderValue::from_str(&n.current(now))
            {
                r.headers_mut().insert("dpop-nonce", v);
            }
            return Err(r);
        }
        Err(e) => return Err(refuse(e.to_string())),
    };
    let fresh = s
        .auth
        .store
        .remember_jti("dpop", &p.jkt, &p.jti, p.kept_until())
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    if !fresh {
        return Err(refuse("this DPoP proof was already used".into()));
    }
    Ok(Some(p.jkt))
}
