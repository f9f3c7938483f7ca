//! Scope hierarchies (MCP 2026-07-28: servers account for them): a broader scope the
//! operator declared grants the narrower ones it includes, the same way at consent, in
//! the code's tokens, at introspection, for machines; a narrower scope restricted to a
//! group stays the group's. `op:all` includes `op:add` and `op:mult` here.

use mcpgate_core::{ErrorCode, ScopeSet};
use mcpgate_domain::Actor;
use mcpgate_domain::flows::client_credentials::{self, CredentialsRequest};
use mcpgate_domain::flows::{admin, groups, hierarchy, introspect};
use mcpgate_domain::model::Machine;

use crate::world::*;

const OP: &Actor = &Actor::Operator;

fn set(s: &str) -> ScopeSet {
    ScopeSet::parse(s).unwrap()
}

async fn with_op_all(w: &World) {
    admin::set_scope(&w.s, "op:all", "Every operation", OP)
        .await
        .unwrap();
    hierarchy::set_includes(&w.s, "op:all", &["op:add".into(), "op:mult".into()], OP)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_hierarchy_names_known_scopes_and_has_no_cycle() {
    let w = world().await;
    with_op_all(&w).await;
    for (scope, includes) in [
        ("op:add", vec!["op:all"]),
        ("op:all", vec!["op:all"]),
        ("op:all", vec!["op:nope"]),
        ("op:nope", vec!["op:add"]),
    ] {
        let includes: Vec<String> = includes.into_iter().map(String::from).collect();
        let e = hierarchy::set_includes(&w.s, scope, &includes, OP)
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest, "{scope} {includes:?}");
    }
    // A change is audited with who made it; the same declaration again records nothing.
    hierarchy::set_includes(&w.s, "op:all", &["op:add".into(), "op:mult".into()], OP)
        .await
        .unwrap();
    assert_eq!(
        w.count("audit_events WHERE event = 'scope_includes_set'")
            .await,
        1
    );
}

#[tokio::test]
async fn a_consent_to_the_broader_scope_carries_the_narrower_ones_everywhere() {
    let w = world().await;
    with_op_all(&w).await;
    let (offer, code) = w.consent("op:all", "op:all", None).await;
    assert_eq!(
        offer.offered,
        set("op:all op:add op:mult"),
        "the page shows them"
    );
    let tokens = w.exchange(&code.unwrap()).await.unwrap();
    assert_eq!(set(&tokens.scope), set("op:all op:add op:mult"));
    // A guard's per-tool check reads the token's scope: `op:add` is there.
    let seen = introspect::introspect(&w.s, &tokens.access_token, "c1")
        .await
        .unwrap();
    assert_eq!(seen["active"], true);
    assert_eq!(
        set(seen["scope"].as_str().unwrap()),
        set("op:all op:add op:mult")
    );
    let refreshed = w
        .refresh(tokens.refresh_token.as_deref().unwrap(), &[])
        .await
        .unwrap();
    assert_eq!(set(&refreshed.scope), set("op:all op:add op:mult"));
}

#[tokio::test]
async fn a_narrower_scope_restricted_to_a_group_stays_the_groups() {
    let w = world().await;
    with_op_all(&w).await;
    groups::add_group(&w.s, "finance", "", None, OP)
        .await
        .unwrap();
    groups::set_scope_groups(&w.s, "op:mult", &["finance".into()], OP)
        .await
        .unwrap();
    let (offer, code) = w.consent("op:all", "op:all op:mult", None).await;
    assert_eq!(offer.withheld, set("op:mult"));
    let tokens = w.exchange(&code.unwrap()).await.unwrap();
    assert_eq!(set(&tokens.scope), set("op:all op:add"));
    let seen = introspect::introspect(&w.s, &tokens.access_token, "c1")
        .await
        .unwrap();
    assert_eq!(seen["active"], true, "what it carries still stands");
}

#[tokio::test]
async fn a_machine_allowed_the_broader_scope_may_ask_for_a_narrower_one() {
    let w = world().await;
    with_op_all(&w).await;
    let (m, _) = admin::create_client(
        &w.s,
        admin::NewClient {
            name: "Batch".into(),
            redirect_uris: vec![],
            confidential: false,
            introspection: false,
            owner: None,
            machine: Some(Machine {
                scopes: set("op:all"),
                resources: vec![RESOURCE.into()],
            }),
            keys: None,
            secret_in_body: false,
        },
        OP,
    )
    .await
    .unwrap();
    let ask = |scope: Option<&'static str>| {
        client_credentials::grant(
            &w.s,
            &m,
            CredentialsRequest {
                scope,
                resource: None,
                dpop_jkt: None,
            },
        )
    };
    assert_eq!(
        set(&ask(Some("op:add")).await.unwrap().scope),
        set("op:add")
    );
    assert_eq!(
        set(&ask(None).await.unwrap().scope),
        set("op:all op:add op:mult")
    );
    hierarchy::set_includes(&w.s, "op:all", &["op:add".into()], OP)
        .await
        .unwrap();
    assert_eq!(
        ask(Some("op:mult")).await.map_err(|e| e.code).unwrap_err(),
        ErrorCode::InvalidScope,
        "no longer included: beyond what it was allowed"
    );
}
