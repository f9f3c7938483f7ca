//! Tokens for the benchmark, obtained through mcpgate's real flow (registration,
//! authorize with PKCE, sign-in, consent, code exchange).

use std::collections::HashMap;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const REDIRECT: &str = "http://127.0.0.1:1/callback";

pub struct Session {
    pub http: reqwest::Client,
    pub base: String,
    cookies: HashMap<String, String>,
}

fn field(html: &str, name: &str) -> anyhow::Result<String> {
    let marker = format!("name=\"{name}\" value=\"");
    Ok(html
        .split(&marker)
        .nth(1)
        .and_then(|s| s.split('"').next())
        .context("form field")?
        .to_owned())
}

impl Session {
    pub fn new(base: &str) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self {
            http,
            base: base.to_owned(),
            cookies: HashMap::new(),
        }
    }

    fn cookie(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, r: &reqwest::Response) {
        for v in r.headers().get_all("set-cookie") {
            if let Some((kv, _)) = v.to_str().unwrap_or("").split_once(';')
                && let Some((k, v)) = kv.split_once('=')
            {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
    }

    async fn get(&mut self, url: &str) -> anyhow::Result<reqwest::Response> {
        let r = self
            .http
            .get(url)
            .header("cookie", self.cookie())
            .send()
            .await?;
        self.keep(&r);
        Ok(r)
    }

    async fn post(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
    ) -> anyhow::Result<reqwest::Response> {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie())
            .form(form)
            .send()
            .await?;
        self.keep(&r);
        Ok(r)
    }

    pub async fn login(&mut self, user: &str, password: &str) -> anyhow::Result<()> {
        let html = self
            .get(&format!("{}/login", self.base))
            .await?
            .text()
            .await?;
        let csrf = field(&html, "csrf")?;
        let r = self
            .post(
                "/login",
                &[
                    ("csrf", &csrf),
                    ("username", user),
                    ("password", password),
                    ("next", "/apps"),
                ],
            )
            .await?;
        if r.status() != 303 {
            bail!("login failed: {}", r.status());
        }
        Ok(())
    }

    /// Gives `token` as the signed-in person's own for `upstream` (connected accounts,
    /// `credentials = "per_person_token"`), on its connect page.
    pub async fn connect(&mut self, upstream: &str, token: &str) -> anyhow::Result<()> {
        let path = format!("/connections/{upstream}");
        let html = self
            .get(&format!("{}{path}", self.base))
            .await?
            .text()
            .await?;
        let csrf = field(&html, "csrf")?;
        let r = self
            .post(&path, &[("csrf", &csrf), ("token", token)])
            .await?;
        if r.status() != 200 {
            bail!("connecting failed: {}", r.status());
        }
        Ok(())
    }

    pub async fn register(&self) -> anyhow::Result<String> {
        let r = self.http.post(format!("{}/register", self.base))
            .json(&json!({"redirect_uris": [REDIRECT], "client_name": "bench", "token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "refresh_token"]}))
            .send().await?;
        Ok(r.json::<Value>().await?["client_id"]
            .as_str()
            .context("client_id")?
            .to_owned())
    }

    /// A code for `client_id` (consent is approved the first time, skipped after).
    pub async fn code(
        &mut self,
        client_id: &str,
        resource: &str,
        challenge: &str,
    ) -> anyhow::Result<String> {
        let mut u = url::Url::parse(&format!("{}/authorize", self.base))?;
        u.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("resource", resource);
        let r = self.get(u.as_str()).await?;
        let consent = format!(
            "{}{}",
            self.base,
            r.headers()
                .get("location")
                .context("authorize redirect")?
                .to_str()?
        );
        let r = self.get(&consent).await?;
        let location = if r.status() == 303 {
            r.headers()
                .get("location")
                .context("location")?
                .to_str()?
                .to_owned()
        } else {
            let html = r.text().await?;
            let (csrf, request) = (field(&html, "csrf")?, field(&html, "request")?);
            let mut form = vec![
                ("csrf", csrf.as_str()),
                ("request", request.as_str()),
                ("decision", "approve"),
            ];
            // The calculator's scopes, the one a flag-declared gateway upstream needs, and
            // the personal-token gateway's (`calc`).
            for s in ["op:add", "op:sub", "op:mult", "op:div", "mcp:tools", "calc"] {
                form.push(("scope_choice", s));
            }
            let r = self.post("/consent", &form).await?;
            r.headers()
                .get("location")
                .context("consent redirect")?
                .to_str()?
                .to_owned()
        };
        let u = url::Url::parse(&location)?;
        Ok(u.query_pairs()
            .find(|(k, _)| k == "code")
            .context("code")?
            .1
            .into_owned())
    }

    /// Access and refresh token for `resource`.
    pub async fn tokens(&mut self, resource: &str) -> anyhow::Result<Value> {
        let client_id = self.register().await?;
        let verifier = URL_SAFE_NO_PAD.encode(Sha256::digest(b"bench verifier seed 0123456789"));
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let code = self.code(&client_id, resource, &challenge).await?;
        let r = self
            .http
            .post(format!("{}/token", self.base))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
                ("client_id", &client_id),
                ("resource", resource),
            ])
            .send()
            .await?;
        let mut v: Value = r.json().await?;
        v["client_id"] = json!(client_id);
        v["verifier"] = json!(verifier);
        v["challenge"] = json!(challenge);
        Ok(v)
    }
}
