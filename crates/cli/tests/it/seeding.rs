//! First-run seeding does not depend on the order of commands.

use crate::support::{TestApp, mcpgate_in, temp_dir};

fn mcpgate(dir: &std::path::Path, args: &[&str]) {
    mcpgate_in(dir, args, &[]);
}

/// `clients allowed add` (or `disable`) before the first `serve` gives the same list as
/// the same command after it: presets enabled, the operator's edits kept.
#[tokio::test]
async fn configuring_before_the_first_start_keeps_the_presets_and_the_edits() {
    let uri = "https://agent.example/callback";
    let before = temp_dir();
    mcpgate(&before, &["clients", "allowed", "add", uri]);
    mcpgate(&before, &["clients", "allowed", "disable", "cursor"]);
    let a = TestApp::spawn_in(before, |_| {}).await;
    let after = temp_dir();
    let b = TestApp::spawn_in(after.clone(), |_| {}).await;
    mcpgate(&after, &["clients", "allowed", "add", uri]);
    mcpgate(&after, &["clients", "allowed", "disable", "cursor"]);
    let mut list_a = a.rules.store.allowed_redirects().await.unwrap();
    let mut list_b = b.rules.store.allowed_redirects().await.unwrap();
    list_a.sort();
    list_b.sort();
    assert!(list_a.contains(&"preset:claude".to_owned()), "{list_a:?}");
    assert!(list_a.contains(&uri.to_owned()));
    assert!(!list_a.contains(&"preset:cursor".to_owned()));
    assert_eq!(list_a, list_b);
}

/// An operator's first command may be `client add` with a known client's redirect
/// URI: the presets are there for it as they are for `serve`. Enabling a preset that
/// is already enabled changes nothing and records nothing.
#[tokio::test]
async fn the_first_command_sees_the_presets_and_repeats_change_nothing() {
    let dir = temp_dir();
    mcpgate(
        &dir,
        &[
            "client",
            "add",
            "--name",
            "Cursor for the team",
            "--redirect-uri",
            "cursor://anysphere.cursor-mcp/oauth/callback",
        ],
    );
    mcpgate(&dir, &["clients", "allowed", "enable", "cursor"]);
    let app = TestApp::spawn_in(dir, |_| {}).await;
    let filter = mcpgate_domain::model::AuditFilter {
        event: Some("redirect_allowed".into()),
        ..Default::default()
    };
    let events = app.rules.store.search_audit(&filter, 1000).await.unwrap();
    let cursor_enabled = events
        .iter()
        .filter(|e| e.detail.contains("\"preset\":\"cursor\""))
        .count();
    assert_eq!(
        cursor_enabled, 1,
        "seeded once, the repeat recorded nothing"
    );
}

/// What the command line and the first start change is audited as the operator's, like
/// the pages' acts: the first administrator, an identity provider added and removed, a
/// key rotated.
#[tokio::test]
async fn the_operators_acts_and_the_first_run_are_in_the_audit() {
    let dir = temp_dir();
    mcpgate(&dir, &["keys", "rotate"]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcpgate"))
        .arg("--data-dir")
        .arg(&dir)
        .args([
            "idp",
            "add",
            "corp",
            "--issuer",
            "http://127.0.0.1:9/",
            "--client-id",
            "mcpgate",
        ])
        .env("MCPGATE_IDP_CLIENT_SECRET", "a-client-secret")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    mcpgate(&dir, &["idp", "remove", "corp"]);
    let app = TestApp::spawn_in(dir, |_| {}).await;
    let events = app
        .rules
        .store
        .search_audit(&Default::default(), 1000)
        .await
        .unwrap();
    for (event, needle) in [
        ("key_rotated", "\"by\":\"operator\""),
        ("idp_added", "\"provider\":\"corp\""),
        ("idp_removed", "\"by\":\"operator\""),
        ("user_created", "\"admin\":true"),
    ] {
        assert!(
            events
                .iter()
                .any(|e| e.event == event && e.detail.contains(needle)),
            "{event} with {needle}: {:?}",
            events.iter().map(|e| &e.event).collect::<Vec<_>>()
        );
    }
}
