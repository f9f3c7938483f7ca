//! Who may hold which scope, over HTTP: the consent page says what is not available to
//! the person, the connected-apps page what was withheld, the admin pages manage groups
//! and restrictions (audited as the administrator), and removing a member ends their
//! token at the guard. The rules themselves are the domain's (`crates/domain/tests/it/
//! groups.rs`).

use mcpgate_core::pkce;
use mcpgate_domain::Actor;
use mcpgate_domain::flows::groups;
use mcpgate_domain::model::AuditFilter;

use crate::support::{
    Browser, PASSWORD, REDIRECT, TestApp, body_json, location, pkce_verifier, query_of,
};

/// `op:div` restricted to `finance`; alice (the test person) is not in it.
async fn restricted() -> TestApp {
    let app = TestApp::spawn().await;
    let op = &Actor::Operator;
    groups::add_group(&app.rules, "finance", "", None, op)
        .await
        .unwrap();
    groups::set_scope_groups(&app.rules, "op:div", &["finance".into()], op)
        .await
        .unwrap();
    app
}

#[tokio::test]
async fn the_consent_page_says_what_is_not_available_and_the_apps_page_what_was_withheld() {
    let app = restricted().await;
    let client_id = app.register(REDIRECT).await;
    let verifier = pkce_verifier();
    let mut b = Browser::new(&app);
    b.login("alice", PASSWORD).await;
    let consent = b
        .authorize(
            &client_id,
            REDIRECT,
            &pkce::challenge_of(&verifier),
            Some("op:add op:div"),
            Some("s"),
        )
        .await;
    let html = b.get(&consent).await.text().await.unwrap();
    assert!(html.contains("Not available to you"), "{html}");
    assert!(html.contains("value=\"op:add\""));
    assert!(
        !html.contains("value=\"op:div\""),
        "op:div is not offered as a choice"
    );
    // A forged form ticking op:div gets the rest only.
    let loc = b.consent(&consent, Some(&["op:add", "op:div"])).await;
    let code = query_of(&loc)["code"].clone();
    let tokens = body_json(app.exchange(&client_id, &code, &verifier).await).await;
    assert_eq!(tokens["scope"], "op:add");
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(app.calc_status(access, "add", 1.0, 2.0).await, 200);
    assert_eq!(app.calc_status(access, "divide", 1.0, 2.0).await, 403);
    let apps = b.get("/apps").await.text().await.unwrap();
    assert!(apps.contains("Withheld, not available to you"), "{apps}");
    assert!(apps.contains("<code>op:div</code>"));
}

#[tokio::test]
async fn administrators_manage_groups_and_a_removal_ends_the_members_token_at_once() {
    let app = restricted().await;
    app.add_admin("root").await;
    let mut admin = Browser::new(&app);
    admin.login("root", PASSWORD).await;
    let page = admin.get("/admin/groups").await.text().await.unwrap();
    let csrf = Browser::csrf_of(&page);
    let post = |_: &str, form: Vec<(&'static str, String)>| {
        let mut f: Vec<(&str, String)> = vec![("csrf", csrf.clone())];
        f.extend(form);
        f
    };
    for (path, form) in [
        (
            "/admin/groups",
            post(
                "",
                vec![("name", "math".into()), ("description", "Maths".into())],
            ),
        ),
        (
            "/admin/groups/members",
            post(
                "",
                vec![
                    ("group", "finance".into()),
                    ("user", "alice".into()),
                    ("on", "yes".into()),
                ],
            ),
        ),
        (
            "/admin/scopes/groups",
            post(
                "",
                vec![
                    ("name", "op:div".into()),
                    ("groups", "finance, math".into()),
                ],
            ),
        ),
    ] {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = admin.post(path, &form).await;
        assert_eq!(r.status(), 303, "{path}");
        assert!(location(&r).ends_with(if path.contains("scopes") {
            "/admin/scopes"
        } else {
            "/admin/groups"
        }));
    }
    let page = admin.get("/admin/groups").await.text().await.unwrap();
    assert!(
        page.contains("data-group=\"math\"") && page.contains("alice"),
        "{page}"
    );
    let scopes = admin.get("/admin/scopes").await.text().await.unwrap();
    assert!(scopes.contains("value=\"finance, math\""), "{scopes}");
    // What a scope includes is declared on the same page; a cycle is refused with its
    // reason, and nothing changes.
    let r = admin
        .post(
            "/admin/scopes/includes",
            &[("csrf", &csrf), ("name", "op:mult"), ("includes", "op:add")],
        )
        .await;
    assert_eq!(r.status(), 303);
    let r = admin
        .post(
            "/admin/scopes/includes",
            &[("csrf", &csrf), ("name", "op:add"), ("includes", "op:mult")],
        )
        .await;
    assert_eq!(r.status(), 400);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("cannot include one that includes it")
    );
    let scopes = admin.get("/admin/scopes").await.text().await.unwrap();
    assert!(
        scopes.contains("name=\"includes\" maxlength=\"2000\" value=\"op:add\""),
        "{scopes}"
    );
    // alice, now a member, gets op:div.
    let (_, tokens) = app.tokens(Some(&["op:add", "op:div"])).await;
    assert_eq!(tokens["scope"], "op:add op:div");
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(app.calc_status(access, "divide", 6.0, 3.0).await, 200);
    // Removed on the page: her token is refused on the very next call.
    let r = admin
        .post(
            "/admin/groups/members",
            &[
                ("csrf", &csrf),
                ("group", "finance"),
                ("user", "alice"),
                ("on", "no"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(app.calc_status(access, "add", 1.0, 1.0).await, 401);
    // A group that alone guards a scope cannot be removed; the page says why.
    app.rules
        .store
        .set_scope_groups("op:div", &["finance".into()])
        .await
        .unwrap();
    let r = admin
        .post(
            "/admin/groups/remove",
            &[("csrf", &csrf), ("name", "finance")],
        )
        .await;
    assert_eq!(r.status(), 400);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("restricted to finance alone")
    );
    // Every act names the administrator.
    for event in [
        "group_added",
        "member_added",
        "scope_groups_set",
        "member_removed",
    ] {
        let f = AuditFilter {
            event: Some(event.into()),
            ..Default::default()
        };
        let found = app.rules.store.search_audit(&f, 50).await.unwrap();
        assert!(
            found
                .iter()
                .any(|e| e.detail.contains("\"by\":\"admin:root\"")),
            "{event}: {found:?}"
        );
    }
}
