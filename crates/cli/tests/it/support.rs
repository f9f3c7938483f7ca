//! Spawning the app on `127.0.0.1:0` with a fresh data directory, and playing the
//! roles of an OAuth client and of a person's browser over real HTTP.

use std::collections::HashMap;
use std::path::PathBuf;

use mcpgate::app::{self, AppConfig};
use mcpgate_core::ScopeSet;
use mcpgate_core::jwt::{AccessClaims, Audience};
use mcpgate_core::pkce;
use mcpgate_core::secret::random_id;
use mcpgate_domain::model::User;
use mcpgate_server::AuthServer;
use mcpgate_server::documents::Reach;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub const REDIRECT: &str = "http://127.0.0.1:33418/callback";
pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    /// Where requests go: `http://127.0.0.1:<port>` and the public URL's path.
    pub base: String,
    /// The public URL (the issuer): `base`, unless the app was told it is served
    /// over https by a proxy in front ([`TestApp::spawn_as_https`]).
    pub public: String,
    pub http: reqwest::Client,
    pub auth: AuthServer,
    /// The rules (store, keys, clock) the server runs on.
    pub rules: mcpgate_domain::Authority,
    /// The same database, as what it is (sealing, checkpoints).
    pub database: mcpgate_store::Database,
    pub data_dir: PathBuf,
    cancel: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.cancel.cancel();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A fresh, empty PostgreSQL database on `TEST_DATABASE_URL`, or `None` (the test
/// then says it is skipped) when that is not set.
pub async fn pg_database() -> Option<String> {
    let admin_url = pg_admin_url()?;
    let name = format!("mcpgate_t_{}", random_id().to_ascii_lowercase())
        .replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "_");
    let admin = sqlx::PgPool::connect(&admin_url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    Some(format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0))
}

/// `TEST_DATABASE_URL`, or `None` with a loud skip. Under CI (`CI` set) a missing
/// database fails the test instead: PostgreSQL tests must not pass vacuously there.
pub fn pg_admin_url() -> Option<String> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) => Some(url),
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("CI is set but TEST_DATABASE_URL is not: the PostgreSQL tests cannot run")
        }
        Err(_) => {
            eprintln!("SKIPPED: TEST_DATABASE_URL is not set (no PostgreSQL)");
            None
        }
    }
}

/// Runs `mcpgate --data-dir DIR ARGS…` (with `env` set), asserting that it succeeds;
/// returns what it printed.
pub fn mcpgate_in(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcpgate"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mcpgate {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn temp_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("mcpgate-it-{}", random_id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

impl TestApp {
    /// An app that fetches client metadata documents from loopback over plain http,
    /// where the tests publish them (a deployment fetches public addresses only).
    pub async fn spawn_reaching_loopback() -> Self {
        let path = std::env::var("MCPGATE_TEST_BASE_PATH").unwrap_or_default();
        let overrides = app::Overrides {
            tune: |_| {},
            documents: || Reach::LoopbackOverHttp,
        };
        Self::spawn_at("http", &path, temp_dir(), overrides, |_| {}).await
    }

    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(tune: fn(&mut mcpgate_server::ServerConfig)) -> Self {
        Self::spawn_in(temp_dir(), tune).await
    }

    /// An app on an existing data directory (e.g. one the CLI configured first).
    pub async fn spawn_in(data_dir: PathBuf, tune: fn(&mut mcpgate_server::ServerConfig)) -> Self {
        Self::spawn_configured(data_dir, tune, |_| {}).await
    }

    /// An app whose configuration `configure` adjusts after the suite's defaults.
    pub async fn spawn_configured(
        data_dir: PathBuf,
        tune: fn(&mut mcpgate_server::ServerConfig),
        configure: impl FnOnce(&mut AppConfig),
    ) -> Self {
        // The whole suite runs twice in the test command: with an issuer that is an
        // origin, and with one that carries a path (MCPGATE_TEST_BASE_PATH=/oauth/2.1),
        // so that both forms are held to the same tests.
        let path = std::env::var("MCPGATE_TEST_BASE_PATH").unwrap_or_default();
        let overrides = app::Overrides {
            tune,
            documents: Reach::default,
        };
        Self::spawn_at("http", &path, data_dir, overrides, configure).await
    }

    /// An app whose public URL has the path `path` (`""`: the origin), whatever the
    /// suite's base path.
    pub async fn spawn_under(path: &str) -> Self {
        Self::spawn_at("http", path, temp_dir(), app::Overrides::default(), |_| {}).await
    }

    /// An app whose public URL is `https://127.0.0.1:<port><path>`, as behind a proxy
    /// that terminates TLS; the tests still reach it over plain http, and the browser
    /// follows its `https://` redirects there.
    pub async fn spawn_as_https(path: &str) -> Self {
        Self::spawn_at("https", path, temp_dir(), app::Overrides::default(), |_| {}).await
    }

    async fn spawn_at(
        scheme: &str,
        path: &str,
        data_dir: PathBuf,
        overrides: app::Overrides,
        configure: impl FnOnce(&mut AppConfig),
    ) -> Self {
        install_crypto();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("http://{addr}{path}");
        let public = format!("{scheme}://{addr}{path}");
        let mut cfg = AppConfig::new(&public.parse().unwrap(), data_dir.clone());
        cfg.audit_every = std::time::Duration::from_millis(50);
        configure(&mut cfg);
        let cancel = CancellationToken::new();

        let app = app::build_with(&cfg, overrides, cancel.clone())
            .await
            .unwrap();
        // Served as production serves, through the same drain on shutdown.
        tokio::spawn(app::serve_until(
            listener,
            app.router,
            cancel.clone(),
            cancel.clone(),
            std::time::Duration::from_secs(1),
        ));
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let t = Self {
            base,
            public,
            http,
            rules: app.auth.auth.clone(),
            auth: app.auth,
            database: app.database,
            data_dir,
            cancel,
        };
        t.add_user("alice", PASSWORD).await;
        t
    }

    pub async fn add_user(&self, name: &str, password: &str) {
        self.add_person(name, password, false).await
    }

    /// An administrator (the admin role) signing in with `PASSWORD`.
    pub async fn add_admin(&self, name: &str) {
        self.add_person(name, PASSWORD, true).await
    }

    async fn add_person(&self, name: &str, password: &str, is_admin: bool) {
        let hash = mcpgate_server::pages::passwords::hash(password.to_owned()).await;
        self.rules
            .store
            .create_user(&User {
                id: random_id(),
                username: name.into(),
                email: Some(format!("{name}@example.com")),
                password_hash: hash,
                is_admin,
                disabled: false,
                created_at: 0,
            })
            .await
            .unwrap();
    }

    /// Signs an access token directly with the server's keys (for tests of the guard
    /// and transport; the OAuth tests obtain theirs through the real flow).
    pub fn mint(&self, scope: &str, tweak: impl FnOnce(&mut AccessClaims)) -> String {
        let now = self.rules.now();
        let mut c = AccessClaims {
            iss: self.base.clone(),
            sub: "user-1".into(),
            aud: Audience::One(self.mcp_url()),
            client_id: "client-1".into(),
            scope: ScopeSet::parse(scope).unwrap(),
            jti: random_id(),
            iat: now,
            exp: now + 300,
            nbf: None,
            username: Some("alice".into()),
            session_id: Some(random_id()),
            cnf: None,
        };
        tweak(&mut c);
        self.rules.keys.sign(&c)
    }

    pub fn all_ops(&self) -> String {
        self.mint("op:add op:sub op:mult op:div", |_| {})
    }

    /// Registers the introspection credentials of a resource server (client id `rs`).
    pub async fn rs_credentials(&self) -> mcpgate_core::secret::Secret {
        let secret = mcpgate_core::secret::Secret::generate();
        self.rules
            .store
            .insert_client(&mcpgate_domain::model::Client {
                client_id: "rs".into(),
                secret_hash: Some(secret.hash()),
                name: "RS".into(),
                redirect_uris: vec![],
                kind: mcpgate_domain::model::ClientKind::Preregistered,
                auth_method: mcpgate_domain::model::AuthMethod::ClientSecretBasic,
                can_introspect: true,
                owner_user_id: None,
                registration_hash: None,
                metadata: json!({}),
                fetched_until: None,
                created_at: 0,
                last_used_at: None,
                machine: None,
                keys: None,
            })
            .await
            .unwrap();
        secret
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn mcp_url(&self) -> String {
        self.url("/mcp")
    }

    /// The resource tokens are issued for: the public URL's `/mcp` (the same as
    /// [`Self::mcp_url`] unless the app believes it is served over https).
    pub fn resource(&self) -> String {
        format!("{}/mcp", self.public)
    }

    /// The issuer's path (`""`, or `/oauth/2.1` when the suite runs under a path).
    pub fn path(&self) -> String {
        mcpgate_server::mount::base_path(&self.base)
    }

    /// The issuer's origin.
    pub fn origin(&self) -> String {
        self.base.strip_suffix(&self.path()).unwrap().to_owned()
    }

    /// A well-known URL: at the origin, with the issuer's path inserted after
    /// `well_known` (RFC 8414 §3.1, RFC 9728 §3.1), then `suffix`.
    pub fn well_known(&self, well_known: &str, suffix: &str) -> String {
        format!(
            "{}/.well-known/{well_known}{}{suffix}",
            self.origin(),
            self.path()
        )
    }

    /// The authorization server's metadata URL.
    pub fn as_metadata_url(&self) -> String {
        self.well_known("oauth-authorization-server", "")
    }

    /// A POST to `/mcp` as a 2026-07-28 client sends it, with the standard headers.
    pub fn modern(
        &self,
        method: &str,
        name: Option<&str>,
        params: Value,
    ) -> reqwest::RequestBuilder {
        let mut params = params;
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {}
        });
        let mut rb = self
            .http
            .post(self.mcp_url())
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", method);
        if let Some(n) = name {
            rb = rb.header("mcp-name", n);
        }
        rb.body(json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string())
    }

    pub fn calc(&self, op: &str, a: Value, b: Value) -> reqwest::RequestBuilder {
        self.modern(
            "tools/call",
            Some("calculator"),
            json!({"name": "calculator", "arguments": {"operation": op, "a": a, "b": b}}),
        )
    }

    pub fn calc_as(&self, token: &str, op: &str, a: f64, b: f64) -> reqwest::RequestBuilder {
        self.calc(op, json!(a), json!(b)).bearer_auth(token)
    }

    /// Registers a public client (RFC 7591) with one redirect URI.
    /// The HTTP status of one calculator call made with `token`.
    pub async fn calc_status(&self, token: &str, op: &str, a: f64, b: f64) -> u16 {
        self.calc_as(token, op, a, b)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    pub async fn register(&self, redirect: &str) -> String {
        let r = self
            .http
            .post(self.url("/register"))
            .json(&json!({"redirect_uris": [redirect], "client_name": "Test client", "token_endpoint_auth_method": "none",
                          "grant_types": ["authorization_code", "refresh_token"], "application_type": "native"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        body_json(r).await["client_id"].as_str().unwrap().to_owned()
    }

    /// Runs the whole browser part for `client_id` and returns the code.
    pub async fn code_for(
        &self,
        client_id: &str,
        challenge: &str,
        scope: Option<&str>,
        approve: Option<&[&str]>,
    ) -> String {
        let mut b = Browser::new(self);
        b.login("alice", PASSWORD).await;
        let loc = b
            .authorize(client_id, REDIRECT, challenge, scope, Some("st8"))
            .await;
        let loc = b.consent(&loc, approve).await;
        let url = url::Url::parse(&loc).unwrap();
        let q: HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q.get("state").map(String::as_str), Some("st8"));
        assert_eq!(q.get("iss"), Some(&self.public));
        q.get("code")
            .unwrap_or_else(|| panic!("no code in {loc}"))
            .clone()
    }

    pub async fn exchange(&self, client_id: &str, code: &str, verifier: &str) -> reqwest::Response {
        self.http
            .post(self.url("/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier),
                ("client_id", client_id),
                ("resource", &self.resource()),
            ])
            .send()
            .await
            .unwrap()
    }

    pub async fn refresh(
        &self,
        client_id: &str,
        refresh: &str,
        scope: Option<&str>,
    ) -> reqwest::Response {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", client_id),
        ];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        self.http
            .post(self.url("/token"))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    /// Client registration, consent for `approve` (all requested when `None`), and the
    /// code exchange: returns (client_id, token response).
    pub async fn tokens(&self, approve: Option<&[&str]>) -> (String, Value) {
        let client_id = self.register(REDIRECT).await;
        let tokens = self.tokens_for(&client_id, approve).await;
        (client_id, tokens)
    }

    /// The token response for an existing client, through consent, code and PKCE.
    pub async fn tokens_for(&self, client_id: &str, approve: Option<&[&str]>) -> Value {
        let verifier = pkce_verifier();
        let code = self
            .code_for(client_id, &pkce::challenge_of(&verifier), None, approve)
            .await;
        let r = self.exchange(client_id, &code, &verifier).await;
        assert_eq!(r.status(), 200);
        body_json(r).await
    }
}

pub fn pkce_verifier() -> String {
    format!("{}{}", random_id(), random_id())
}

/// A person's browser: keeps cookies, follows nothing by itself.
pub struct Browser<'a> {
    app: &'a TestApp,
    pub cookies: HashMap<String, String>,
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            cookies: HashMap::new(),
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, r: &reqwest::Response) {
        for v in r.headers().get_all("set-cookie") {
            let s = v.to_str().unwrap();
            let (kv, _) = s.split_once(';').unwrap_or((s, ""));
            let (k, v) = kv.split_once('=').unwrap();
            self.cookies.insert(k.to_owned(), v.to_owned());
        }
    }

    pub async fn get(&mut self, path_or_url: &str) -> reqwest::Response {
        let url = if let Some(rest) = path_or_url.strip_prefix(&self.app.public) {
            // The public URL's own pages are reached where the app listens.
            format!("{}{rest}", self.app.base)
        } else if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            self.app.url(path_or_url)
        };
        let r = self
            .app
            .http
            .get(url)
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(&r);
        r
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let r = self
            .app
            .http
            .post(self.app.url(path))
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.keep(&r);
        r
    }

    /// The CSRF token of a page's form.
    pub fn csrf_of(html: &str) -> String {
        hidden(html, "csrf")
    }

    pub async fn login(&mut self, user: &str, password: &str) -> reqwest::Response {
        let page = self.get("/login").await.text().await.unwrap();
        let csrf = Self::csrf_of(&page);
        self.post(
            "/login",
            &[
                ("csrf", &csrf),
                ("username", user),
                ("password", password),
                ("next", "/apps"),
            ],
        )
        .await
    }

    /// GET /authorize; returns the Location it redirects to.
    pub async fn authorize(
        &mut self,
        client_id: &str,
        redirect: &str,
        challenge: &str,
        scope: Option<&str>,
        state: Option<&str>,
    ) -> String {
        let r = self
            .get(&authorize_url(
                self.app, client_id, redirect, challenge, scope, state,
            ))
            .await;
        assert_eq!(r.status(), 303, "authorize: {}", r.text().await.unwrap());
        location(&r)
    }

    /// Follows a consent URL and approves `approve` (all requested when `None`), or
    /// passes through when consent is skipped. Returns the client redirect.
    pub async fn consent(&mut self, consent_url: &str, approve: Option<&[&str]>) -> String {
        let r = self.get(consent_url).await;
        if r.status() == 303 {
            return location(&r);
        }
        assert_eq!(r.status(), 200);
        let html = r.text().await.unwrap();
        let csrf = Self::csrf_of(&html);
        let request = hidden(&html, "request");
        let offered: Vec<String> = html
            .split("name=\"scope_choice\" value=\"")
            .skip(1)
            .map(|s| s.split('"').next().unwrap().to_owned())
            .collect();
        let chosen: Vec<String> = match approve {
            None => offered,
            Some(list) => list.iter().map(|s| s.to_string()).collect(),
        };
        let mut form: Vec<(&str, &str)> = vec![
            ("csrf", &csrf),
            ("request", &request),
            ("decision", "approve"),
        ];
        for s in &chosen {
            form.push(("scope_choice", s));
        }
        let r = self.post("/consent", &form).await;
        assert_eq!(r.status(), 303);
        location(&r)
    }
}

pub fn authorize_url(
    app: &TestApp,
    client_id: &str,
    redirect: &str,
    challenge: &str,
    scope: Option<&str>,
    state: Option<&str>,
) -> String {
    let mut u = url::Url::parse(&app.url("/authorize")).unwrap();
    {
        let mut q = u.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("resource", &app.resource());
        if let Some(s) = scope {
            q.append_pair("scope", s);
        }
        if let Some(s) = state {
            q.append_pair("state", s);
        }
    }
    u.to_string()
}

pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    html.split(&marker)
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("no {name} in page"))
        .to_owned()
}

pub fn location(r: &reqwest::Response) -> String {
    let loc = r
        .headers()
        .get("location")
        .expect("a Location header")
        .to_str()
        .unwrap()
        .to_owned();
    if loc.starts_with('/') {
        format!("{}{}", r.url().origin().ascii_serialization(), loc)
    } else {
        loc
    }
}

/// Reads a JSON body, whatever the status.
pub async fn body_json(r: reqwest::Response) -> Value {
    let text = r.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// (status, error code) of a token-endpoint error answer, which is never cached
/// (RFC 6749 §5.1).
pub async fn token_error(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    assert_eq!(
        r.headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("no-store")
    );
    (
        status,
        body_json(r).await["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// The query parameters of a redirect.
pub fn query_of(location: &str) -> HashMap<String, String> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// Registers an operator's client directly in the store (what `mcpgate client add`
/// does): confidential when `secret` is given, created by a person when `owner` is.
pub async fn operator_client(
    app: &TestApp,
    secret: Option<&mcpgate_core::secret::Secret>,
    owner: Option<&str>,
) -> String {
    let id = mcpgate_core::secret::random_id();
    app.rules
        .store
        .insert_client(&mcpgate_domain::model::Client {
            client_id: id.clone(),
            secret_hash: secret.map(|s| s.hash()),
            name: "Operator client".into(),
            redirect_uris: vec![crate::support::REDIRECT.into()],
            kind: mcpgate_domain::model::ClientKind::Preregistered,
            auth_method: mcpgate_domain::model::AuthMethod::for_secret(secret.is_some()),
            can_introspect: false,
            owner_user_id: owner.map(str::to_owned),
            registration_hash: None,
            metadata: serde_json::json!({}),
            fetched_until: None,
            created_at: 0,
            last_used_at: None,
            machine: None,
            keys: None,
        })
        .await
        .unwrap();
    id
}
