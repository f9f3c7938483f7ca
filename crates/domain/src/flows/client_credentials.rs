//! The client_credentials grant for machines (OAuth 2.1 §4.2; MCP extension
//! `io.modelcontextprotocol/oauth-client-credentials`): an operator-registered
//! confidential client gets, with no person present, a token for the scopes and
//! resources the operator allowed it. The token names the client as its subject (the
//! guard and the audit see the machine itself), is bound to one resource (RFC 8707)
//! like every other, and comes with no refresh token: the client asks again.
//!
//! Its revocation handle is [`handle`]: removing the client ends every token it got.

use mcpgate_core::jwt::{AccessClaims, Audience, Confirmation};
use mcpgate_core::secret::random_id;
use mcpgate_core::{ErrorCode, OAuthError, ScopeSet, resource};

use super::hierarchy::Hierarchy;
use super::tokens::TokenResponse;
use crate::audit::Event;
use crate::model::{Client, Outcome, StepKind};
use crate::{Authority, OAuthResult};

/// A token request with `grant_type=client_credentials`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CredentialsRequest<'a> {
    /// The scopes asked for; `None`: all the machine may have.
    pub scope: Option<&'a str>,
    /// RFC 8707 `resource`; `None`: the machine's only resource, when it has one.
    pub resource: Option<&'a str>,
    /// The key of a valid DPoP proof sent with the request (RFC 9449 §5).
    pub dpop_jkt: Option<&'a str>,
}

const HANDLE_PREFIX: &str = "client:";

/// The revocation handle (the tokens' `sid`) of every token a machine got.
pub fn handle(client_id: &str) -> String {
    format!("{HANDLE_PREFIX}{client_id}")
}

/// The machine whose handle `sid` is, if it is one.
pub fn machine_of(sid: &str) -> Option<&str> {
    sid.strip_prefix(HANDLE_PREFIX)
}

pub async fn grant(
    s: &Authority,
    client: &Client,
    req: CredentialsRequest<'_>,
) -> OAuthResult<TokenResponse> {
    let Some(machine) = &client.machine else {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client may not use client_credentials: the operator registers machines with `mcpgate client add --machine`",
        ));
    };
    let target = match req.resource {
        Some(r) => resource::indicator(r)
            .filter(|r| machine.resources.contains(r) && s.cfg.resources().contains(r))
            .ok_or_else(|| {
                OAuthError::new(
                    ErrorCode::InvalidTarget,
                    format!(
                        "this client may get tokens for {} only",
                        machine.resources.join(", ")
                    ),
                )
            })?,
        None => match machine.resources.as_slice() {
            [only] => only.clone(),
            _ => {
                return Err(OAuthError::new(
                    ErrorCode::InvalidTarget,
                    "name the resource (RFC 8707 resource): this client may get tokens for several",
                ));
            }
        },
    };
    // What the machine may have includes what its scopes include; a token carries the
    // narrower scopes explicitly, so resource servers need no hierarchy.
    let hierarchy = Hierarchy::load(s).await?;
    let allowed = hierarchy.close(&machine.scopes);
    // RFC 6749 §3.3: the server may issue less than asked; what is beyond the machine's
    // allowance is left out, and the response's `scope` says what it got. MCP clients
    // ask for the scopes of the resource's challenge, every scope it has, so refusing
    // would leave a machine allowed some of them without a token at all.
    let scope = match req.scope {
        None => allowed,
        Some(asked) => {
            let asked =
                ScopeSet::parse(asked).map_err(|e| OAuthError::invalid_scope(e.to_string()))?;
            let kept = hierarchy.close(&asked).intersection(&allowed);
            if kept.is_empty() {
                return Err(OAuthError::invalid_scope(format!(
                    "none of the scopes asked for is allowed to this client (it may have {})",
                    machine.scopes
                )));
            }
            kept
        }
    };
    let now = s.now();
    let exp = now + s.cfg.access_ttl_secs;
    let claims = AccessClaims {
        iss: s.cfg.issuer.clone(),
        sub: client.client_id.clone(),
        aud: Audience::One(target),
        client_id: client.client_id.clone(),
        scope: scope.clone(),
        jti: random_id(),
        iat: now,
        exp,
        nbf: None,
        username: Some(client.name.clone()),
        session_id: Some(handle(&client.client_id)),
        cnf: req.dpop_jkt.map(|jkt| Confirmation {
            jkt: jkt.to_owned(),
        }),
    };
    let access_token = s.keys.sign(&claims);
    super::register::mark_used(s, client, now).await?;
    s.audit(
        Event::TokenIssued {
            grant: "client_credentials",
            scope: scope.clone(),
        },
        None,
        Some(&client.client_id),
    )
    .await;
    s.note(
        &client.client_id,
        StepKind::Token,
        Outcome::Ok,
        format!("client_credentials for {scope}"),
    );
    Ok(TokenResponse {
        access_token,
        token_type: super::tokens::token_type(req.dpop_jkt.is_some()).into(),
        expires_in: exp - now,
        refresh_token: None,
        scope: scope.to_string(),
        issued_token_type: None,
    })
}
