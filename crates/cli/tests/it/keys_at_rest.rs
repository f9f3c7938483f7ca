//! Signing keys and identity-provider secrets are sealed at rest under a key that is
//! not in the database: the database alone yields no private key material, an
//! existing database with clear keys is sealed on first start, and a wrong
//! key-encryption key is a clear startup error.

use std::path::Path;
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcpgate_domain::model::IdentityProviderRow;
use mcpgate_domain::store::prelude::*;
use mcpgate_store::Database;

use crate::support::{TestApp, body_json, temp_dir};

/// Every byte SQLite holds for the database: the file and its write-ahead log.
async fn database_bytes(app: &TestApp) -> Vec<u8> {
    app.rules.store.checkpoint().await.unwrap();
    let mut bytes = std::fs::read(app.data_dir.join("mcpgate.db")).unwrap();
    if let Ok(wal) = std::fs::read(app.data_dir.join("mcpgate.db-wal")) {
        bytes.extend(wal);
    }
    bytes
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn kid_of(jwt: &str) -> String {
    let header = URL_SAFE_NO_PAD
        .decode(jwt.split('.').next().unwrap())
        .unwrap();
    serde_json::from_slice::<serde_json::Value>(&header).unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_database_alone_holds_no_private_key_material() {
    let app = TestApp::spawn().await;
    let (_, tokens) = app.tokens(None).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        app.calc_status(access, "add", 1.0, 2.0).await,
        200,
        "signs and validates"
    );
    mcpgate_server::flows::keys::rotate(&app.rules, &mcpgate_domain::Actor::Operator)
        .await
        .unwrap();

    let bytes = database_bytes(&app).await;
    let seeds = app.rules.store.signing_keys().await.unwrap();
    assert_eq!(seeds.len(), 2);
    for k in &seeds {
        let (kid, raw) = (&k.kid, k.seed);
        let seed = URL_SAFE_NO_PAD.encode(raw);
        assert!(!contains(&bytes, seed.as_bytes()), "seed of {kid} in clear");
        assert!(!contains(&bytes, &raw), "raw seed of {kid}");
    }
    assert!(contains(&bytes, b"sealed:v1:"));

    // the database without the key-encryption key: the seeds do not open
    let alone = Database::open_dir(&app.data_dir).await.unwrap();
    let err = alone.signing_keys().await.unwrap_err().to_string();
    assert!(err.contains("not configured"), "{err}");
    assert!(app.data_dir.join("key-encryption.key").exists());
}

#[tokio::test]
async fn clear_secrets_of_an_existing_database_are_sealed_on_first_start() {
    let dir = temp_dir();
    let seed = URL_SAFE_NO_PAD.encode([7u8; 32]);
    {
        // a database written before sealing existed
        let old = Database::open_dir(&dir).await.unwrap();
        old.insert_signing_key(&mcpgate_core::jwt::StoredKey {
            kid: "legacy".into(),
            seed: [7u8; 32],
            created_at: 1,
        })
        .await
        .unwrap();
        old.upsert_identity_provider(&IdentityProviderRow {
            name: "corp".into(),
            display_name: "Corp".into(),
            kind: "github".into(),
            issuer: "https://github.com".into(),
            client_id: "cid".into(),
            client_secret: "provider-secret-in-clear".into(),
            allowed_domains: "[]".into(),
            auto_create: false,
            groups_claim: None,
            groups_scope: None,
            created_at: 1,
        })
        .await
        .unwrap();
    }
    let app = TestApp::spawn_in(dir, |_| {}).await;
    let bytes = database_bytes(&app).await;
    assert!(
        !contains(&bytes, seed.as_bytes()),
        "the old seed was sealed"
    );
    assert!(!contains(&bytes, b"provider-secret-in-clear"));
    // and still serves: the old key signs, and the provider secret opens
    let (_, tokens) = app.tokens(None).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(kid_of(access), "legacy");
    assert_eq!(app.calc_status(access, "add", 1.0, 2.0).await, 200);
    let idps = app.rules.store.identity_providers().await.unwrap();
    assert_eq!(idps[0].client_secret, "provider-secret-in-clear");
    // that start recorded the database as sealed; the next start opens it as well
    assert!(app.database.is_sealed_at_rest().await.unwrap());
    let out = mcpgate(&app.data_dir, &[], &["keys", "list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("legacy"));
}

/// The kids the server publishes.
async fn published_kids(app: &TestApp) -> Vec<String> {
    let m = body_json(app.http.get(app.as_metadata_url()).send().await.unwrap()).await;
    let jwks = body_json(
        app.http
            .get(m["jwks_uri"].as_str().unwrap())
            .send()
            .await
            .unwrap(),
    )
    .await;
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// Once a database is sealed, a secret written in clear (by someone who can write
/// the database but not read the key-encryption key) is refused: a planted signing
/// key, newer than the real one, never signs a token and is never published, the
/// running server keeps its keys, and a restart is a clear error naming the row.
#[tokio::test]
async fn a_clear_key_planted_in_a_sealed_database_is_refused() {
    let app = TestApp::spawn().await;
    let (_, tokens) = app.tokens(None).await;
    let real = kid_of(tokens["access_token"].as_str().unwrap());
    {
        // a process without the key-encryption key cannot write secrets in clear ...
        let writer = Database::open_dir(&app.data_dir).await.unwrap();
        let err = writer
            .insert_signing_key(&mcpgate_core::jwt::StoredKey {
                kid: "written".into(),
                seed: [9u8; 32],
                created_at: app.rules.now() + 60,
            })
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("signing_key:written cannot be written"),
            "{err}"
        );
        let err = writer
            .upsert_identity_provider(&IdentityProviderRow {
                name: "written-idp".into(),
                display_name: "Written".into(),
                kind: "github".into(),
                issuer: "https://github.com".into(),
                client_id: "cid".into(),
                client_secret: "secret-in-clear".into(),
                allowed_domains: "[]".into(),
                auto_create: false,
                groups_claim: None,
                groups_scope: None,
                created_at: 1,
            })
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("identity_provider:written-idp"), "{err}");
        // ... so someone who can write the database plants them
        let db = sqlx::SqlitePool::connect(&format!(
            "sqlite://{}",
            app.data_dir.join("mcpgate.db").display()
        ))
        .await
        .unwrap();
        sqlx::query("INSERT INTO signing_keys (kid, seed, created_at) VALUES ('planted', $1, $2)")
            .bind(URL_SAFE_NO_PAD.encode([9u8; 32]))
            .bind(app.rules.now() + 60)
            .execute(&db)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO identity_providers (name, display_name, kind, issuer, client_id, \
             client_secret, allowed_domains, auto_create, created_at) \
             VALUES ('planted-idp', 'Planted', 'github', 'https://github.com', 'cid', \
             'planted-secret', '[]', false, 1)",
        )
        .execute(&db)
        .await
        .unwrap();
        db.close().await;
    }
    // the running server reloads its keys: the planted one is refused
    let err = app.auth.sync_keys().await.unwrap_err().to_string();
    assert!(
        err.contains("signing_key:planted") && err.contains("stored in clear"),
        "{err}"
    );
    let err = app
        .rules
        .store
        .identity_providers()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("identity_provider:planted-idp"), "{err}");
    let (_, tokens) = app.tokens(None).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(kid_of(access), real, "the planted key signed");
    assert_eq!(app.calc_status(access, "add", 1.0, 2.0).await, 200);
    assert_eq!(published_kids(&app).await, vec![real.clone()]);
    // a restart (as a command, or `serve`) refuses the database, naming the row
    for args in [
        &["keys", "list"][..],
        &["serve", "--listen", "127.0.0.1:0"][..],
    ] {
        let out = mcpgate(&app.data_dir, &[], args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} started with a planted key");
        assert!(err.contains("signing_key:planted"), "{args:?}: {err}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("First run"));
    }
}

fn mcpgate(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcpgate"));
    cmd.arg("--data-dir").arg(dir).args(args);
    cmd.env_remove("MCPGATE_KEY_ENCRYPTION_KEY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[tokio::test]
async fn a_wrong_key_encryption_key_is_a_clear_startup_error() {
    let dir = temp_dir();
    let ok = mcpgate(&dir, &[], &["keys", "rotate"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let key_file = dir.join("key-encryption.key");
    let wrong = "ab".repeat(32);
    for args in [
        &["keys", "list"][..],
        &["serve", "--listen", "127.0.0.1:0"][..],
    ] {
        let out = mcpgate(&dir, &[("MCPGATE_KEY_ENCRYPTION_KEY", &wrong)], args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} started with a wrong key");
        assert!(
            err.contains("not configured") && err.contains("key-encryption key"),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    // the right key, given as a file elsewhere, opens them
    let elsewhere = temp_dir().join("kek");
    std::fs::copy(&key_file, &elsewhere).unwrap();
    std::fs::remove_file(&key_file).unwrap();
    let out = mcpgate(
        &dir,
        &[],
        &[
            "--key-encryption-key-file",
            elsewhere.to_str().unwrap(),
            "keys",
            "list",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        2,
        "both keys of `keys rotate`"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Rotating the key-encryption key: started with the new key and the old one as
/// previous, every secret is sealed again under the new key, which alone opens them
/// from then on.
#[tokio::test]
async fn the_key_encryption_key_rotates() {
    let dir = temp_dir();
    let ok = mcpgate(&dir, &[], &["keys", "rotate"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let old = dir.join("key-encryption.key");
    let new = dir.join("new.key");
    std::fs::write(&new, "cd".repeat(32)).unwrap();
    let with = |args: &[&str]| {
        let mut all = vec!["--key-encryption-key-file", new.to_str().unwrap()];
        all.extend_from_slice(args);
        mcpgate(&dir, &[], &all)
    };
    assert!(
        !with(&["keys", "list"]).status.success(),
        "the new key alone opens nothing yet"
    );
    let out = with(&[
        "--previous-key-encryption-key-file",
        old.to_str().unwrap(),
        "keys",
        "list",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(&old).unwrap();
    let out = with(&["keys", "list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}
