//! First-run seeding does not depend on the order of commands.

use crate::support::{TestApp, temp_dir};

fn mcpgate(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcpgate"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mcpgate {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
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
