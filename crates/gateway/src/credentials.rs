//! Each person's own credentials for an upstream (`credentials = "per_person_token"`,
//! `"oauth"` or `"token_exchange"`):
//! the servers people use most have their own sign-in, and one shared account would
//! make everyone the same person there. The gateway asks [`PersonalCredentials`] (the
//! authorization server's vault) for the caller's token and sends it as the upstream's
//! `Authorization: Bearer`; a caller who has none gets the MCP specification's URL
//! elicitation (`-32042`, "URL Elicitation Required", 2025-11-25 "Elicitation") naming
//! a page, bound to that person and good once, where they give it. The client's own
//! token never goes upstream (MCP "Token Passthrough").

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};

/// JSON-RPC error code of "URL elicitation required" (MCP 2025-11-25).
pub const URL_ELICITATION_REQUIRED: i64 = -32042;

/// Where the person's tokens are kept and given.
#[async_trait::async_trait]
pub trait PersonalCredentials: Send + Sync {
    /// The person's token for this upstream; `Ok(None)` when they have not given one.
    /// `presented` is the token the client presented here (the subject token of a
    /// token exchange; other kinds ignore it).
    async fn token(&self, subject: &str, presented: &str) -> Result<Option<String>, Unavailable>;

    /// Whether a person without a token is sent to a page to give one (else the call
    /// is refused: the upstream does not accept them).
    fn elicits(&self) -> bool {
        true
    }

    /// A page where the person gives it: bound to them, good once.
    async fn elicit(&self, subject: &str) -> Result<Elicitation, Unavailable>;

    /// The upstream refused the person's `token` (401): a new one to try once (a
    /// refreshed one), or `None` when the person must connect again (a pasted token is
    /// forgotten).
    async fn refused(
        &self,
        subject: &str,
        presented: &str,
        token: &str,
    ) -> Result<Option<String>, Unavailable>;
}

/// The vault could not be read: the call fails (502), it is never sent without.
#[derive(Debug)]
pub struct Unavailable;

/// A URL-mode elicitation (MCP 2025-11-25, "Elicitation", URL mode).
#[derive(Debug, Clone)]
pub struct Elicitation {
    pub id: String,
    pub url: String,
    pub message: String,
}

impl Elicitation {
    /// The `-32042` error answering request `id`: the client shows `message`, offers
    /// to open `url`, and calls again once the person is done.
    pub fn respond(&self, id: Option<&Value>) -> Response {
        let body = json!({
            "jsonrpc": "2.0",
            "id": id.cloned().unwrap_or(Value::Null),
            "error": {
                "code": URL_ELICITATION_REQUIRED,
                "message": self.message,
                "data": {"elicitations": [{
                    "mode": "url",
                    "elicitationId": self.id,
                    "url": self.url,
                    "message": self.message,
                }]},
            },
        });
        let mut r = (StatusCode::OK, body.to_string()).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r
    }
}

/// The answer to a call the person's own token is missing for: the page where they give
/// it (a URL elicitation); a refusal where the upstream takes no page (token exchange);
/// 502 when no page can be made.
pub(crate) async fn ask(
    c: &dyn PersonalCredentials,
    subject: &str,
    id: Option<&Value>,
) -> Response {
    if !c.elicits() {
        return crate::errors::GatewayError::NotAccepted.respond(id);
    }
    match c.elicit(subject).await {
        Ok(e) => e.respond(id),
        Err(_) => crate::errors::GatewayError::BadGateway.respond(id),
    }
}

/// The token the client presented (the guard has validated it): `Bearer` or `DPoP`.
pub(crate) fn presented(h: &http::HeaderMap) -> &str {
    h.get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .map_or("", |(_, t)| t.trim())
}

/// The environment a person's own stdio process starts with (`env_from_person`): each
/// variable set to their secret. `Err`: the answer instead (they have none yet: the
/// page where they give it).
pub(crate) async fn person_env(
    up: &crate::Upstream,
    subject: &str,
    presented: &str,
    id: Option<&Value>,
) -> Result<Vec<(String, String)>, Response> {
    let Some(c) = &up.credentials else {
        return Ok(Vec::new());
    };
    if up.cfg.env_from_person.is_empty() {
        return Ok(Vec::new());
    }
    match c.token(subject, presented).await {
        Ok(Some(secret)) => Ok(up
            .cfg
            .env_from_person
            .keys()
            .map(|var| (var.clone(), secret.clone()))
            .collect()),
        Ok(None) => Err(ask(c.as_ref(), subject, id).await),
        Err(_) => Err(crate::errors::GatewayError::BadGateway.respond(id)),
    }
}
