//! What a person controls: connected apps, their own clients, and the account acts
//! (disabling a person, changing a password) that end access at once, through the one
//! function the command line and the pages call.

use mcpgate_core::secret::hash_token;
use mcpgate_server::flows::accounts::{self, AccountOutcome};

use crate::support::*;

#[tokio::test]
async fn connected_apps_lists_the_grant_and_revoking_it_ends_access() {
    let app = TestApp::spawn().await;
    let (_, tok) = app.tokens(None).await;
    let access = tok["access_token"].as_str().unwrap();
    let mut b = Browser::new(&app);
    b.login("alice", PASSWORD).await;
    let html = b.get("/apps").await.text().await.unwrap();
    assert!(html.contains("Test client"));
    let grant = crate::support::hidden(&html, "grant");
    let csrf = Browser::csrf_of(&html);
    let r = b
        .post("/apps/revoke", &[("csrf", &csrf), ("grant", &grant)])
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(app.calc_status(access, "add", 1.0, 1.0).await, 401);
    let html = b.get("/apps").await.text().await.unwrap();
    assert!(html.contains("No application has access"));
    // and the refresh token is dead too
    let r = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tok["refresh_token"].as_str().unwrap()),
            ("client_id", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn deleting_a_client_on_my_clients_page_ends_its_tokens() {
    let app = TestApp::spawn().await;
    let mut b = Browser::new(&app);
    b.login("alice", PASSWORD).await;
    let html = b.get("/clients").await.text().await.unwrap();
    let csrf = Browser::csrf_of(&html);
    let r = b
        .post(
            "/clients",
            &[
                ("csrf", &csrf),
                ("name", "Mine"),
                ("redirect_uris", REDIRECT),
                ("kind", "public"),
            ],
        )
        .await;
    let html = r.text().await.unwrap();
    let client_id = html
        .split("id=\"new-client-id\" class=\"secret\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .trim()
        .to_owned();
    let tok = app.tokens_for(&client_id, None).await;
    let access = tok["access_token"].as_str().unwrap();
    assert_eq!(app.calc_status(access, "add", 1.0, 1.0).await, 200);
    // another person cannot delete it
    app.add_user("mallory", PASSWORD).await;
    let mut m = Browser::new(&app);
    m.login("mallory", PASSWORD).await;
    let mcsrf = Browser::csrf_of(&m.get("/clients").await.text().await.unwrap());
    m.post(
        "/clients/delete",
        &[("csrf", &mcsrf), ("client_id", &client_id)],
    )
    .await;
    assert_eq!(app.calc_status(access, "add", 1.0, 1.0).await, 200);
    // the owner can, and its tokens end at once
    let r = b
        .post(
            "/clients/delete",
            &[("csrf", &csrf), ("client_id", &client_id)],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(app.calc_status(access, "add", 1.0, 1.0).await, 401);
    assert!(app.rules.store.client(&client_id).await.unwrap().is_none());
}

async fn signed_in(b: &mut Browser<'_>) -> bool {
    b.get("/apps").await.status() == 200
}

#[tokio::test]
async fn disabling_a_user_ends_grants_tokens_and_sessions_at_once() {
    let app = TestApp::spawn().await;
    let (client_id, tok) = app.tokens(None).await;
    let access = tok["access_token"].as_str().unwrap();
    let mut b = Browser::new(&app);
    b.login("alice", PASSWORD).await;
    assert!(signed_in(&mut b).await);
    assert_eq!(
        accounts::disable_user(&app.rules, "alice", &mcpgate_domain::Actor::Operator)
            .await
            .unwrap(),
        AccountOutcome::Done
    );
    assert_eq!(app.calc_status(access, "add", 1.0, 1.0).await, 401);
    let (s, e) = token_error(
        app.refresh(&client_id, tok["refresh_token"].as_str().unwrap(), None)
            .await,
    )
    .await;
    assert_eq!((s, e.as_str()), (400, "invalid_grant"));
    // re-enabling brings nothing back: the session and the grant are gone
    accounts::enable_user(&app.rules, "alice", &mcpgate_domain::Actor::Operator)
        .await
        .unwrap();
    assert!(!signed_in(&mut b).await, "the session ended");
    let (_, e) = token_error(
        app.refresh(&client_id, tok["refresh_token"].as_str().unwrap(), None)
            .await,
    )
    .await;
    assert_eq!(e, "invalid_grant");
    assert_eq!(
        accounts::disable_user(&app.rules, "nobody", &mcpgate_domain::Actor::Operator)
            .await
            .unwrap(),
        AccountOutcome::NoSuchUser
    );
}

/// Whatever disabled the account (another instance, a direct database edit), the token
/// endpoint refuses the person's codes and refresh tokens.
#[tokio::test]
async fn token_endpoint_refuses_a_disabled_user() {
    let app = TestApp::spawn().await;
    let (client_id, tok) = app.tokens(None).await;
    let client = client_id.clone();
    let v = crate::support::pkce_verifier();
    let code = app
        .code_for(&client, &mcpgate_core::pkce::challenge_of(&v), None, None)
        .await;
    app.rules
        .store
        .set_user_disabled("alice", true)
        .await
        .unwrap();
    let (_, e) = token_error(
        app.refresh(&client_id, tok["refresh_token"].as_str().unwrap(), None)
            .await,
    )
    .await;
    assert_eq!(e, "invalid_grant");
    let (_, e) = token_error(app.exchange(&client_id, &code, &v).await).await;
    assert_eq!(e, "invalid_grant");
}

#[tokio::test]
async fn changing_a_password_keeps_only_the_session_that_made_it() {
    let app = TestApp::spawn().await;
    let (client_id, tok) = app.tokens(None).await;
    let access = tok["access_token"].as_str().unwrap();
    let mut keeper = Browser::new(&app);
    keeper.login("alice", PASSWORD).await;
    let mut other = Browser::new(&app);
    other.login("alice", PASSWORD).await;
    assert!(signed_in(&mut keeper).await && signed_in(&mut other).await);
    let keep = hash_token(&keeper.cookies["mcpgate_session"]);
    let hash = mcpgate_server::pages::passwords::hash("a new password entirely".into()).await;
    accounts::change_password(
        &app.rules,
        "alice",
        &hash,
        Some(&keep),
        &mcpgate_domain::Actor::Person("alice".into()),
    )
    .await
    .unwrap();
    assert!(signed_in(&mut keeper).await, "the changing session stays");
    assert!(!signed_in(&mut other).await, "every other session ends");
    assert_eq!(app.calc_status(access, "add", 1.0, 1.0).await, 401);
    let (_, e) = token_error(
        app.refresh(&client_id, tok["refresh_token"].as_str().unwrap(), None)
            .await,
    )
    .await;
    assert_eq!(e, "invalid_grant");
}

/// An administrator's account is never linked to a provider by email; an operator
/// links it by hand with `mcpgate idp link`, once, for a provider that exists, to an
/// account that exists.
#[tokio::test]
async fn an_operator_links_a_provider_identity_by_hand() {
    let app = TestApp::spawn().await;
    std::fs::write(
        app.data_dir.join("idp.toml"),
        "[[idp]]\nname = \"gh\"\npreset = \"github\"\nclient_id = \"cid\"\n\
         client_secret_env = \"MCPGATE_TEST_SECRET_NOT_SET\"\n",
    )
    .unwrap();
    let config = app.data_dir.join("idp.toml");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_mcpgate"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .arg("--data-dir")
            .arg(&app.data_dir)
            .output()
            .unwrap()
    };
    let link = ["idp", "link", "gh", "--subject", "12345", "--user", "alice"];
    let out = run(&link);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let linked = app.rules.store.user_identity("gh", "12345").await.unwrap();
    let alice = app
        .rules
        .store
        .user_by_name("alice")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(linked.unwrap().user_id, alice.id);
    for (args, err) in [
        (link.to_vec(), "linked to an account already"),
        (
            vec!["idp", "link", "nope", "--subject", "1", "--user", "alice"],
            "no identity provider named nope",
        ),
        (
            vec!["idp", "link", "gh", "--subject", "1", "--user", "nobody"],
            "no user nobody",
        ),
    ] {
        let out = run(&args);
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(err), "{args:?}: {stderr}");
    }
}
