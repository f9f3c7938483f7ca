//! A store with one person, two public clients and a grant, and the rules over it.

use std::sync::Arc;

use async_trait::async_trait;
use mcpgate_core::clock::ManualClock;
use mcpgate_core::{ErrorCode, ScopeSet, pkce};
use mcpgate_domain::flows::authorization_code::CodeExchange;
use mcpgate_domain::flows::authorize::{self, AuthorizeRequest, Lasting};
use mcpgate_domain::flows::refresh::RefreshRequest;
use mcpgate_domain::flows::tokens::TokenResponse;
use mcpgate_domain::flows::{authorization_code, introspect, refresh};
use mcpgate_domain::model::{AuthCode, AuthMethod, Client, ClientKind, Grant, User};
use mcpgate_domain::ports::{DocumentError, DocumentFetcher, FetchedDocument, PasswordHasher};
use mcpgate_domain::store::Tokens as _;
use mcpgate_domain::store::prelude::*;
use mcpgate_domain::{Authority, Settings};
use mcpgate_store::Database;
use sqlx::sqlite::SqlitePool;

pub const NOW: i64 = 1_800_000_000;
pub const RESOURCE: &str = "https://mcp.example.test/mcp";
pub const REDIRECT: &str = "http://127.0.0.1:9999/callback";
pub const VERIFIER: &str = "a-verifier-that-is-long-enough-to-satisfy-rfc-7636-rules-0123";

pub struct World {
    pub s: Authority,
    pub store: Database,
    pub clock: Arc<ManualClock>,
    /// A second connection to the same database file, for the fault triggers.
    pub raw: SqlitePool,
    pub client: Client,
    pub other: Client,
    /// What the rules fetch.
    pub docs: Arc<Offline>,
    _dir: TempDir,
}

/// A directory removed when the test ends.
struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn client(id: &str) -> Client {
    Client {
        client_id: id.into(),
        secret_hash: None,
        name: id.into(),
        redirect_uris: vec![REDIRECT.into()],
        kind: ClientKind::Dynamic,
        auth_method: AuthMethod::None,
        can_introspect: false,
        owner_user_id: None,
        registration_hash: None,
        metadata: serde_json::json!({}),
        fetched_until: None,
        created_at: NOW,
        last_used_at: None,
        machine: None,
        keys: None,
    }
}

/// Documents at URLs, as the tests publish them (JWK Sets of clients and identity
/// providers); every other URL cannot be fetched. Counts the fetches. Stands a plain
/// tagged string in for a password hash (argon2's cost is the edge's to pay, not these
/// rules' tests').
#[derive(Default)]
pub struct Offline {
    docs: std::sync::Mutex<std::collections::HashMap<String, serde_json::Value>>,
    pub fetches: std::sync::atomic::AtomicUsize,
}

impl Offline {
    /// Serves `doc` at `url` from now on.
    pub fn publish(&self, url: &str, doc: serde_json::Value) {
        self.docs.lock().unwrap().insert(url.to_owned(), doc);
    }
}

#[async_trait]
impl DocumentFetcher for Offline {
    async fn fetch(&self, url: &str) -> Result<FetchedDocument, DocumentError> {
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match self.docs.lock().unwrap().get(url) {
            Some(body) => Ok(FetchedDocument {
                body: body.clone(),
                max_age: None,
            }),
            None => Err(DocumentError::Fetch("offline".into())),
        }
    }
}

#[async_trait]
impl PasswordHasher for Offline {
    async fn hash(&self, password: String) -> String {
        format!("test-hash:{password}")
    }

    async fn verify(&self, password: String, phc: Option<String>) -> bool {
        phc.is_some_and(|p| p == format!("test-hash:{password}"))
    }
}

pub async fn world() -> World {
    let dir = std::env::temp_dir().join(format!(
        "mcpgate-grants-{}-{}",
        std::process::id(),
        mcpgate_core::secret::random_id()
    ));
    let store = Database::open_dir(&dir).await.unwrap();
    let clock = Arc::new(ManualClock::new(NOW));
    let cfg = Settings::new(
        "https://auth.example.test",
        RESOURCE,
        ScopeSet::parse("op:add op:mult").unwrap(),
    );
    let docs = Arc::new(Offline::default());
    let s = Authority::start(
        Arc::new(store.clone()),
        cfg,
        clock.clone(),
        docs.clone(),
        docs.clone(),
    )
    .await
    .unwrap();
    store
        .create_user(&User {
            id: "u1".into(),
            username: "ada".into(),
            email: None,
            password_hash: "x".into(),
            is_admin: false,
            disabled: false,
            created_at: NOW,
        })
        .await
        .unwrap();
    let (c, o) = (client("c1"), client("c2"));
    store.insert_client(&c).await.unwrap();
    store.insert_client(&o).await.unwrap();
    store
        .insert_grant(&Grant {
            id: "g1".into(),
            user_id: "u1".into(),
            client_id: "c1".into(),
            resource: RESOURCE.into(),
            scope: ScopeSet::parse("op:add op:mult").unwrap(),
            withheld: ScopeSet::new(),
            created_at: NOW,
            last_used_at: None,
            revoked_at: None,
            expires_at: None,
        })
        .await
        .unwrap();
    let raw = SqlitePool::connect(&format!("sqlite://{}", dir.join("mcpgate.db").display()))
        .await
        .unwrap();
    World {
        s,
        store,
        clock,
        raw,
        client: c,
        other: o,
        docs,
        _dir: TempDir(dir),
    }
}

impl World {
    /// Issues a code the way the authorization endpoint does; returns the code.
    pub async fn code(&self) -> String {
        let code = mcpgate_core::secret::random_id();
        self.store
            .insert_code(&AuthCode {
                code_hash: mcpgate_core::secret::hash_token(&code),
                client_id: "c1".into(),
                user_id: "u1".into(),
                grant_id: "g1".into(),
                redirect_uri: REDIRECT.into(),
                scope: ScopeSet::parse("op:add op:mult").unwrap(),
                resource: RESOURCE.into(),
                code_challenge: pkce::challenge_of(VERIFIER),
                created_at: NOW,
                expires_at: self.s.now() + 60,
                used_at: None,
                family_id: None,
            })
            .await
            .unwrap();
        code
    }

    pub async fn exchange_as(
        &self,
        client: &Client,
        pairs: &[(&str, &str)],
    ) -> Result<TokenResponse, ErrorCode> {
        let req = CodeExchange {
            code: param(pairs, "code").unwrap_or_default(),
            redirect_uri: param(pairs, "redirect_uri").unwrap_or_default(),
            code_verifier: param(pairs, "code_verifier").unwrap_or_default(),
            resource: param(pairs, "resource"),
            dpop_jkt: None,
        };
        authorization_code::exchange(&self.s, client, req)
            .await
            .map_err(|e| e.code)
    }

    pub async fn exchange(&self, code: &str) -> Result<TokenResponse, ErrorCode> {
        self.exchange_as(
            &self.client,
            &[
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ],
        )
        .await
    }

    pub async fn refresh(&self, token: &str, extra: &[(&str, &str)]) -> Result<Tokens, ErrorCode> {
        let req = RefreshRequest {
            refresh_token: token,
            scope: param(extra, "scope"),
            resource: param(extra, "resource"),
            dpop_jkt: None,
        };
        refresh::refresh(&self.s, &self.client, req)
            .await
            .map_err(|e| e.code)
    }

    pub async fn active(&self, access: &str) -> bool {
        introspect::introspect(&self.s, access, "c1").await.unwrap()["active"] == true
    }

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(&self.raw)
            .await
            .unwrap()
    }

    /// Makes every write of `op` (INSERT or UPDATE) to `table` fail until `heal`.
    pub async fn break_table(&self, op: &str, table: &str) {
        // Test-owned constants only: no outside input reaches this SQL.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE TRIGGER fault BEFORE {op} ON {table} BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
        )))
        .execute(&self.raw)
        .await
        .unwrap();
    }

    pub async fn heal(&self) {
        sqlx::query("DROP TRIGGER IF EXISTS fault")
            .execute(&self.raw)
            .await
            .unwrap();
    }
}

pub type Tokens = TokenResponse;

/// The value of `name` among a request's parameters.
fn param<'a>(pairs: &[(&str, &'a str)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
}

impl World {
    /// ada's consent through the authorization endpoint's flows: a request for `scope`,
    /// approving `approved` whatever the page offered (as a forged form would), lasting
    /// as given. Returns what the page offered, and the code (or the error code).
    pub async fn consent(
        &self,
        scope: &str,
        approved: &str,
        lasting: Option<Lasting>,
    ) -> (authorize::Offer, Result<String, String>) {
        let challenge = pkce::challenge_of(VERIFIER);
        let handle = authorize::validate(
            &self.s,
            &AuthorizeRequest {
                client_id: Some("c1"),
                redirect_uri: Some(REDIRECT),
                response_type: Some("code"),
                state: Some("st"),
                code_challenge: Some(&challenge),
                code_challenge_method: Some("S256"),
                resource: Some(RESOURCE),
                scope: Some(scope),
            },
        )
        .await
        .unwrap();
        let (req, _) = authorize::pending(&self.s, &handle).await.unwrap().unwrap();
        let user = self.store.user("u1").await.unwrap().unwrap();
        let offer = authorize::offer(&self.s, &user, &req).await.unwrap();
        let approved = ScopeSet::parse(approved).unwrap();
        let location = authorize::approve(&self.s, &handle, &req, &user, &approved, lasting)
            .await
            .unwrap();
        let q: Vec<(String, String)> = url::Url::parse(&location)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect();
        let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        (offer, get("code").ok_or_else(|| get("error").unwrap()))
    }

    /// ada's live grant to c1.
    pub async fn grant(&self) -> Grant {
        self.store
            .live_grant("u1", "c1", RESOURCE)
            .await
            .unwrap()
            .unwrap()
    }
}
