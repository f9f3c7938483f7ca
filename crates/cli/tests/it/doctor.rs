//! The connection doctor over HTTP: the guard notes a client's first call with each
//! token and the refusals of tokens our keys signed (a token for another resource,
//! one that expired), and `mcpgate doctor --json` reports where each client stopped.

use mcpgate_core::jwt::Audience;
use mcpgate_domain::flows::doctor;
use mcpgate_domain::model::StepKind;
use serde_json::Value;

use crate::support::{TestApp, mcpgate_in};

async fn report(app: &TestApp, client: &str) -> doctor::ClientReport {
    app.rules.flush_steps().await.unwrap();
    doctor::report(&app.rules, Some(client))
        .await
        .unwrap()
        .remove(0)
}

#[tokio::test]
async fn a_complete_connection_has_not_stopped_and_a_token_for_another_resource_stops_at_call() {
    let app = TestApp::spawn().await;
    let (client_id, tokens) = app.tokens(None).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(app.calc_status(access, "add", 1.0, 2.0).await, 200);
    let r = report(&app, &client_id).await;
    let kinds: Vec<_> = r.steps.iter().map(|s| s.step).collect();
    for k in [
        StepKind::Register,
        StepKind::Authorize,
        StepKind::Consent,
        StepKind::Token,
        StepKind::Call,
    ] {
        assert!(kinds.contains(&k), "{k:?} in {kinds:?}");
    }
    assert_eq!(r.stopped_at, None, "{:?}", r.steps);
    // The same client with a token issued for another resource.
    let elsewhere = app.mint("op:add", |c| {
        c.client_id = client_id.clone();
        c.aud = Audience::One("https://other.example/mcp".into());
    });
    assert_eq!(app.calc_status(&elsewhere, "add", 1.0, 2.0).await, 401);
    // Retried: noted once.
    assert_eq!(app.calc_status(&elsewhere, "add", 1.0, 2.0).await, 401);
    let r = report(&app, &client_id).await;
    assert_eq!(r.stopped_at, Some(StepKind::Call));
    let refused: Vec<_> = r.steps.iter().filter(|s| s.ok == Some(false)).collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].detail.contains("https://other.example/mcp"),
        "the audience is named: {}",
        refused[0].detail
    );
    // A forged token (not our signature) names nobody.
    let forged = format!("{}x", &elsewhere[..elsewhere.len() - 1]);
    assert_eq!(app.calc_status(&forged, "add", 1.0, 2.0).await, 401);
    assert_eq!(report(&app, &client_id).await.steps.len(), r.steps.len());
}

#[tokio::test]
async fn mcpgate_doctor_prints_the_steps_and_where_each_client_stopped() {
    let app = TestApp::spawn().await;
    let (client_id, _) = app.tokens(None).await;
    app.rules.flush_steps().await.unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcpgate"))
        .arg("--data-dir")
        .arg(&app.data_dir)
        .args(["doctor", "--json", "--client", &client_id])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = &v["clients"][0];
    assert_eq!(c["client_id"], client_id.as_str());
    assert_eq!(c["client_name"], "Test client");
    assert_eq!(
        c["stopped_at"], "call",
        "tokens issued, never presented: {c}"
    );
    let steps: Vec<&str> = c["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps.first(), Some(&"register"));
    assert!(steps.contains(&"token"));
    for s in c["steps"].as_array().unwrap() {
        assert!(
            s["at"].is_i64() && s["ok"].is_boolean() || s["ok"].is_null(),
            "{s}"
        );
    }
    let text = mcpgate_in(&app.data_dir, &["doctor"], &[]);
    assert!(text.contains("stopped at: call"), "{text}");
}
