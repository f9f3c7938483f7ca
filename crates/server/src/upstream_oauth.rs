//! mcpgate as an OAuth client of upstreams' own authorization servers, for the rules
//! of connected accounts ([`mcpgate_domain::flows::upstream_oauth`]): discovery (RFC
//! 9728, then RFC 8414 or OpenID Connect discovery), dynamic registration (RFC 7591),
//! token requests, revocation (RFC 7009). The upstream is the operator's choice, so
//! any address may be reached (an organisation's servers are often internal), over
//! `https` or, on loopback, `http`; redirects are not followed, answers are bounded,
//! every request has a deadline.

use std::time::Duration;

use async_trait::async_trait;
use mcpgate_domain::model::UpstreamClient;
use mcpgate_domain::ports::{UpstreamError, UpstreamOAuth, UpstreamServer, UpstreamTokens};
use serde_json::{Value, json};
use url::Url;

/// Largest metadata or token answer read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Calls upstreams' authorization servers.
#[derive(Debug, Default)]
pub struct Http {
    http: crate::outbound::Outbound,
}

fn unreachable(why: impl std::fmt::Display) -> UpstreamError {
    UpstreamError::Unreachable(why.to_string())
}

fn is_loopback(u: &Url) -> bool {
    matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
}

/// A URL the upstream named (its metadata's, its authorization server's): reachable,
/// and on loopback only when the upstream itself is (an upstream elsewhere must not
/// point mcpgate, with its secrets, at services on mcpgate's own host).
fn named_by(upstream: &Url, url: &str) -> Result<Url, UpstreamError> {
    let u = reachable(url)?;
    if is_loopback(&u) && !is_loopback(upstream) {
        return Err(unreachable(format!(
            "{url} is on this host, and the upstream is not"
        )));
    }
    Ok(u)
}

/// `https`, or `http` on loopback.
fn reachable(url: &str) -> Result<Url, UpstreamError> {
    let u = Url::parse(url).map_err(|e| unreachable(format!("{url:?} is not a URL: {e}")))?;
    let loopback = matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    if u.scheme() == "https" || (u.scheme() == "http" && loopback) {
        Ok(u)
    } else {
        Err(unreachable(format!("{url} is neither https nor loopback")))
    }
}

/// A bounded JSON answer.
async fn read_json(mut resp: reqwest::Response) -> Result<Value, UpstreamError> {
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| unreachable(e.without_url()))?
    {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(unreachable("an answer larger than 64 KiB"));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|_| unreachable("an answer that is not JSON"))
}

fn string(v: &Value, name: &str) -> Option<String> {
    v.get(name).and_then(Value::as_str).map(str::to_owned)
}

fn strings(v: &Value, name: &str) -> Vec<String> {
    v.get(name)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `resource_metadata` of a `WWW-Authenticate: Bearer` challenge (RFC 9728 §5.1).
fn resource_metadata(challenge: &str) -> Option<String> {
    param(challenge, "resource_metadata")
}

/// A quoted parameter of a `WWW-Authenticate` challenge (RFC 9110 §11.2).
fn param(challenge: &str, name: &str) -> Option<String> {
    let key = format!("{name}=\"");
    let at = challenge
        .match_indices(&key)
        .find(|(i, _)| *i == 0 || matches!(challenge.as_bytes()[i - 1], b' ' | b','))?
        .0
        + key.len();
    let rest = &challenge[at..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// The well-known URL `suffix` for `url` (RFC 8615 as RFC 8414 §3.1 and RFC 9728
/// §3.1 use it: inserted between the host and the path).
fn well_known(url: &Url, suffix: &str) -> String {
    let path = url.path().trim_end_matches('/');
    format!(
        "{}/.well-known/{suffix}{path}",
        url.origin().ascii_serialization()
    )
}

impl Http {
    async fn get_json(&self, url: &str) -> Result<Value, UpstreamError> {
        reachable(url)?;
        let resp = self
            .http
            .client()
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| unreachable(e.without_url()))?;
        if !resp.status().is_success() {
            return Err(unreachable(format!("{url} answered {}", resp.status())));
        }
        read_json(resp).await
    }

    /// The protected-resource metadata of the MCP server at `url`: where its challenge
    /// says, else at the well-known places (MCP 2025-11-25 "Protected Resource
    /// Metadata Discovery Requirements").
    /// With the scope the challenge names, if it names one (MCP 2025-11-25, "Scope
    /// Selection Strategy": that scope first, else the metadata's `scopes_supported`).
    async fn resource_metadata(&self, url: &Url) -> Result<(Value, Option<String>), UpstreamError> {
        let probe = self
            .http
            .client()
            .post(url.clone())
            .header("accept", "application/json, text/event-stream")
            .json(
                &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "mcpgate", "version": env!("CARGO_PKG_VERSION")}}}),
            )
            .send()
            .await
            .map_err(|e| unreachable(e.without_url()))?;
        let challenges: Vec<&str> = probe
            .headers()
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let named = challenges.iter().find_map(|c| resource_metadata(c));
        let scope = challenges.iter().find_map(|c| param(c, "scope"));
        let mut places = Vec::new();
        places.extend(named.filter(|n| named_by(url, n).is_ok()));
        if url.path().trim_end_matches('/').is_empty() {
            places.push(well_known(url, "oauth-protected-resource"));
        } else {
            places.push(well_known(url, "oauth-protected-resource"));
            let mut root = url.clone();
            root.set_path("");
            places.push(well_known(&root, "oauth-protected-resource"));
        }
        let mut last = unreachable("no protected-resource metadata");
        for p in places {
            match self.get_json(&p).await {
                Ok(v) => return Ok((v, scope)),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The authorization server's metadata, whose `issuer` must be the one asked for
    /// (RFC 8414 §3.3).
    async fn server_metadata(&self, issuer: &str) -> Result<Value, UpstreamError> {
        let iu = reachable(issuer)?;
        let mut places = vec![
            well_known(&iu, "oauth-authorization-server"),
            well_known(&iu, "openid-configuration"),
        ];
        if !iu.path().trim_end_matches('/').is_empty() {
            places.push(format!(
                "{}/.well-known/openid-configuration",
                issuer.trim_end_matches('/')
            ));
        }
        let mut last = unreachable("no authorization server metadata");
        for p in places {
            match self.get_json(&p).await {
                Ok(v) if string(&v, "issuer").as_deref() == Some(issuer) => return Ok(v),
                Ok(_) => last = unreachable(format!("{p} names another issuer")),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// A form to `endpoint` with the client's authentication (RFC 6749 §2.3.1: Basic
    /// with form-encoded id and secret where the server takes it, else in the form).
    async fn post_form(
        &self,
        server: &UpstreamServer,
        endpoint: &str,
        client: &UpstreamClient,
        form: &[(&str, &str)],
    ) -> Result<reqwest::Response, UpstreamError> {
        reachable(endpoint)?;
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        let mut req = self
            .http
            .client()
            .post(endpoint)
            .header("accept", "application/json");
        match &client.secret {
            Some(secret)
                if server.auth_methods.is_empty()
                    || server
                        .auth_methods
                        .iter()
                        .any(|m| m == "client_secret_basic") =>
            {
                let enc = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                req = req.basic_auth(enc(&client.client_id), Some(enc(secret)));
            }
            Some(secret) => {
                fields.push(("client_id", &client.client_id));
                fields.push(("client_secret", secret));
            }
            None => fields.push(("client_id", &client.client_id)),
        }
        req.form(&fields)
            .send()
            .await
            .map_err(|e| unreachable(e.without_url()))
    }
}

#[async_trait]
impl UpstreamOAuth for Http {
    #[tracing::instrument(level = "debug", target = "mcpgate::outbound", name = "upstream discovery",
        skip_all, fields(otel.kind = "client"))]
    async fn discover(&self, url: &str) -> Result<UpstreamServer, UpstreamError> {
        let u = reachable(url)?;
        let (prm, challenge_scope) = self.resource_metadata(&u).await?;
        // RFC 9728 §3.3 and MCP: the metadata must be about this server (its resource
        // identifier is this URL, or a prefix of it on the same origin).
        let resource = string(&prm, "resource")
            .ok_or_else(|| unreachable("the protected-resource metadata names no resource"))?;
        let r = Url::parse(&resource).map_err(|_| unreachable("its resource is not a URL"))?;
        if r.origin() != u.origin() || !u.path().starts_with(r.path().trim_end_matches('/')) {
            return Err(unreachable(format!(
                "its metadata is about {resource}, not {url}"
            )));
        }
        let issuer = strings(&prm, "authorization_servers")
            .into_iter()
            .next()
            .ok_or_else(|| unreachable("its metadata names no authorization server"))?;
        named_by(&u, &issuer)?;
        let meta = self.server_metadata(&issuer).await?;
        // MCP 2025-11-25 "Authorization Code Protection": no S256 advertised, no flow.
        if !strings(&meta, "code_challenge_methods_supported")
            .iter()
            .any(|m| m == "S256")
        {
            return Err(unreachable(
                "its authorization server does not offer PKCE S256",
            ));
        }
        let endpoint = |name: &str| -> Result<Option<String>, UpstreamError> {
            match string(&meta, name) {
                None => Ok(None),
                Some(e) => named_by(&u, &e).map(|_| Some(e)),
            }
        };
        Ok(UpstreamServer {
            resource,
            authorization_endpoint: endpoint("authorization_endpoint")?
                .ok_or_else(|| unreachable("no authorization endpoint"))?,
            token_endpoint: endpoint("token_endpoint")?
                .ok_or_else(|| unreachable("no token endpoint"))?,
            registration_endpoint: endpoint("registration_endpoint")?,
            revocation_endpoint: endpoint("revocation_endpoint")?,
            scopes: match challenge_scope {
                Some(sc) => sc.split_whitespace().map(str::to_owned).collect(),
                None => strings(&prm, "scopes_supported"),
            },
            iss_parameter: meta
                .get("authorization_response_iss_parameter_supported")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            metadata_documents: meta
                .get("client_id_metadata_document_supported")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            auth_methods: strings(&meta, "token_endpoint_auth_methods_supported"),
            issuer,
        })
    }

    async fn register(
        &self,
        server: &UpstreamServer,
        metadata: &Value,
    ) -> Result<UpstreamClient, UpstreamError> {
        let endpoint = server
            .registration_endpoint
            .as_deref()
            .ok_or_else(|| unreachable("no registration endpoint"))?;
        reachable(endpoint)?;
        let resp = self
            .http
            .client()
            .post(endpoint)
            .json(metadata)
            .send()
            .await
            .map_err(|e| unreachable(e.without_url()))?;
        let status = resp.status();
        let body = read_json(resp).await?;
        if !status.is_success() {
            // The server's own words help its operator and ours: bounded, shown
            // escaped.
            let said = [string(&body, "error"), string(&body, "error_description")]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(": ");
            return Err(unreachable(format!(
                "registration refused ({status}, {})",
                said.chars().take(300).collect::<String>()
            )));
        }
        Ok(UpstreamClient {
            client_id: string(&body, "client_id")
                .ok_or_else(|| unreachable("the registration gave no client_id"))?,
            secret: string(&body, "client_secret"),
        })
    }

    #[tracing::instrument(level = "debug", target = "mcpgate::outbound", name = "upstream token",
        skip_all, fields(otel.kind = "client"))]
    async fn token(
        &self,
        server: &UpstreamServer,
        client: &UpstreamClient,
        form: &[(&str, &str)],
    ) -> Result<UpstreamTokens, UpstreamError> {
        let resp = self
            .post_form(server, &server.token_endpoint, client, form)
            .await?;
        let status = resp.status();
        let body = read_json(resp).await?;
        if !status.is_success() {
            // RFC 6749 §5.2. Only the code is kept: its description is the server's
            // text, and the code is what the rules act on.
            return match string(&body, "error") {
                Some(e) if status.is_client_error() => Err(UpstreamError::Refused {
                    error: e
                        .chars()
                        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .take(64)
                        .collect(),
                }),
                _ => Err(unreachable(format!("its token endpoint answered {status}"))),
            };
        }
        // The token goes out as a Bearer token (RFC 6750); other kinds (DPoP) would need
        // proofs this side does not make.
        if !string(&body, "token_type").is_some_and(|t| t.eq_ignore_ascii_case("bearer")) {
            return Err(unreachable("its token is not a Bearer token"));
        }
        Ok(UpstreamTokens {
            access_token: string(&body, "access_token")
                .ok_or_else(|| unreachable("its token answer has no access_token"))?,
            refresh_token: string(&body, "refresh_token"),
            expires_in: body.get("expires_in").and_then(Value::as_i64),
        })
    }

    async fn revoke(
        &self,
        server: &UpstreamServer,
        client: &UpstreamClient,
        token: &str,
        hint: &str,
    ) -> Result<(), UpstreamError> {
        let Some(endpoint) = &server.revocation_endpoint else {
            return Ok(());
        };
        let resp = self
            .post_form(
                server,
                endpoint,
                client,
                &[("token", token), ("token_type_hint", hint)],
            )
            .await?;
        match resp.status().is_success() {
            true => Ok(()),
            false => Err(unreachable(format!(
                "its revocation endpoint answered {}",
                resp.status()
            ))),
        }
    }

    async fn pause(&self, millis: u64) {
        tokio::time::sleep(Duration::from_millis(millis)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_names_the_metadata() {
        assert_eq!(
            resource_metadata(
                r#"Bearer error="invalid_token", resource_metadata="https://a.example/.well-known/oauth-protected-resource/mcp", scope="x""#
            )
            .as_deref(),
            Some("https://a.example/.well-known/oauth-protected-resource/mcp")
        );
        assert_eq!(resource_metadata("Bearer realm=\"x\""), None);
        assert_eq!(
            param(
                r#"Bearer resource_metadata="https://a/x", scope="op:add op:sub""#,
                "scope"
            )
            .as_deref(),
            Some("op:add op:sub")
        );
        // A parameter whose name ends in another's is not that one.
        assert_eq!(param(r#"Bearer my_scope="no""#, "scope"), None);
    }

    #[test]
    fn well_known_places_go_between_host_and_path() {
        let u = Url::parse("https://a.example/tenant/mcp").unwrap();
        assert_eq!(
            well_known(&u, "oauth-protected-resource"),
            "https://a.example/.well-known/oauth-protected-resource/tenant/mcp"
        );
        let root = Url::parse("https://a.example").unwrap();
        assert_eq!(
            well_known(&root, "oauth-authorization-server"),
            "https://a.example/.well-known/oauth-authorization-server"
        );
    }

    #[test]
    fn an_upstream_elsewhere_cannot_point_at_this_host() {
        let remote = Url::parse("https://mcp.example.com/mcp").unwrap();
        let local = Url::parse("http://127.0.0.1:9000/mcp").unwrap();
        for url in [
            "http://127.0.0.1:5432/token",
            "https://localhost/admin",
            "http://[::1]:6379/",
        ] {
            assert!(named_by(&remote, url).is_err(), "{url}");
            assert!(named_by(&local, url).is_ok(), "{url}");
        }
        assert!(named_by(&remote, "https://as.example.com/token").is_ok());
    }

    #[test]
    fn only_https_or_loopback_is_reached() {
        assert!(reachable("https://as.example/token").is_ok());
        assert!(reachable("http://127.0.0.1:9/token").is_ok());
        assert!(reachable("http://localhost:9/token").is_ok());
        for bad in [
            "http://as.example/token",
            "ftp://x/",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(reachable(bad).is_err(), "{bad}");
        }
    }
}
