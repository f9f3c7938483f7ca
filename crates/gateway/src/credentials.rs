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

    /// The upstream wants `scope` beyond what the person's account there granted (`403
    /// insufficient_scope`): a page where they allow it, where the upstream's own
    /// sign-in can be asked again; `None` passes the upstream's answer on.
    async fn insufficient(
        &self,
        _subject: &str,
        _scope: &str,
    ) -> Result<Option<Elicitation>, Unavailable> {
        Ok(None)
    }
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

/// How the client that made the call is asked: by the revision it speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asking {
    /// 2025-11-25 and before: the `-32042` error.
    Legacy,
    /// 2026-07-28 (MRTR, "Multi Round-Trip Requests"): an `InputRequiredResult` on the
    /// methods that may carry one, when the client declared URL elicitation.
    Modern {
        /// `tools/call`, `prompts/get` or `resources/read`: the only results that may
        /// be `input_required` (`basic/utilities/mrtr.mdx`).
        may_ask: bool,
        /// `_meta.io.modelcontextprotocol/clientCapabilities.elicitation.url` is there.
        url_capable: bool,
    },
}

/// The key of mcpgate's own input request in `inputRequests` (and of its answer in the
/// retry's `inputResponses`): the upstream never sees it.
pub const INPUT_KEY: &str = "mcpgate-connect";

impl Asking {
    /// The revision of the call: `modern` (its headers or `_meta` say 2026-07-28), its
    /// method, and its body (read for the client's capabilities only when modern).
    pub fn of(modern: bool, method: &str, body: &[u8]) -> Self {
        if !modern {
            return Self::Legacy;
        }
        let url_capable = serde_json::from_slice::<Value>(body).is_ok_and(|m| {
            m.pointer("/params/_meta/io.modelcontextprotocol~1clientCapabilities/elicitation/url")
                .is_some()
        });
        Self::Modern {
            may_ask: matches!(method, "tools/call" | "prompts/get" | "resources/read"),
            url_capable,
        }
    }
}

/// A 2026-07-28 retry carries the person's answer to mcpgate's own input request under
/// [`INPUT_KEY`]: it is taken out before the call goes upstream (which asked nothing).
/// `None` when there is nothing of ours to take out (the body goes on untouched).
pub fn without_our_answer(body: &[u8]) -> Option<bytes::Bytes> {
    // Read on every 2026-07-28 call to such an upstream: a fast search first.
    memchr::memmem::find(body, INPUT_KEY.as_bytes())?;
    let mut msg: Value = serde_json::from_slice(body).ok()?;
    take_our_answer(&mut msg).then(|| bytes::Bytes::from(msg.to_string()))
}

/// [`without_our_answer`] on a parsed message; true when there was one.
pub fn take_our_answer(msg: &mut Value) -> bool {
    let Some(responses) = msg
        .pointer_mut("/params/inputResponses")
        .and_then(Value::as_object_mut)
    else {
        return false;
    };
    if responses.remove(INPUT_KEY).is_none() {
        return false;
    }
    if responses.is_empty()
        && let Some(p) = msg.get_mut("params").and_then(Value::as_object_mut)
    {
        p.remove("inputResponses");
    }
    true
}

impl Elicitation {
    /// The answer asking the person to open `url`, in the client's revision: the
    /// `-32042` error (2025-11-25), or an `InputRequiredResult` with one URL-mode
    /// `elicitation/create` (2026-07-28, which retired `-32042`); a 2026-07-28 client
    /// that cannot open URLs gets `-32021` naming the capability (HTTP 400), and a
    /// method whose result cannot ask gets an error with the URL to open.
    pub fn answer(&self, id: Option<&Value>, asking: Asking) -> Response {
        let id = id.cloned().unwrap_or(Value::Null);
        let (status, body) = match asking {
            Asking::Legacy => return self.respond(Some(&id)),
            Asking::Modern {
                may_ask: true,
                url_capable: true,
            } => (
                StatusCode::OK,
                json!({"jsonrpc": "2.0", "id": id, "result": {
                    "resultType": "input_required",
                    "inputRequests": {INPUT_KEY: {
                        "method": "elicitation/create",
                        "params": {"mode": "url", "url": self.url, "message": self.message},
                    }},
                }}),
            ),
            Asking::Modern {
                url_capable: false, ..
            } => (
                StatusCode::BAD_REQUEST,
                json!({"jsonrpc": "2.0", "id": id, "error": {
                    "code": -32021,
                    "message": format!("Missing required client capability: URL elicitation, to connect your account. {}", self.message),
                    "data": {"requiredCapabilities": {"elicitation": {"url": {}}}},
                }}),
            ),
            Asking::Modern { may_ask: false, .. } => (
                StatusCode::FORBIDDEN,
                json!({"jsonrpc": "2.0", "id": id, "error": {
                    "code": -32001,
                    "message": format!("{} ({})", self.message, self.url),
                    "data": {"url": self.url},
                }}),
            ),
        };
        let mut r = (status, body.to_string()).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r
    }

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
    asking: Asking,
) -> Response {
    if !c.elicits() {
        return crate::errors::GatewayError::NotAccepted.respond(id);
    }
    match c.elicit(subject).await {
        Ok(e) => e.answer(id, asking),
        Err(_) => crate::errors::GatewayError::BadGateway.respond(id),
    }
}

/// The scope an upstream's `403` says it needs (`WWW-Authenticate: Bearer
/// error="insufficient_scope", scope="…"`, RFC 6750 §3.1), when it says so.
pub(crate) fn needed_scope(h: &http::HeaderMap) -> Option<String> {
    let c = h
        .get_all(http::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.contains("insufficient_scope"))?;
    let at = c
        .match_indices("scope=\"")
        .find(|(i, _)| *i == 0 || matches!(c.as_bytes()[i - 1], b' ' | b','))?
        .0
        + "scope=\"".len();
    let rest = &c[at..];
    Some(rest[..rest.find('"')?].to_owned())
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
    asking: impl FnOnce() -> Asking,
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
        Ok(None) => Err(ask(c.as_ref(), subject, id, asking()).await),
        Err(_) => Err(crate::errors::GatewayError::BadGateway.respond(id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn elicitation() -> Elicitation {
        Elicitation {
            id: "e1".into(),
            url: "https://gw.test/connections/calc?request=r".into(),
            message: "connect".into(),
        }
    }

    async fn body(r: Response) -> (StatusCode, Value) {
        let status = r.status();
        let b = r.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&b).unwrap())
    }

    fn modern_call(caps: Value) -> Vec<u8> {
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "add",
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                      "io.modelcontextprotocol/clientCapabilities": caps}}})
        .to_string()
        .into_bytes()
    }

    /// Each revision is asked its own way: 2025-11-25 by `-32042`; 2026-07-28 (which
    /// retired `-32042`) by an `input_required` result with one URL-mode request, or
    /// `-32021` when the client cannot open URLs, or an error naming the URL where
    /// the method's result cannot ask.
    #[tokio::test]
    async fn each_revision_is_asked_its_own_way() {
        let e = elicitation();
        let id = json!(1);
        let (s, v) = body(e.answer(Some(&id), Asking::of(false, "tools/call", b""))).await;
        assert_eq!(
            (s, v["error"]["code"].clone()),
            (StatusCode::OK, json!(-32042))
        );
        assert_eq!(v["error"]["data"]["elicitations"][0]["url"], json!(e.url));

        let capable = modern_call(json!({"elicitation": {"url": {}}}));
        let (s, v) = body(e.answer(Some(&id), Asking::of(true, "tools/call", &capable))).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["result"]["resultType"], "input_required");
        let ask = &v["result"]["inputRequests"][INPUT_KEY];
        assert_eq!(ask["method"], "elicitation/create");
        assert_eq!(
            ask["params"],
            json!({"mode": "url", "url": e.url, "message": "connect"})
        );
        assert!(v.get("error").is_none());

        let form_only = modern_call(json!({"elicitation": {}}));
        let (s, v) = body(e.answer(Some(&id), Asking::of(true, "tools/call", &form_only))).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(v["error"]["code"], -32021);
        assert_eq!(
            v["error"]["data"]["requiredCapabilities"],
            json!({"elicitation": {"url": {}}})
        );

        let (s, v) = body(e.answer(Some(&id), Asking::of(true, "tools/list", &capable))).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert_eq!(v["error"]["data"]["url"], json!(e.url));
    }

    #[test]
    fn the_scope_an_upstream_needs_is_read_from_its_challenge() {
        let mut h = http::HeaderMap::new();
        h.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(
                r#"Bearer error="insufficient_scope", scope="op:mult", resource_metadata="https://u/x""#,
            ),
        );
        assert_eq!(needed_scope(&h).as_deref(), Some("op:mult"));
        h.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Bearer error="invalid_token", scope="op:mult""#),
        );
        assert_eq!(
            needed_scope(&h),
            None,
            "only an insufficient_scope challenge"
        );
    }

    /// The retry's answer to mcpgate's question is taken out; anything else the client
    /// answers (the upstream's own questions) stays, and a body without ours is
    /// untouched.
    #[test]
    fn only_our_answer_is_taken_out_of_a_retry() {
        let retry = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "add", "inputResponses": {INPUT_KEY: {"action": "accept"}}}});
        let out = without_our_answer(retry.to_string().as_bytes()).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert!(v["params"].get("inputResponses").is_none());
        assert_eq!(v["params"]["name"], "add");

        let both = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "add", "requestState": "theirs",
            "inputResponses": {INPUT_KEY: {"action": "accept"}, "theirs": {"action": "accept"}}}});
        let v: Value =
            serde_json::from_slice(&without_our_answer(both.to_string().as_bytes()).unwrap())
                .unwrap();
        assert_eq!(
            v["params"]["inputResponses"],
            json!({"theirs": {"action": "accept"}})
        );
        assert_eq!(v["params"]["requestState"], "theirs");

        let plain = br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"add"}}"#;
        assert!(without_our_answer(plain).is_none());
    }
}
