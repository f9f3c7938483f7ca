//! The provider's callback over real HTTP, against a provider these tests play
//! (`crate::provider`): who is linked, who is refused with which page, and what
//! the audit records. The table of every decision is `mcpgate_server::idp::admit`'s; these
//! cases show that the route applies it.

use std::sync::Arc;

use mcpgate_core::ScopeSet;
use mcpgate_core::clock::SystemClock;
use mcpgate_domain::model::User;
use mcpgate_store::Database;
use serde_json::{Value, json};

use mcpgate_server::idp::{IdpSettings, Registry};
use mcpgate_server::{AuthServer, ServerConfig};

use crate::provider::{FakeProvider, fake_provider, settings};

struct Site {
    base: String,
    auth: AuthServer,
    http: reqwest::Client,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// mcpgate on loopback with `provider` as its only identity provider.
async fn site(provider: IdpSettings) -> Site {
    let dir = std::env::temp_dir().join(format!(
        "mcpgate-idp-route-{}",
        mcpgate_core::secret::random_id()
    ));
    let store = Database::open_dir(&dir).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let cfg = ServerConfig::new(&base, &format!("{base}/mcp"), ScopeSet::new());
    let mut auth = AuthServer::start(
        Arc::new(store),
        cfg,
        Arc::new(SystemClock),
        Arc::new(mcpgate_server::documents::Fetcher::default()),
    )
    .await
    .unwrap();
    auth.idps = Arc::new(Registry::new(vec![provider]));
    let router = mcpgate_server::routes::router(auth.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Site {
        base,
        auth,
        http,
        _dir: TempDir(dir),
    }
}

impl Site {
    async fn add_user(&self, name: &str, email: &str, admin: bool) -> User {
        let u = User {
            id: format!("id-{name}"),
            username: name.into(),
            email: Some(email.into()),
            password_hash: "!".into(),
            is_admin: admin,
            disabled: false,
            created_at: 0,
        };
        self.auth.auth.store.create_user(&u).await.unwrap();
        u
    }

    /// Starts a sign-in, has the provider vouch for `claims` (its nonce filled in),
    /// and returns mcpgate's answer to the callback.
    async fn sign_in(&self, fp: &FakeProvider, mut claims: Value) -> reqwest::Response {
        let r = self
            .http
            .get(format!("{}/login/idp/fake", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        let to = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
        let param = |k: &str| {
            to.query_pairs()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.into_owned())
                .unwrap()
        };
        let cookie = r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        claims["nonce"] = json!(param("nonce"));
        *fp.id_token.lock().unwrap() = fp.sign(&claims);
        let mut callback =
            url::Url::parse(&format!("{}/login/idp/fake/callback", self.base)).unwrap();
        callback
            .query_pairs_mut()
            .append_pair("state", &param("state"))
            .append_pair("code", "c");
        self.http
            .get(callback)
            .header("cookie", cookie)
            .send()
            .await
            .unwrap()
    }

    /// The reasons of the refused sign-ins audited so far.
    async fn refusals(&self) -> Vec<Value> {
        self.auth
            .auth
            .store
            .search_audit(&Default::default(), 100)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.event == "idp_login_refused")
            .map(|e| serde_json::from_str(&e.detail).unwrap())
            .collect()
    }
}

fn claims_for(fp: &FakeProvider, sub: &str, email: &str) -> Value {
    let mut c = fp.claims();
    c["sub"] = json!(sub);
    c["email"] = json!(email);
    c
}

/// An administrator's verified email at a provider trusted for every domain: refused
/// with a page saying an administrator must link it, nothing linked, no session, and
/// the refusal audited with the subject an operator needs to link it by hand. A
/// person's account with a verified email is linked as before.
#[tokio::test]
async fn an_administrators_account_is_never_linked_by_email() {
    let fp = fake_provider().await;
    let s = site(settings(&fp.issuer)).await;
    s.add_user("root", "root@example.com", true).await;
    let r = s
        .sign_in(&fp, claims_for(&fp, "person-root", "root@example.com"))
        .await;
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("set-cookie").is_none(), "no session");
    let page = r.text().await.unwrap();
    assert!(
        page.contains("An administrator must link this account"),
        "{page}"
    );
    let link = s.auth.auth.store.user_identity("fake", "person-root").await;
    assert!(link.unwrap().is_none(), "nothing linked");
    let refused = s.refusals().await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["reason"], "AdministratorNotLinked");
    assert_eq!(refused[0]["subject"], "person-root");

    let ann = s.add_user("ann", "ann@example.com", false).await;
    let r = s
        .sign_in(&fp, claims_for(&fp, "person-ann", "ann@example.com"))
        .await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let link = s.auth.auth.store.user_identity("fake", "person-ann").await;
    assert_eq!(link.unwrap().unwrap().user_id, ann.id);
}

/// A provider with allowed domains is trusted for those alone: an invited account of
/// another domain is not linked by email, and the refusal is audited.
#[tokio::test]
async fn an_email_outside_the_allowed_domains_is_never_linked() {
    let fp = fake_provider().await;
    let mut p = settings(&fp.issuer);
    p.allowed_domains = vec!["corp.example".into()];
    let s = site(p).await;
    s.add_user("bob", "bob@elsewhere.example", false).await;
    let r = s
        .sign_in(&fp, claims_for(&fp, "person-bob", "bob@elsewhere.example"))
        .await;
    assert_eq!(r.status(), 403);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("This account cannot sign in here")
    );
    let link = s.auth.auth.store.user_identity("fake", "person-bob").await;
    assert!(link.unwrap().is_none());
    assert_eq!(s.refusals().await[0]["reason"], "DomainNotAllowed");
}
