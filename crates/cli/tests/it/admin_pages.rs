//! The admin pages: only administrators see or change anything (403 for everyone
//! else, on every page and every action), every action needs the CSRF token, each
//! act is the domain call the command line makes and is audited, and a database
//! failure is an error page, never an empty list.

use mcpgate_domain::model::AuditFilter;

use mcpgate_domain::flows::groups;

use crate::support::{Browser, PASSWORD, TestApp};

/// Every admin page.
const PAGES: &[&str] = &[
    "/admin",
    "/admin/users",
    "/admin/clients",
    "/admin/clients/show?client_id=x",
    "/admin/allowed",
    "/admin/scopes",
    "/admin/groups",
    "/admin/grants",
    "/admin/audit",
    "/admin/doctor",
];

/// Every admin action, with a form that would do something if it were allowed.
fn actions(grant: &str) -> Vec<(&'static str, Vec<(&'static str, String)>)> {
    vec![
        (
            "/admin/users",
            vec![
                ("username", "mallory".into()),
                ("password", PASSWORD.into()),
                ("admin", "yes".into()),
            ],
        ),
        ("/admin/users/disable", vec![("username", "bob".into())]),
        ("/admin/users/enable", vec![("username", "carol".into())]),
        (
            "/admin/users/password",
            vec![
                ("username", "bob".into()),
                ("password", "x-new-password-1".into()),
            ],
        ),
        (
            "/admin/clients",
            vec![("name", "Sneaky".into()), ("kind", "introspection".into())],
        ),
        (
            "/admin/clients/remove",
            vec![("client_id", "keep-me".into())],
        ),
        (
            "/admin/allowed/preset",
            vec![("preset", "claude".into()), ("on", "no".into())],
        ),
        (
            "/admin/allowed/uri",
            vec![
                ("uri", "https://evil.example/cb".into()),
                ("on", "yes".into()),
            ],
        ),
        (
            "/admin/scopes",
            vec![
                ("name", "op:add".into()),
                ("description", "hijacked".into()),
            ],
        ),
        ("/admin/grants/revoke", vec![("grant", grant.to_owned())]),
        (
            "/admin/groups",
            vec![("name", "sneaky".into()), ("description", "".into())],
        ),
        ("/admin/groups/remove", vec![("name", "keepers".into())]),
        (
            "/admin/groups/members",
            vec![
                ("group", "keepers".into()),
                ("user", "bob".into()),
                ("on", "no".into()),
            ],
        ),
        (
            "/admin/scopes/groups",
            vec![("name", "op:add".into()), ("groups", "keepers".into())],
        ),
    ]
}

/// An app with alice (a person with a grant), bob, a disabled carol, a client
/// `keep-me`, and an administrator `root`; returns alice's grant id and access token.
async fn world() -> (TestApp, String, String) {
    let app = TestApp::spawn().await;
    app.add_user("bob", PASSWORD).await;
    app.add_user("carol", PASSWORD).await;
    app.rules
        .store
        .set_user_disabled("carol", true)
        .await
        .unwrap();
    app.add_admin("root").await;
    let (_, tok) = app.tokens(None).await;
    let grant = app.rules.store.grant_views(None).await.unwrap()[0]
        .id
        .clone();
    let mut keep = app.rules.store.clients(None).await.unwrap()[0].clone();
    keep.client_id = "keep-me".into();
    keep.registration_hash = None;
    app.rules.store.insert_client(&keep).await.unwrap();
    let op = mcpgate_domain::Actor::Operator;
    groups::add_group(&app.rules, "keepers", "", None, &op)
        .await
        .unwrap();
    groups::add_member(&app.rules, "keepers", "bob", &op)
        .await
        .unwrap();
    let access = tok["access_token"].as_str().unwrap().to_owned();
    (app, grant, access)
}

/// Nothing any refused action would have done happened.
async fn nothing_changed(app: &TestApp, grant: &str, access: &str) {
    let st = &app.rules.store;
    assert!(st.user_by_name("mallory").await.unwrap().is_none());
    assert!(!st.user_by_name("bob").await.unwrap().unwrap().disabled);
    assert!(st.user_by_name("carol").await.unwrap().unwrap().disabled);
    assert!(st.client("keep-me").await.unwrap().is_some());
    assert!(
        !st.clients(None)
            .await
            .unwrap()
            .iter()
            .any(|c| c.name == "Sneaky")
    );
    let allowed = st.allowed_redirects().await.unwrap();
    assert!(allowed.contains(&"preset:claude".to_owned()));
    assert!(!allowed.contains(&"https://evil.example/cb".to_owned()));
    assert!(
        !st.scopes()
            .await
            .unwrap()
            .iter()
            .any(|(_, d)| d == "hijacked")
    );
    assert!(st.grant(grant).await.unwrap().unwrap().revoked_at.is_none());
    assert!(st.group("sneaky").await.unwrap().is_none());
    assert_eq!(st.members("keepers").await.unwrap().len(), 1, "bob stays");
    assert!(
        st.scope_groups().await.unwrap().is_empty(),
        "op:add stays open"
    );
    assert_eq!(app.calc_status(access, "add", 1.0, 2.0).await, 200);
    let mut b = Browser::new(app);
    assert_eq!(b.login("bob", PASSWORD).await.status(), 303);
    assert_eq!(
        b.get("/apps").await.status(),
        200,
        "bob's password is unchanged"
    );
}

#[tokio::test]
async fn a_person_without_the_admin_role_gets_403_on_every_admin_page_and_action() {
    let (app, grant, access) = world().await;
    let mut b = Browser::new(&app);
    b.login("alice", PASSWORD).await;
    for p in PAGES {
        let r = b.get(p).await;
        assert_eq!(r.status(), 403, "GET {p}");
        assert!(
            r.text().await.unwrap().contains("Administrators only"),
            "{p}"
        );
    }
    let apps = b.get("/apps").await.text().await.unwrap();
    assert!(!apps.contains(">Admin</a>"), "no admin link for a person");
    let csrf = Browser::csrf_of(&apps);
    for (path, form) in actions(&grant) {
        let mut form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        form.push(("csrf", &csrf));
        let r = b.post(path, &form).await;
        assert_eq!(r.status(), 403, "POST {path}");
        assert!(
            r.text().await.unwrap().contains("Administrators only"),
            "{path}"
        );
    }
    nothing_changed(&app, &grant, &access).await;
}

#[tokio::test]
async fn signed_out_pages_go_to_sign_in_and_actions_are_refused() {
    let (app, grant, access) = world().await;
    let mut b = Browser::new(&app);
    for p in PAGES {
        let r = b.get(p).await;
        assert_eq!(r.status(), 303, "GET {p}");
        assert!(
            crate::support::location(&r).contains("/login?next=/admin"),
            "{p}"
        );
    }
    // A CSRF cookie and token of its own, but no session.
    let csrf = Browser::csrf_of(&b.get("/login").await.text().await.unwrap());
    for (path, form) in actions(&grant) {
        let mut form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        form.push(("csrf", &csrf));
        assert_eq!(b.post(path, &form).await.status(), 403, "POST {path}");
    }
    nothing_changed(&app, &grant, &access).await;
}

#[tokio::test]
async fn every_admin_action_needs_the_csrf_token() {
    let (app, grant, access) = world().await;
    let mut b = Browser::new(&app);
    b.login("root", PASSWORD).await;
    assert_eq!(b.get("/admin").await.status(), 200);
    for (path, form) in actions(&grant) {
        let plain: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = b.post(path, &plain).await;
        assert_eq!(r.status(), 403, "POST {path} without a token");
        assert!(r.text().await.unwrap().contains("This form has expired"));
        let mut forged = plain.clone();
        forged.push(("csrf", "forged-token-of-another-site"));
        assert_eq!(
            b.post(path, &forged).await.status(),
            403,
            "POST {path} forged"
        );
    }
    nothing_changed(&app, &grant, &access).await;
}

#[tokio::test]
async fn admin_acts_take_effect_at_once_and_are_audited_with_who_acted() {
    let (app, grant, access) = world().await;
    let mut b = Browser::new(&app);
    b.login("root", PASSWORD).await;
    let page = b.get("/admin/users").await;
    assert_eq!(page.status(), 200);
    let csrf = Browser::csrf_of(&page.text().await.unwrap());
    let post = |path: &'static str, form: Vec<(&'static str, String)>| {
        let mut form = form;
        form.push(("csrf", csrf.clone()));
        (path, form)
    };
    // create a user, who can then sign in
    let (p, f) = post(
        "/admin/users",
        vec![("username", "dave".into()), ("password", PASSWORD.into())],
    );
    let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(b.post(p, &f).await.status(), 303);
    let mut dave = Browser::new(&app);
    dave.login("dave", PASSWORD).await;
    assert_eq!(dave.get("/apps").await.status(), 200);
    // bad input is a 400 page that says why, and changes nothing
    let r = b
        .post(
            "/admin/users",
            &[
                ("csrf", &csrf),
                ("username", "has space"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("without spaces"));
    // disabling alice stops her token at once
    let r = b
        .post(
            "/admin/users/disable",
            &[("csrf", &csrf), ("username", "alice")],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(app.calc_status(&access, "add", 1.0, 2.0).await, 401);
    assert!(
        app.rules
            .store
            .grant(&grant)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
    // a new password for dave ends his session
    let r = b
        .post(
            "/admin/users/password",
            &[
                ("csrf", &csrf),
                ("username", "dave"),
                ("password", "another-password-2"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_ne!(dave.get("/apps").await.status(), 200);
    // an administrator cannot disable themself here; their own new password keeps
    // the session that set it
    let r = b
        .post(
            "/admin/users/disable",
            &[("csrf", &csrf), ("username", "root")],
        )
        .await;
    assert_eq!(r.status(), 400);
    assert!(
        !app.rules
            .store
            .user_by_name("root")
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
    let r = b
        .post(
            "/admin/users/password",
            &[
                ("csrf", &csrf),
                ("username", "root"),
                ("password", "root-new-password-3"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(b.get("/admin/users").await.status(), 200, "still signed in");
    // a scope and an allowed redirect URI
    let r = b
        .post(
            "/admin/scopes",
            &[
                ("csrf", &csrf),
                ("name", "files:read"),
                ("description", "Read your files"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert!(
        app.rules
            .store
            .scopes()
            .await
            .unwrap()
            .contains(&("files:read".into(), "Read your files".into()))
    );
    let r = b
        .post(
            "/admin/allowed/preset",
            &[("csrf", &csrf), ("preset", "claude"), ("on", "no")],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert!(
        !app.rules
            .store
            .allowed_redirects()
            .await
            .unwrap()
            .contains(&"preset:claude".into())
    );
    // a client: the secret is on the page once
    let r = b
        .post(
            "/admin/clients",
            &[
                ("csrf", &csrf),
                ("name", "Reporting RS"),
                ("kind", "introspection"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("new-client-secret"));
    let c = app
        .rules
        .store
        .clients(None)
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name == "Reporting RS")
        .unwrap();
    assert!(c.can_introspect && c.secret_hash.is_some());
    // every act is in the audit log, saying which administrator acted
    let events = app
        .rules
        .store
        .search_audit(&AuditFilter::default(), 100)
        .await
        .unwrap();
    for kind in [
        "user_created",
        "user_disabled",
        "grant_revoked",
        "password_changed",
        "scope_set",
        "redirect_disallowed",
        "client_created",
    ] {
        let e = events
            .iter()
            .find(|e| e.event == kind)
            .unwrap_or_else(|| panic!("no {kind} event"));
        assert!(e.detail.contains("admin:root"), "{kind}: {}", e.detail);
    }
    // the audit page filters by event and by user
    let html = b
        .get("/admin/audit?event=user_disabled")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(html.matches("data-event=\"user_disabled\"").count(), 1);
    assert_eq!(
        html.matches("data-event=").count(),
        1,
        "only the filtered event"
    );
    let html = b.get("/admin/audit?user=dave").await.text().await.unwrap();
    assert!(html.contains("data-event=\"password_changed\""));
    assert!(!html.contains("data-event=\"user_disabled\""));
    let r = b.get("/admin/audit?from=yesterday").await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn admin_pages_follow_the_page_rules_and_draw_the_chart_inline() {
    let (app, _, _) = world().await;
    let mut b = Browser::new(&app);
    b.login("root", PASSWORD).await;
    for p in PAGES.iter().filter(|p| !p.contains("show")) {
        let r = b.get(p).await;
        assert_eq!(r.status(), 200, "{p}");
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"),
            "{p}"
        );
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["cache-control"], "no-store");
        let html = r.text().await.unwrap();
        assert!(!html.contains("<script") && !html.contains("style="), "{p}");
    }
    assert!(
        b.get("/apps")
            .await
            .text()
            .await
            .unwrap()
            .contains(">Admin</a>"),
        "the admin link"
    );
    // A query read before the page's handler: a repeated, over-long or multi-line
    // filter is a 400 page, never a page built from part of it.
    for bad in [
        "/admin/users?q=a&q=b".to_owned(),
        format!("/admin/audit?user={}", "x".repeat(300)),
        "/admin/grants?client=a%0Ab".to_owned(),
        "/admin/clients/show?client_id=a&client_id=b".to_owned(),
    ] {
        let r = b.get(&bad).await;
        assert_eq!(r.status(), 400, "{bad}");
        assert!(r.text().await.unwrap().contains("Bad request"), "{bad}");
    }
    // every client is listed
    let all = app.rules.store.clients(None).await.unwrap();
    let html = b.get("/admin/clients").await.text().await.unwrap();
    assert!(all.len() >= 2);
    for c in &all {
        assert!(html.contains(&c.client_id), "{} listed", c.client_id);
    }
    // alice signed in once (in world()): one sign-in in the chart's last hour
    let html = b.get("/admin").await.text().await.unwrap();
    assert!(html.contains("<svg") && html.contains("class=\"signins\""));
    assert!(html.contains("sign-ins"), "legend");
    let caption = html.split("<figcaption>").nth(1).unwrap_or_default();
    assert!(
        !caption.contains(" 0 sign-ins"),
        "the sign-ins were counted: {caption}"
    );
}

#[tokio::test]
async fn a_database_failure_is_an_error_page_not_an_empty_list() {
    let (app, _, _) = world().await;
    let mut b = Browser::new(&app);
    b.login("root", PASSWORD).await;
    let db = app.data_dir.join("mcpgate.db");
    let raw = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    for (table, page) in [
        ("grants", "/admin/grants"),
        ("audit_events", "/admin/audit"),
        ("allowed_redirects", "/admin/allowed"),
        ("scopes", "/admin/scopes"),
        ("user_groups", "/admin/groups"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "ALTER TABLE {table} RENAME TO {table}_away"
        )))
        .execute(&raw)
        .await
        .unwrap();
        // The scope catalogue is remembered between changes: this change, made
        // behind the server's back, is announced as the command line announces one
        // (the server then reads again; it would anyway within a second).
        announce_a_configuration_change(&app);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let r = loop {
            let r = b.get(page).await;
            if r.status() == 500 || std::time::Instant::now() > deadline {
                break r;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert_eq!(r.status(), 500, "{page}");
        let html = r.text().await.unwrap();
        assert!(html.contains("Something went wrong"), "{page}");
        assert!(
            !html.contains("No live grant") && !html.contains("No event"),
            "{page}"
        );
    }
}

/// What the command line sends the server after changing its configuration: a
/// datagram to the data directory's socket ([`mcpgate_store::notify`]).
fn announce_a_configuration_change(app: &TestApp) {
    let sock = std::os::unix::net::UnixDatagram::unbound().unwrap();
    let path = app.data_dir.join(mcpgate_store::notify::LOCAL_SOCKET);
    sock.send_to(
        mcpgate_store::notify::encode(mcpgate_store::Change::Config).as_bytes(),
        path,
    )
    .unwrap();
}
