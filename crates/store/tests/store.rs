//! One behavioural suite for every backend: the same operations, the same errors, the
//! same concurrency guarantees. PostgreSQL runs against TEST_DATABASE_URL (the test
//! command sets it, starting or installing a server when none runs); each test gets
//! a fresh database. Without the variable the PostgreSQL half says so loudly and
//! passes vacuously.

use std::sync::Arc;

use mcpgate_core::secret::random_id;
use mcpgate_domain::model::*;
use mcpgate_domain::store::prelude::*;
use mcpgate_store::{Change, ChangeListener, Database};
use serde_json::json;

async fn sqlite() -> Database {
    let dir = std::env::temp_dir().join(format!("mcpgate-store-{}", random_id()));
    Database::open_dir(&dir).await.unwrap()
}

async fn postgres_url() -> Option<String> {
    let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
        // In CI a database is part of the test: its absence fails the run.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but TEST_DATABASE_URL is not: the PostgreSQL tests cannot run"
        );
        eprintln!(
            "SKIPPED: PostgreSQL store tests (TEST_DATABASE_URL is not set; ./scripts/test sets it)"
        );
        return None;
    };
    let name = format!(
        "mcpgate_t_{}",
        random_id().to_lowercase().replace(['-', '_'], "")
    );
    let admin = sqlx::PgPool::connect(&admin_url)
        .await
        .expect("TEST_DATABASE_URL reachable");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .unwrap();
    let url = match admin_url.rsplit_once('/') {
        Some((prefix, _)) => format!("{prefix}/{name}"),
        None => unreachable!(),
    };
    Some(url)
}

async fn postgres() -> Option<Database> {
    Some(Database::open(&postgres_url().await?).await.unwrap())
}

/// Two processes on one database: a server and the command line beside it (SQLite),
/// or two instances (PostgreSQL).
async fn sqlite_pair() -> (Database, Database) {
    let dir = std::env::temp_dir().join(format!("mcpgate-store-{}", random_id()));
    let here = Database::open_dir(&dir)
        .await
        .unwrap()
        .remembering_for(AN_HOUR);
    (here, Database::open_dir(&dir).await.unwrap())
}

async fn postgres_pair() -> Option<(Database, Database)> {
    let url = postgres_url().await?;
    let here = Database::open(&url).await.unwrap().remembering_for(AN_HOUR);
    Some((here, Database::open(&url).await.unwrap()))
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite { $( #[tokio::test] async fn $name() { super::$name(super::sqlite().await).await } )* }
        mod on_postgres { $( #[tokio::test] async fn $name() { if let Some(s) = super::postgres().await { super::$name(s).await } } )* }
    };
}

both!(
    users,
    clients,
    codes_redeem_once_under_concurrency,
    refresh_rotates_once_under_concurrency,
    grants_and_revocation,
    revocations_in_order,
    throttle_and_sessions,
    audit_batches,
    keys_retire,
    admin_reads,
    changes_are_announced_on_commit_only,
    eviction_takes_the_oldest_unused_registration,
    calls_by_day_counts_allowed_and_refused_per_app,
    groups_memberships_and_restrictions,
    a_grants_end_caps_its_tokens_and_ends_it,
    a_code_exchanged_after_its_grant_was_shortened_gets_its_end,
    codes_of_one_grant_exchanged_at_once_all_succeed,
    a_connection_is_refreshed_by_one_claimant,
    an_upstream_registration_is_shared,
    a_connect_attempt_is_spent_once
);

fn user(name: &str) -> User {
    User {
        id: random_id(),
        username: name.into(),
        email: None,
        password_hash: "h".into(),
        is_admin: false,
        disabled: false,
        created_at: 1,
    }
}

async fn users(s: Database) {
    s.create_user(&user("alice")).await.unwrap();
    assert!(
        matches!(
            s.create_user(&user("alice")).await,
            Err(StoreError::Conflict(_))
        ),
        "usernames are unique"
    );
    let a = s.user_by_name("alice").await.unwrap().unwrap();
    assert!(!a.disabled && !a.is_admin);
    assert!(s.set_user_disabled("alice", true).await.unwrap());
    assert!(s.user(&a.id).await.unwrap().unwrap().disabled);
    assert!(!s.set_password("nobody", "x").await.unwrap());
    assert_eq!(s.count_users().await.unwrap(), 1);
}

fn client(id: &str, owner: Option<&str>) -> Client {
    Client {
        client_id: id.into(),
        secret_hash: None,
        name: "C".into(),
        redirect_uris: vec!["http://127.0.0.1/cb".into()],
        kind: ClientKind::Dynamic,
        auth_method: AuthMethod::None,
        can_introspect: false,
        owner_user_id: owner.map(String::from),
        registration_hash: Some(format!("h-{id}")),
        metadata: json!({"client_name": "C"}),
        fetched_until: None,
        created_at: 10,
        last_used_at: None,
        machine: None,
        keys: None,
    }
}

async fn clients(s: Database) {
    s.insert_client(&client("c1", Some("u1"))).await.unwrap();
    s.insert_client(&client("c2", None)).await.unwrap();
    assert!(matches!(
        s.insert_client(&client("c1", None)).await,
        Err(StoreError::Conflict(_))
    ));
    let c = s.client("c1").await.unwrap().unwrap();
    assert_eq!(c.redirect_uris, vec!["http://127.0.0.1/cb"]);
    assert_eq!(c.metadata["client_name"], "C");
    assert_eq!(
        s.client_by_registration_hash("h-c2")
            .await
            .unwrap()
            .unwrap()
            .client_id,
        "c2"
    );
    assert_eq!(s.clients(Some("u1")).await.unwrap().len(), 1);
    assert!(
        !s.delete_client("c1", Some("someone-else")).await.unwrap(),
        "only the owner deletes"
    );
    assert!(s.delete_client("c1", Some("u1")).await.unwrap());
    assert_eq!(
        s.sweep_unused_dynamic_clients(11).await.unwrap(),
        1,
        "unused dynamic registrations expire"
    );
    assert!(s.client("c2").await.unwrap().is_none());
}

async fn eviction_takes_the_oldest_unused_registration(s: Database) {
    for (id, created, used) in [("old-used", 1, Some(5)), ("old", 2, None), ("new", 3, None)] {
        let mut c = client(id, None);
        c.created_at = created;
        c.last_used_at = used;
        s.insert_client(&c).await.unwrap();
    }
    // a registration not older than `created_before` may be a sign-in in progress
    assert_eq!(s.evict_oldest_unused_dynamic_client(2).await.unwrap(), None);
    let evicted = s
        .evict_oldest_unused_dynamic_client(i64::MAX)
        .await
        .unwrap();
    assert_eq!(evicted.as_deref(), Some("old"));
    s.touch_client("new", 9).await.unwrap();
    assert_eq!(
        s.evict_oldest_unused_dynamic_client(i64::MAX)
            .await
            .unwrap(),
        None
    );
    assert_eq!(s.count_dynamic_clients().await.unwrap(), 2);
}

fn code(hash: &str) -> AuthCode {
    AuthCode {
        code_hash: hash.into(),
        client_id: "c".into(),
        user_id: "u".into(),
        grant_id: "g".into(),
        redirect_uri: "r".into(),
        scope: mcpgate_core::ScopeSet::parse("op:add").unwrap(),
        resource: "http://x/mcp".into(),
        code_challenge: "ch".into(),
        created_at: 0,
        expires_at: 100,
        used_at: None,
        family_id: None,
    }
}

async fn codes_redeem_once_under_concurrency(s: Database) {
    s.insert_code(&code("k1")).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            matches!(s.redeem_code("k1", 50).await.unwrap(), Redeem::Redeemed(_))
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += t.await.unwrap() as u32;
    }
    assert_eq!(wins, 1, "a code is redeemed exactly once");
    assert!(
        matches!(s.redeem_code("k1", 50).await.unwrap(), Redeem::Spent(c) if c.used_at.is_some())
    );
    s.insert_code(&code("k2")).await.unwrap();
    assert!(
        matches!(s.redeem_code("k2", 100).await.unwrap(), Redeem::Spent(c) if c.used_at.is_none()),
        "expired"
    );
    assert!(matches!(
        s.redeem_code("nope", 1).await.unwrap(),
        Redeem::NotFound
    ));
}

fn t0() -> RefreshToken {
    RefreshToken {
        token_hash: "r1".into(),
        family_id: "f".into(),
        created_at: 0,
        expires_at: 1000,
        rotated_at: None,
        grace_answer: None,
        grace_until: None,
    }
}

/// Connected accounts through OAuth: of many callers (on any number of instances)
/// claiming the refresh of one generation, one wins; its result starts the next
/// generation, a stale writer is refused, and a vanished holder's claim lapses.
async fn a_connection_is_refreshed_by_one_claimant(s: Database) {
    s.put_connection("u1", "files", "gen-0", 1).await.unwrap();
    let g = s
        .connection("u1", "files")
        .await
        .unwrap()
        .unwrap()
        .generation;
    let s = Arc::new(s);
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.claim_refresh("u1", "files", g, 10, 40).await.unwrap()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += t.await.unwrap() as u32;
    }
    assert_eq!(wins, 1, "one claimant refreshes a generation");
    assert!(
        !s.finish_refresh("u1", "files", g, 39, "not-the-claim")
            .await
            .unwrap(),
        "only the claimant writes"
    );
    assert!(
        s.finish_refresh("u1", "files", g, 40, "gen-1")
            .await
            .unwrap()
    );
    let now = s.connection("u1", "files").await.unwrap().unwrap();
    assert_eq!((now.secret.as_str(), now.generation), ("gen-1", g + 1));
    assert!(
        !s.finish_refresh("u1", "files", g, 40, "stale")
            .await
            .unwrap(),
        "a refresh of an old generation is never written"
    );
    assert!(!s.claim_refresh("u1", "files", g, 11, 41).await.unwrap());
    // A claim that is held refuses others until it lapses, or is released.
    assert!(s.claim_refresh("u1", "files", g + 1, 12, 42).await.unwrap());
    assert!(!s.claim_refresh("u1", "files", g + 1, 41, 71).await.unwrap());
    assert!(s.claim_refresh("u1", "files", g + 1, 42, 72).await.unwrap());
    s.release_refresh("u1", "files", g + 1).await.unwrap();
    assert!(s.claim_refresh("u1", "files", g + 1, 43, 73).await.unwrap());
    // Connecting anew starts a generation no refresh in flight can overwrite.
    s.put_connection("u1", "files", "new", 50).await.unwrap();
    assert!(
        !s.finish_refresh("u1", "files", g + 1, 73, "late")
            .await
            .unwrap()
    );
    assert_eq!(
        s.connection("u1", "files").await.unwrap().unwrap().secret,
        "new"
    );
}

/// One dynamic registration per upstream and issuer, whichever instance made it first.
async fn an_upstream_registration_is_shared(s: Database) {
    assert!(
        s.upstream_client("calc", "https://as")
            .await
            .unwrap()
            .is_none()
    );
    let first = UpstreamClient {
        client_id: "c1".into(),
        secret: Some("s1".into()),
    };
    let kept = s
        .put_upstream_client("calc", "https://as", &first, 1)
        .await
        .unwrap();
    assert_eq!(kept, first);
    let second = UpstreamClient {
        client_id: "c2".into(),
        secret: None,
    };
    assert_eq!(
        s.put_upstream_client("calc", "https://as", &second, 2)
            .await
            .unwrap(),
        first,
        "the one kept first is everyone's"
    );
}

async fn a_connect_attempt_is_spent_once(s: Database) {
    let a = ConnectAttempt {
        user_id: "u1".into(),
        upstream: "calc".into(),
        verifier: "v".repeat(43),
        request_hash: Some("h".into()),
        expires_at: 100,
    };
    s.insert_connect_attempt("st", &a, 5).await.unwrap();
    assert_eq!(s.take_connect_attempt("st").await.unwrap(), Some(a.clone()));
    assert_eq!(s.take_connect_attempt("st").await.unwrap(), None);
    // A person's attempts are bounded: the oldest go first.
    for i in 0..8 {
        let b = ConnectAttempt {
            expires_at: 100 + i,
            ..a.clone()
        };
        s.insert_connect_attempt(&format!("s{i}"), &b, 5)
            .await
            .unwrap();
    }
    assert!(s.take_connect_attempt("s2").await.unwrap().is_none());
    assert!(s.take_connect_attempt("s3").await.unwrap().is_some());
}

async fn refresh_rotates_once_under_concurrency(s: Database) {
    s.insert_refresh(&t0()).await.unwrap();
    let s = Arc::new(s);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let next = RefreshToken {
                token_hash: format!("n{i}"),
                created_at: 5,
                ..t0()
            };
            s.rotate_refresh("r1", 5, &format!("answer-{i}"), 15, &next)
                .await
                .unwrap()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += t.await.unwrap() as u32;
    }
    assert_eq!(wins, 1, "a refresh token rotates exactly once");
    let row = s.refresh("r1").await.unwrap().unwrap();
    assert_eq!(row.rotated_at, Some(5));
    assert!(row.grace_answer.unwrap().starts_with("answer-"));
    let mut successors = 0;
    for i in 0..8 {
        successors += s.refresh(&format!("n{i}")).await.unwrap().is_some() as u32;
    }
    assert_eq!(successors, 1, "only the winner's successor is written");
}

async fn grants_and_revocation(s: Database) {
    let g = Grant {
        id: "g1".into(),
        user_id: "u".into(),
        client_id: "c".into(),
        resource: "r".into(),
        scope: mcpgate_core::ScopeSet::parse("op:add").unwrap(),
        withheld: Default::default(),
        created_at: 1,
        last_used_at: None,
        revoked_at: None,
        expires_at: None,
    };
    s.insert_grant(&g).await.unwrap();
    let mut dup = g.clone();
    dup.id = "g2".into();
    assert!(
        matches!(s.insert_grant(&dup).await, Err(StoreError::Conflict(_))),
        "one live grant per person, client and resource"
    );
    for f in ["f1", "f2"] {
        s.insert_family(&TokenFamily {
            id: f.into(),
            grant_id: "g1".into(),
            client_id: "c".into(),
            user_id: "u".into(),
            scope: mcpgate_core::ScopeSet::parse("op:add").unwrap(),
            resource: "r".into(),
            created_at: 1,
            expires_at: 100,
            revoked_at: None,
            revoked_reason: None,
            dpop_jkt: None,
        })
        .await
        .unwrap();
    }
    assert_eq!(s.grant_views(Some("u")).await.unwrap().len(), 1);
    let mut fams = s.revoke_grant("g1", 5, "test").await.unwrap();
    fams.sort();
    assert_eq!(fams, vec!["f1", "f2"]);
    assert!(s.family("f1").await.unwrap().unwrap().revoked_at.is_some());
    assert!(s.grant_views(Some("u")).await.unwrap().is_empty());
    assert!(s.grant_views(None).await.unwrap().is_empty());
    s.insert_grant(&dup).await.unwrap(); // a new grant after revocation is fine
    assert!(
        !s.revoke_family("f1", 6, "again").await.unwrap(),
        "already revoked"
    );
}

async fn revocations_in_order(s: Database) {
    for h in ["a", "b", "c"] {
        s.insert_revocation(h, 100, 1).await.unwrap();
    }
    let all = s.revocations_since(0).await.unwrap();
    assert_eq!(
        all.iter().map(|r| r.handle.as_str()).collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    assert_eq!(s.revocations_since(all[0].seq).await.unwrap().len(), 2);
}

async fn throttle_and_sessions(s: Database) {
    // One free attempt, then each further one locks the next for 10 s per attempt.
    let reserve = || s.reserve_login_attempt("alice", 100, 1, |n| n * 10);
    assert_eq!(reserve().await.unwrap(), Reservation::Granted);
    assert_eq!(reserve().await.unwrap(), Reservation::Granted);
    assert_eq!(reserve().await.unwrap(), Reservation::LockedUntil(120));
    s.clear_login_throttle("alice").await.unwrap();
    assert_eq!(reserve().await.unwrap(), Reservation::Granted);
    let u = user("bob");
    s.create_user(&u).await.unwrap();
    s.insert_session("sess", &u.id, 1, 100).await.unwrap();
    assert_eq!(
        s.session_user("sess", 50).await.unwrap().unwrap().username,
        "bob"
    );
    assert!(
        s.session_user("sess", 100).await.unwrap().is_none(),
        "expired"
    );
    s.set_user_disabled("bob", true).await.unwrap();
    assert!(
        s.session_user("sess", 50).await.unwrap().is_none(),
        "disabled users have no session"
    );
}

async fn audit_batches(s: Database) {
    s.audit(1, "login_succeeded", Some("u"), None, &json!({}))
        .await
        .unwrap();
    let row = |at, allowed| AuditRow {
        at,
        event: "tool_call".into(),
        user_id: Some("u".into()),
        client_id: Some("c".into()),
        detail: json!({ "allowed": allowed }),
    };
    s.audit_batch(&[row(2, true), row(3, false)]).await.unwrap();
    let ev = s.audit_events(10).await.unwrap();
    assert_eq!(
        ev.iter().map(|e| e.event.as_str()).collect::<Vec<_>>(),
        ["tool_call", "tool_call", "login_succeeded"]
    );
}

fn key(kid: &str, created_at: i64) -> mcpgate_core::jwt::StoredKey {
    mcpgate_core::jwt::StoredKey {
        kid: kid.into(),
        seed: [1; 32],
        created_at,
    }
}

async fn keys_retire(s: Database) {
    for (k, t) in [("k1", 1), ("k2", 2), ("k3", 3)] {
        s.insert_signing_key(&key(k, t)).await.unwrap();
    }
    let live = |s: Database| async move {
        s.signing_keys()
            .await
            .unwrap()
            .into_iter()
            .map(|k| k.kid)
            .collect::<Vec<_>>()
    };
    s.retire_superseded_keys(4, 5).await.unwrap();
    assert_eq!(
        live(s.clone()).await,
        ["k1", "k2", "k3"],
        "nothing superseded long enough"
    );
    s.retire_superseded_keys(7, 5).await.unwrap();
    assert_eq!(
        live(s.clone()).await,
        ["k2", "k3"],
        "k1 was superseded by k2 at 2 <= 7 - 5"
    );
    s.retire_superseded_keys(100, 5).await.unwrap();
    assert_eq!(live(s).await, ["k3"]);
}

mod two_processes_on_sqlite {
    #[tokio::test]
    async fn remembered_configuration_follows_changes() {
        super::remembered_configuration_follows_changes(super::sqlite_pair().await).await
    }
}

mod two_processes_on_postgres {
    #[tokio::test]
    async fn remembered_configuration_follows_changes() {
        if let Some(pair) = super::postgres_pair().await {
            super::remembered_configuration_follows_changes(pair).await
        }
    }
}

/// How long the server of the pairs remembers: nothing ages out during a test, so a
/// change is seen only because it was heard.
const AN_HOUR: std::time::Duration = std::time::Duration::from_secs(3600);

/// What a server remembers of the configuration (the scope catalogue, clients,
/// people) follows every change: its own at once, another process's as soon as that
/// process's announcement is heard, and not before (the server here remembers for an
/// hour, so nothing ages out meanwhile).
async fn remembered_configuration_follows_changes((here, there): (Database, Database)) {
    use std::time::Duration;
    // The server listens; the other process only writes.
    let mut l = here.listen().await.unwrap().expect("a listener");
    // Lets the hints of earlier changes arrive, so that the next one heard is new.
    let quiet = async |l: &mut Box<dyn ChangeListener>| {
        while tokio::time::timeout(Duration::from_millis(300), l.recv())
            .await
            .is_ok()
        {}
    };
    let heard = async |l: &mut Box<dyn ChangeListener>| {
        let next = tokio::time::timeout(Duration::from_secs(10), l.recv());
        next.await.expect("the change was announced").unwrap();
    };
    let s = |v: &[&str]| v.iter().map(|g| g.to_string()).collect::<Vec<_>>();
    let pairs = |v: &[(&str, &str)]| {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
    };
    let u = user("rem");
    here.create_user(&u).await.unwrap();
    here.insert_client(&client("rc", None)).await.unwrap();
    here.upsert_scope("files", "Files").await.unwrap();
    here.upsert_scope("files:read", "Read").await.unwrap();
    // This process's own changes are read at once, even what it remembers.
    assert_eq!(here.scope_groups().await.unwrap(), vec![]);
    assert_eq!(here.scope_includes().await.unwrap(), vec![]);
    here.set_scope_groups("files", &s(&["staff"]))
        .await
        .unwrap();
    assert_eq!(
        here.scope_groups().await.unwrap(),
        pairs(&[("files", "staff")])
    );
    here.set_scope_includes("files", &s(&["files:read"]))
        .await
        .unwrap();
    assert_eq!(
        here.scope_includes().await.unwrap(),
        pairs(&[("files", "files:read")])
    );
    assert_eq!(here.client("rc").await.unwrap().unwrap().last_used_at, None);
    here.touch_client("rc", 50).await.unwrap();
    assert_eq!(
        here.client("rc").await.unwrap().unwrap().last_used_at,
        Some(50)
    );
    // Let the hints of those changes arrive, so that the next one heard is the
    // other process's.
    quiet(&mut l).await;

    assert_eq!(here.scope_groups().await.unwrap().len(), 1);
    assert_eq!(here.scope_includes().await.unwrap().len(), 1);
    assert_eq!(here.scopes().await.unwrap().len(), 2);
    assert!(here.client("rc").await.unwrap().is_some());
    assert!(!here.user(&u.id).await.unwrap().unwrap().disabled);
    there.set_scope_groups("files", &[]).await.unwrap();
    there.set_scope_includes("files", &[]).await.unwrap();
    there.upsert_scope("mail", "Mail").await.unwrap();
    there.delete_client("rc", None).await.unwrap();
    assert!(there.set_user_disabled("rem", true).await.unwrap());
    assert_eq!(here.scope_groups().await.unwrap().len(), 1, "remembered");
    assert!(here.client("rc").await.unwrap().is_some(), "remembered");
    assert!(
        !here.user(&u.id).await.unwrap().unwrap().disabled,
        "remembered"
    );
    heard(&mut l).await;
    assert_eq!(here.scope_groups().await.unwrap(), vec![]);
    assert_eq!(here.scope_includes().await.unwrap(), vec![]);
    assert_eq!(here.scopes().await.unwrap().len(), 3);
    assert!(here.client("rc").await.unwrap().is_none());
    assert!(here.user(&u.id).await.unwrap().unwrap().disabled);
    // A password set elsewhere is announced too.
    quiet(&mut l).await;
    assert_eq!(here.user(&u.id).await.unwrap().unwrap().password_hash, "h");
    assert!(there.set_password("rem", "h2").await.unwrap());
    assert_eq!(here.user(&u.id).await.unwrap().unwrap().password_hash, "h");
    heard(&mut l).await;
    assert_eq!(here.user(&u.id).await.unwrap().unwrap().password_hash, "h2");
}

/// Every change other processes keep in memory is announced, once, and only when it
/// committed: a change that failed (here a duplicate key) announces nothing.
async fn changes_are_announced_on_commit_only(s: Database) {
    use std::time::Duration;
    let mut l = s.listen().await.unwrap().expect("a listener");
    s.insert_signing_key(&key("k1", 1)).await.unwrap();
    assert!(s.insert_signing_key(&key("k1", 2)).await.is_err());
    s.insert_revocation("h1", 10, 5).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..2 {
        let next = tokio::time::timeout(Duration::from_secs(5), l.recv());
        got.push(next.await.expect("announced").unwrap());
    }
    // PostgreSQL says what to read again; a local datagram says "read everything".
    // Neither says what was revoked: that is read from the table.
    assert!(
        got == vec![Some(Change::Keys), Some(Change::Revocations)] || got == vec![None, None],
        "{got:?}"
    );
    let extra = tokio::time::timeout(Duration::from_millis(300), l.recv()).await;
    assert!(extra.is_err(), "the failed change was announced: {extra:?}");
}

/// The admin pages' reads: searches that treat `%` and `_` literally, the audit
/// filter, and tool calls (counted in their detail) and sign-ins per time bucket.
async fn admin_reads(s: Database) {
    for n in ["ann", "anna_b", "bob"] {
        s.create_user(&user(n)).await.unwrap();
    }
    let names = |v: Vec<User>| v.into_iter().map(|u| u.username).collect::<Vec<_>>();
    assert_eq!(
        names(s.search_users("AN", 10).await.unwrap()),
        ["ann", "anna_b"]
    );
    assert_eq!(names(s.search_users("_", 10).await.unwrap()), ["anna_b"]);
    assert_eq!(
        names(s.search_users("%", 10).await.unwrap()),
        Vec::<String>::new()
    );
    assert_eq!(
        s.search_users("", 2).await.unwrap().len(),
        2,
        "the limit holds"
    );
    let ev = |at: i64, event: &str, u: &str, detail: serde_json::Value| AuditRow {
        at,
        event: event.to_owned(),
        user_id: Some(u.to_owned()),
        client_id: Some("c1".to_owned()),
        detail,
    };
    s.audit_batch(&[
        ev(1000, "login_succeeded", "u1", json!({})),
        ev(
            1100,
            "tool_calls",
            "u1",
            json!({"count": 5, "tool": "calculator"}),
        ),
        ev(4700, "tool_calls", "u2", json!({"count": 2})),
        ev(4800, "login_succeeded", "u2", json!({})),
        ev(4900, "login_failed", "u2", json!({})),
        ev(9000, "tool_calls", "u2", json!({"count": 7})),
    ])
    .await
    .unwrap();
    let f = AuditFilter {
        user_id: Some("u2".into()),
        from: Some(4700),
        to: Some(9000),
        ..Default::default()
    };
    let found: Vec<_> = s
        .search_audit(&f, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(found, ["login_failed", "login_succeeded", "tool_calls"]);
    let f = AuditFilter {
        event: Some("tool_calls".into()),
        client_id: Some("c1".into()),
        ..Default::default()
    };
    assert_eq!(s.search_audit(&f, 10).await.unwrap().len(), 3);
    // grants by user and by client, with the user's name; revoked ones left out
    let ann = s.user_by_name("ann").await.unwrap().unwrap();
    s.insert_client(&client("c1", None)).await.unwrap();
    s.insert_client(&client("x_2", None)).await.unwrap();
    for (id, user, client) in [
        ("g1", ann.id.as_str(), "c1"),
        ("g2", ann.id.as_str(), "x_2"),
        ("g3", "gone", "c1"),
    ] {
        s.insert_grant(&Grant {
            id: id.into(),
            user_id: user.into(),
            client_id: client.into(),
            resource: "r".into(),
            scope: mcpgate_core::ScopeSet::parse("op:add").unwrap(),
            withheld: Default::default(),
            created_at: 1,
            last_used_at: None,
            revoked_at: None,
            expires_at: None,
        })
        .await
        .unwrap();
    }
    s.revoke_grant("g2", 5, "test").await.unwrap();
    let ids = |v: Vec<(GrantView, String)>| {
        v.into_iter()
            .map(|(g, u)| format!("{}:{u}", g.id))
            .collect::<Vec<_>>()
    };
    let mut all = ids(s.search_grants(None, None, 10).await.unwrap());
    all.sort();
    assert_eq!(all, ["g1:ann", "g3:gone"]);
    assert_eq!(
        ids(s.search_grants(Some(&ann.id), None, 10).await.unwrap()),
        ["g1:ann"]
    );
    assert_eq!(
        ids(s
            .search_grants(Some(&ann.id), Some("x_2"), 10)
            .await
            .unwrap()),
        Vec::<String>::new()
    );
    assert_eq!(
        s.search_grants(None, Some("c1"), 10).await.unwrap().len(),
        2
    );
    assert_eq!(
        s.search_clients("X_", 10).await.unwrap().len(),
        1,
        "_ is literal"
    );
    // buckets of an hour from 0: [0,3600) [3600,7200); 9000 is past the end
    let a = s.activity(0, 3600, 2).await.unwrap();
    assert_eq!(
        a,
        [
            Activity {
                tool_calls: 5,
                sign_ins: 1
            },
            Activity {
                tool_calls: 2,
                sign_ins: 1
            },
        ]
    );
}

async fn calls_by_day_counts_allowed_and_refused_per_app(s: Database) {
    let day = 86_400;
    let row = |at, user: &str, client: &str, allowed, count| AuditRow {
        at,
        event: "tool_calls".into(),
        user_id: Some(user.into()),
        client_id: Some(client.into()),
        detail: json!({ "allowed": allowed, "count": count, "tool": "calculator" }),
    };
    s.audit_batch(&[
        row(10 * day + 5, "u", "c", true, 3),
        row(10 * day + 50, "u", "c", false, 2),
        row(11 * day, "u", "c", true, 1),
        row(10 * day, "u", "other", true, 7),
        row(10 * day, "v", "c", true, 9),
        row(9 * day, "u", "c", true, 100), // before the window
    ])
    .await
    .unwrap();
    let mut got = s.calls_by_day(Some("u"), 10 * day, 30).await.unwrap();
    got.sort_by(|a, b| (&a.client_id, a.day).cmp(&(&b.client_id, b.day)));
    let seen: Vec<_> = got
        .iter()
        .map(|d| (d.client_id.as_str(), d.day, d.allowed, d.refused))
        .collect();
    assert_eq!(seen, [("c", 0, 3, 2), ("c", 1, 1, 0), ("other", 0, 7, 0)]);
    assert_eq!(s.calls_by_day(None, 10 * day, 1).await.unwrap().len(), 3);
}

async fn groups_memberships_and_restrictions(s: Database) {
    use mcpgate_domain::model::{Group, MemberSource};
    let g = |name: &str| Group {
        name: name.into(),
        description: String::new(),
        provider: None,
        created_at: 1,
    };
    s.insert_group(&g("finance")).await.unwrap();
    s.insert_group(&g("ops")).await.unwrap();
    assert!(matches!(
        s.insert_group(&g("finance")).await,
        Err(mcpgate_domain::StoreError::Conflict(_))
    ));
    let u = user("gina");
    s.create_user(&u).await.unwrap();
    assert!(
        s.add_member("finance", &u.id, MemberSource::Manual, 1)
            .await
            .unwrap()
    );
    assert!(
        s.add_member("finance", &u.id, MemberSource::Provider, 1)
            .await
            .unwrap()
    );
    assert!(
        !s.add_member("finance", &u.id, MemberSource::Manual, 2)
            .await
            .unwrap()
    );
    assert_eq!(
        s.groups_of(&u.id).await.unwrap(),
        ["finance"],
        "each group once"
    );
    assert_eq!(s.members("finance").await.unwrap().len(), 2);
    s.set_scope_groups("op:div", &["finance".into(), "ops".into()])
        .await
        .unwrap();
    s.set_scope_groups("op:div", &["finance".into()])
        .await
        .unwrap();
    assert_eq!(
        s.scope_groups().await.unwrap(),
        [("op:div".to_owned(), "finance".to_owned())],
        "replaced, not added"
    );
    assert!(
        s.remove_member("finance", &u.id, MemberSource::Provider)
            .await
            .unwrap()
    );
    assert_eq!(
        s.groups_of(&u.id).await.unwrap(),
        ["finance"],
        "the manual one stays"
    );
    assert_eq!(
        s.delete_group("finance").await.unwrap(),
        Some(vec![u.id.clone()])
    );
    assert!(
        s.scope_groups().await.unwrap().is_empty(),
        "its restrictions go with it"
    );
    assert!(s.groups_of(&u.id).await.unwrap().is_empty());
    assert_eq!(s.delete_group("finance").await.unwrap(), None);
}

/// Grant `g` of user `u` to client `c` for resource `r`, with no end.
fn grant_g(scope: &mcpgate_core::ScopeSet) -> mcpgate_domain::model::Grant {
    mcpgate_domain::model::Grant {
        id: "g".into(),
        user_id: "u".into(),
        client_id: "c".into(),
        resource: "r".into(),
        scope: scope.clone(),
        withheld: mcpgate_core::ScopeSet::new(),
        created_at: 0,
        last_used_at: None,
        revoked_at: None,
        expires_at: None,
    }
}

/// A family `id` of grant `g`, ending at 1000.
fn family_of_g(id: &str, scope: &mcpgate_core::ScopeSet) -> mcpgate_domain::model::TokenFamily {
    mcpgate_domain::model::TokenFamily {
        id: id.into(),
        grant_id: "g".into(),
        client_id: "c".into(),
        user_id: "u".into(),
        scope: scope.clone(),
        resource: "r".into(),
        created_at: 0,
        expires_at: 1000,
        revoked_at: None,
        revoked_reason: None,
        dpop_jkt: None,
    }
}

async fn a_grants_end_caps_its_tokens_and_ends_it(s: Database) {
    use mcpgate_core::ScopeSet;
    use mcpgate_domain::model::RefreshToken;
    let scope = ScopeSet::parse("op:add").unwrap();
    s.insert_grant(&grant_g(&scope)).await.unwrap();
    s.insert_family(&family_of_g("f", &scope)).await.unwrap();
    s.insert_refresh(&RefreshToken {
        token_hash: "t".into(),
        family_id: "f".into(),
        created_at: 0,
        expires_at: 1000,
        rotated_at: None,
        grace_answer: None,
        grace_until: None,
    })
    .await
    .unwrap();
    s.update_grant("g", &scope, &ScopeSet::new(), Some(100))
        .await
        .unwrap();
    assert_eq!(s.family("f").await.unwrap().unwrap().expires_at, 100);
    assert_eq!(s.refresh("t").await.unwrap().unwrap().expires_at, 100);
    // Housekeeping after the end: the grant and its family are ended.
    s.delete_expired(101, 0).await.unwrap();
    assert!(s.grant("g").await.unwrap().unwrap().revoked_at.is_some());
    assert!(s.family("f").await.unwrap().unwrap().revoked_at.is_some());
}

/// The token endpoint computes a family's end from the grant it read; a consent that
/// shortened the grant before the exchange wrote still caps the family, its first
/// refresh token and the end reported back (for the first access token). The
/// exchange marks the grant used in the same step.
async fn a_code_exchanged_after_its_grant_was_shortened_gets_its_end(s: Database) {
    use mcpgate_core::ScopeSet;
    use mcpgate_domain::model::Exchange;
    let scope = ScopeSet::parse("op:add").unwrap();
    s.insert_grant(&grant_g(&scope)).await.unwrap();
    let family = |id: &str| family_of_g(id, &scope);
    let first = |hash: &str, family: &str| RefreshToken {
        token_hash: hash.into(),
        family_id: family.into(),
        ..t0()
    };
    let exchange = async |n: &str| {
        s.insert_code(&code(&format!("k{n}"))).await.unwrap();
        let f = format!("f{n}");
        let answer = s
            .redeem_code_into_family(
                &format!("k{n}"),
                50,
                &family(&f),
                &first(&format!("t{n}"), &f),
            )
            .await
            .unwrap();
        (answer, s.family(&f).await.unwrap().unwrap().expires_at)
    };
    // A grant with no end: the family keeps its own.
    assert_eq!(exchange("1").await, (Exchange::Issued { ends: 1000 }, 1000));
    let used = s.grant("g").await.unwrap().unwrap().last_used_at;
    assert_eq!(used, Some(50), "the exchange marked the grant used");
    // The grant now ends at 100; the caller still thinks 1000.
    s.update_grant("g", &scope, &ScopeSet::new(), Some(100))
        .await
        .unwrap();
    assert_eq!(exchange("2").await, (Exchange::Issued { ends: 100 }, 100));
    assert_eq!(s.refresh("t2").await.unwrap().unwrap().expires_at, 100);
}

/// A person's upstream token is sealed at rest like a signing key: a process without
/// the key-encryption key cannot read it, one with the key reads it back, and it is
/// gone once disconnected.
#[tokio::test]
async fn connected_account_tokens_are_sealed_at_rest() {
    use mcpgate_core::sealed::{Sealer, WrappingKey};
    let dir = std::env::temp_dir().join(format!("mcpgate-store-{}", random_id()));
    let sealer = || Sealer::new(WrappingKey::from_bytes(&[7u8; 32]), vec![]);
    let sealed = Database::open_dir(&dir)
        .await
        .unwrap()
        .with_sealer(sealer());
    sealed
        .put_connection("u1", "files", "adas-upstream-token", 1)
        .await
        .unwrap();
    assert_eq!(
        sealed
            .connection("u1", "files")
            .await
            .unwrap()
            .map(|c| c.secret)
            .as_deref(),
        Some("adas-upstream-token")
    );
    let keyless = Database::open_dir(&dir).await.unwrap();
    assert!(
        keyless.connection("u1", "files").await.is_err(),
        "a process without the key reads no token"
    );
    assert_eq!(sealed.connections_of("u1").await.unwrap().len(), 1);
    assert!(sealed.delete_connection("u1", "files").await.unwrap());
    assert!(sealed.connection("u1", "files").await.unwrap().is_none());
}

/// Codes of one grant exchanged at once (a client opening several sessions) all get
/// their tokens: each exchange locks the grant once, to read its end and mark it used,
/// so two of them never wait on each other (on PostgreSQL a shared lock taken to read
/// and then upgraded to write deadlocked them).
async fn codes_of_one_grant_exchanged_at_once_all_succeed(s: Database) {
    use mcpgate_core::ScopeSet;
    use mcpgate_domain::model::Exchange;
    let scope = ScopeSet::parse("op:add").unwrap();
    s.insert_grant(&grant_g(&scope)).await.unwrap();
    let s = Arc::new(s);
    let mut tasks = Vec::new();
    for n in 0..16 {
        let s = s.clone();
        let scope = scope.clone();
        tasks.push(tokio::spawn(async move {
            s.insert_code(&code(&format!("c{n}"))).await.unwrap();
            let f = format!("f{n}");
            let first = RefreshToken {
                token_hash: format!("t{n}"),
                family_id: f.clone(),
                ..t0()
            };
            s.redeem_code_into_family(&format!("c{n}"), 50, &family_of_g(&f, &scope), &first)
                .await
        }));
    }
    for t in tasks {
        let got = t.await.unwrap();
        assert!(matches!(got, Ok(Exchange::Issued { .. })), "{got:?}");
    }
    assert_eq!(s.grant("g").await.unwrap().unwrap().last_used_at, Some(50));
}
