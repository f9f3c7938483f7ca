//! Changes made by another process (the `mcpgate` CLI, another instance) reach a
//! running server at once, and revocations last as long as the tokens they cover.
//! The CLI runs as the real binary against the server's data directory.

use std::time::{Duration, Instant};

use mcpgate_core::ScopeSet;
use mcpgate_core::clock::SystemClock;
use mcpgate_domain::store::prelude::*;
use mcpgate_server::{AuthServer, ServerConfig};
use mcpgate_store::Database;
use serde_json::Value;

use crate::support::*;

/// Runs `mcpgate ARGS --data-dir <the app's>` and returns its stdout.
async fn cli(app: &TestApp, args: &[&str]) -> String {
    cli_env(app, &[], args).await
}

/// Runs `mcpgate args…` on the app's data directory with `env` set.
async fn cli_env(app: &TestApp, env: &[(&str, &str)], args: &[&str]) -> String {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mcpgate"));
    cmd.args(args).arg("--data-dir").arg(&app.data_dir);
    cmd.envs(env.iter().copied());
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "mcpgate {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

async fn grant_of(app: &TestApp, client_id: &str) -> String {
    app.rules
        .store
        .grant_views(None)
        .await
        .unwrap()
        .into_iter()
        .find(|g| g.client_id == client_id)
        .expect("a live grant")
        .id
}

/// Calls `/mcp` until the token is refused; panics unless that happens within
/// `bound`. Returns how long it took, then checks it stays refused.
async fn refused_within(app: &TestApp, token: &str, since: Instant, bound: Duration) -> Duration {
    let took = loop {
        if app.calc_status(token, "add", 1.0, 2.0).await == 401 {
            break since.elapsed();
        }
        assert!(since.elapsed() < bound, "still accepted after {bound:?}");
    };
    for i in 0..20 {
        let status = app.calc_status(token, "add", 1.0, 2.0).await;
        assert_eq!(
            status, 401,
            "accepted again at call {i} after the first refusal"
        );
    }
    took
}

/// The bound for a change made by the CLI to reach the running server: measured at
/// 1–3 ms; generous for a loaded machine running debug builds. The periodic sync
/// alone (every 2 s) misses it in about half the runs.
const AT_ONCE: Duration = Duration::from_millis(1000);

fn access(t: &Value) -> &str {
    t["access_token"].as_str().unwrap()
}

#[tokio::test]
async fn cli_grant_revocation_reaches_a_running_sqlite_server_at_once() {
    let app = TestApp::spawn().await;
    let (client_id, t) = app.tokens(None).await;
    assert_eq!(app.calc_status(access(&t), "add", 1.0, 2.0).await, 200);
    let grant = grant_of(&app, &client_id).await;
    cli(&app, &["grants", "revoke", &grant]).await;
    let took = refused_within(&app, access(&t), Instant::now(), AT_ONCE).await;
    eprintln!("CLI revocation applied {took:?} after the command returned");
}

#[tokio::test]
async fn cli_user_disable_revokes_the_users_tokens_at_once() {
    let app = TestApp::spawn().await;
    let (client_id, t) = app.tokens(None).await;
    assert_eq!(app.calc_status(access(&t), "add", 1.0, 2.0).await, 200);
    cli(&app, &["user", "disable", "alice"]).await;
    refused_within(&app, access(&t), Instant::now(), AT_ONCE).await;
    let r = app
        .refresh(&client_id, t["refresh_token"].as_str().unwrap(), None)
        .await;
    assert_eq!(r.status(), 400, "the refresh token is revoked too");
}

#[tokio::test]
async fn cli_client_removal_revokes_its_tokens_at_once() {
    let app = TestApp::spawn().await;
    let (client_id, t) = app.tokens(None).await;
    assert_eq!(app.calc_status(access(&t), "add", 1.0, 2.0).await, 200);
    cli(&app, &["client", "remove", &client_id]).await;
    refused_within(&app, access(&t), Instant::now(), AT_ONCE).await;
}

#[tokio::test]
async fn retired_key_refuses_tokens_already_verified() {
    let app = TestApp::spawn().await;
    let (_, t) = app.tokens(None).await;
    // Verified once: the validator remembers it as good.
    assert_eq!(app.calc_status(access(&t), "add", 1.0, 2.0).await, 200);
    let old = app.rules.keys.current_kid();
    cli(&app, &["keys", "rotate"]).await;
    cli(&app, &["keys", "retire", &old]).await;
    refused_within(&app, access(&t), Instant::now(), AT_ONCE).await;
    assert!(!app.rules.keys.kids().contains(&old));
    let (_, fresh) = app.tokens(None).await;
    assert_eq!(app.calc_status(access(&fresh), "add", 1.0, 2.0).await, 200);
    // The key that signs cannot be retired; the list says which one it is.
    let current = app.rules.keys.current_kid();
    let list = cli(&app, &["keys", "list"]).await;
    let signing: Vec<&str> = list.lines().filter(|l| l.ends_with("\tsigning")).collect();
    assert_eq!(signing.len(), 1, "{list}");
    assert!(signing[0].starts_with(&current), "{list}");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mcpgate"));
    cmd.args(["keys", "retire", &current, "--data-dir"])
        .arg(&app.data_dir);
    let out = cmd.output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is the signing key"), "{err}");
}

/// A revocation made by a process that assumes the default token lifetime (the CLI)
/// still covers the tokens of a server configured with a longer one.
#[tokio::test]
async fn cli_revocation_lasts_as_long_as_the_servers_tokens() {
    let app = TestApp::spawn_with(|c| c.rules.access_ttl_secs = 7200).await;
    let (client_id, t) = app.tokens(None).await;
    let grant = grant_of(&app, &client_id).await;
    cli(&app, &["grants", "revoke", &grant]).await;
    refused_within(&app, access(&t), Instant::now(), Duration::from_secs(3)).await;
    // Twenty minutes on: past what the CLI's default lifetime (15 min) covers, well
    // within the two hours this server's tokens live.
    let later = app.rules.now() + 1200;
    app.rules.revoked.prune(later);
    assert_eq!(app.calc_status(access(&t), "add", 1.0, 2.0).await, 401);
    // And the stored row outlives the housekeeping, for servers that start later.
    app.rules
        .store
        .delete_expired(later, app.auth.cfg.rules.revocation_cover())
        .await
        .unwrap();
    let rows = app.rules.store.revocations_since(0).await.unwrap();
    assert!(rows.iter().any(|r| r.handle == grant), "{rows:?}");
}

/// The administration commands read the settings `serve` reads (here the access-token
/// lifetime, from the environment), so the revocation they store covers that lifetime
/// itself, not a default's. They need none of the serving process's secrets: an
/// identity provider whose secret is not in the operator's shell is no obstacle.
#[tokio::test]
async fn cli_acts_with_the_settings_serve_resolves() {
    let app = TestApp::spawn_with(|c| c.rules.access_ttl_secs = 7200).await;
    let (client_id, _) = app.tokens(None).await;
    let grant = grant_of(&app, &client_id).await;
    let config = app.data_dir.join("with-a-provider.toml");
    std::fs::write(
        &config,
        "[[idp]]\nname = \"corp\"\npreset = \"github\"\nclient_id = \"cid\"\n\
         client_secret_env = \"MCPGATE_TEST_SECRET_NOT_SET\"\n",
    )
    .unwrap();
    let env = [("MCPGATE_ACCESS_TOKEN_TTL", "7200")];
    let config = config.to_str().unwrap();
    cli_env(
        &app,
        &env,
        &["--config", config, "grants", "revoke", &grant],
    )
    .await;
    let rows = app.rules.store.revocations_since(0).await.unwrap();
    let row = rows.iter().find(|r| r.handle == grant).expect("stored");
    assert!(row.until >= row.created_at + 7200, "{row:?}");
}

#[tokio::test]
async fn readiness_reports_database_keys_and_notifications() {
    let app = TestApp::spawn().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = app.http.get(app.url("/readyz")).send().await.unwrap();
        let status = r.status();
        let body = body_json(r).await;
        if status == 200 {
            assert_eq!(
                body,
                serde_json::json!({"database": "ok", "keys": "loaded", "notifications": "connected"})
            );
            break;
        }
        assert!(Instant::now() < deadline, "{status} {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// PostgreSQL hands out sequence numbers before commit: a revocation that commits
/// after one with a higher number must still be applied by the poll.
#[tokio::test]
async fn revocations_committed_out_of_order_are_not_missed() {
    let Some(admin_url) = crate::support::pg_admin_url() else {
        return;
    };
    install_crypto();
    let name = format!("mcpgate_it_{}", std::process::id()) + &nanos();
    let admin = sqlx::PgPool::connect(&admin_url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .unwrap();
    let url = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);
    let store = Database::open(&url).await.unwrap();
    let cfg = ServerConfig::new(
        "http://127.0.0.1:1",
        "http://127.0.0.1:1/mcp",
        ScopeSet::new(),
    );
    let auth = AuthServer::start(
        std::sync::Arc::new(store.clone()),
        cfg,
        std::sync::Arc::new(SystemClock),
        std::sync::Arc::new(mcpgate_server::documents::Fetcher::default()),
    )
    .await
    .unwrap();
    let raw = sqlx::PgPool::connect(&url).await.unwrap();
    let now = auth.auth.now();
    let mut slow = raw.begin().await.unwrap();
    sqlx::query("INSERT INTO revocations (handle, until_at, created_at) VALUES ('late', $1, $2)")
        .bind(now + 900)
        .bind(now)
        .execute(&mut *slow)
        .await
        .unwrap();
    store
        .insert_revocation("early", now + 900, now)
        .await
        .unwrap();
    auth.sync().await.unwrap();
    assert!(auth.auth.revoked.is_revoked("early"));
    slow.commit().await.unwrap();
    auth.sync().await.unwrap();
    assert!(
        auth.auth.revoked.is_revoked("late"),
        "the revocation with the lower sequence number, committed last, was missed"
    );
}

/// The claims of a JWT, unverified (the test's own tokens).
fn claims_of(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Waits until `/readyz` says notifications are connected.
async fn listening(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = app.http.get(app.url("/readyz")).send().await.unwrap();
        let body = body_json(r).await;
        if body["notifications"] == "connected" {
            return;
        }
        assert!(Instant::now() < deadline, "never listening: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Any role that can connect may `NOTIFY` any channel. A forged notification naming
/// the signing key, a token family or a jti (here sent with plain SQL from another
/// connection) revokes nothing: notifications are hints to read the revocation
/// table, never orders. A real revocation, made by another process through the
/// store, still reaches the server at once.
#[tokio::test]
async fn forged_notifications_revoke_nothing_and_real_revocations_still_arrive_at_once() {
    let Some(url) = pg_database().await else {
        return;
    };
    let app = TestApp::spawn_configured(
        temp_dir(),
        |_| {},
        |c| {
            c.database_url = Some(url.clone());
        },
    )
    .await;
    listening(&app).await;
    let (_, t) = app.tokens(None).await;
    let (_, other) = app.tokens(None).await;
    for token in [access(&t), access(&other)] {
        assert_eq!(app.calc_status(token, "add", 1.0, 2.0).await, 200);
    }
    let claims = claims_of(access(&t));
    let kid = app.rules.keys.current_kid();
    let stranger = sqlx::PgPool::connect(&url).await.unwrap();
    for handle in [
        mcpgate_core::jwt::key_handle(&kid),
        claims["sid"].as_str().unwrap().to_owned(),
        claims["jti"].as_str().unwrap().to_owned(),
    ] {
        sqlx::query("SELECT pg_notify('mcpgate_changes', $1)")
            .bind(format!("r 0 99999999999 {handle}"))
            .execute(&stranger)
            .await
            .unwrap();
    }
    for junk in ["k", "c", "x", ""] {
        sqlx::query("SELECT pg_notify('mcpgate_changes', $1)")
            .bind(junk)
            .execute(&stranger)
            .await
            .unwrap();
    }
    // A real revocation of the other token, by another process: notifications arrive
    // in commit order, so once it is applied the forged ones have been read too.
    let elsewhere = Database::open(&url).await.unwrap();
    let now = app.rules.now();
    let other_family = claims_of(access(&other))["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    elsewhere
        .insert_revocation(&other_family, now + 900, now)
        .await
        .unwrap();
    refused_within(&app, access(&other), Instant::now(), AT_ONCE).await;
    assert_eq!(
        app.calc_status(access(&t), "add", 1.0, 2.0).await,
        200,
        "a forged notification revoked a valid token"
    );
    let (_, fresh) = app.tokens(None).await;
    assert_eq!(app.calc_status(access(&fresh), "add", 1.0, 2.0).await, 200);
    assert!(
        !app.rules
            .revoked
            .is_revoked(&mcpgate_core::jwt::key_handle(&kid))
    );
    let r = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// `/readyz` reuses one ping for a second, yet still says the database is gone
/// within that second and the ping's timeout once it goes away.
#[tokio::test]
async fn readiness_turns_503_promptly_when_the_database_goes_away() {
    let Some(url) = pg_database().await else {
        return;
    };
    let app = TestApp::spawn_configured(
        temp_dir(),
        |_| {},
        |c| {
            c.database_url = Some(url.clone());
        },
    )
    .await;
    listening(&app).await;
    let name = url.rsplit_once('/').unwrap().1.to_owned();
    let admin = sqlx::PgPool::connect(&std::env::var("TEST_DATABASE_URL").unwrap())
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE {name} ALLOW_CONNECTIONS false"
    )))
    .execute(&admin)
    .await
    .unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(&name)
        .execute(&admin)
        .await
        .unwrap();
    let gone = Instant::now();
    loop {
        let r = app.http.get(app.url("/readyz")).send().await.unwrap();
        let status = r.status();
        let body = body_json(r).await;
        if body["database"] == "unreachable" {
            assert_eq!(status, 503, "{body}");
            break;
        }
        assert!(
            gone.elapsed() < Duration::from_secs(10),
            "still {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // One ping's reuse (1 s) and its timeout (2 s), with room for a loaded machine.
    assert!(
        gone.elapsed() < Duration::from_secs(6),
        "{:?}",
        gone.elapsed()
    );
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE {name} ALLOW_CONNECTIONS true"
    )))
    .execute(&admin)
    .await
    .unwrap();
}

fn nanos() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        .to_string()
}

/// Ids are base64url, so one in 64 begins with '-': the CLI reads it as an id, never as
/// an unknown flag.
#[tokio::test]
async fn ids_that_begin_with_a_hyphen_are_ids() {
    let app = TestApp::spawn().await;
    for args in [
        ["grants", "revoke", "-AbC"],
        ["client", "remove", "-AbC"],
        ["keys", "retire", "-AbC"],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcpgate"))
            .args(args)
            .arg("--data-dir")
            .arg(&app.data_dir)
            .env("RUST_BACKTRACE", "0")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(!err.contains("unexpected argument"), "{args:?}: {err}");
        assert!(
            err.contains("-AbC") || err.contains("nothing to revoke"),
            "{args:?}: {err}"
        );
    }
}
