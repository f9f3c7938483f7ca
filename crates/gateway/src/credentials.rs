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
