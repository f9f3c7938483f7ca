//! Acts on people and clients: each is one function whatever asks for it (the pages,
//! the command line), so the rules below hold on every path.

use mcpgate_core::ErrorCode;
use mcpgate_domain::flows::accounts::{self, AccountOutcome};
use mcpgate_domain::flows::admin::{self, NewClient};
use mcpgate_domain::flows::identities::{self, ProviderIdentity};
use mcpgate_domain::flows::register::{self, RegistrationRequest};

use crate::world::*;
use mcpgate_domain::store::prelude::*;

#[tokio::test]
async fn disabling_a_person_ends_their_tokens_and_refuses_their_codes() {
    let w = world().await;
    let issued = w.exchange(&w.code().await).await.unwrap();
    let pending = w.code().await;
    assert!(w.active(&issued.access_token).await);
    assert_eq!(
        accounts::disable_user(&w.s, "ada", &mcpgate_domain::Actor::Operator)
            .await
            .unwrap(),
        AccountOutcome::Done
    );
    assert!(!w.active(&issued.access_token).await, "access token");
    let refresh = issued.refresh_token.as_deref().unwrap();
    assert_eq!(
        w.refresh(refresh, &[]).await.unwrap_err(),
        ErrorCode::InvalidGrant
    );
    assert_eq!(
        w.exchange(&pending).await.unwrap_err(),
        ErrorCode::InvalidGrant
    );
    // Enabling the person again gives nothing back: they sign in and consent anew.
    accounts::enable_user(&w.s, "ada", &mcpgate_domain::Actor::Operator)
        .await
        .unwrap();
    assert!(!w.active(&issued.access_token).await);
    assert_eq!(
        w.refresh(refresh, &[]).await.unwrap_err(),
        ErrorCode::InvalidGrant
    );
    assert_eq!(
        accounts::disable_user(&w.s, "nobody", &mcpgate_domain::Actor::Operator)
            .await
            .unwrap(),
        AccountOutcome::NoSuchUser
    );
}

fn registration(uri: &str, name: &str) -> RegistrationRequest {
    serde_json::from_value(serde_json::json!({
        "redirect_uris": [uri],
        "client_name": name,
        "token_endpoint_auth_method": "none",
    }))
    .unwrap()
}

fn own_client(uri: &str, name: &str) -> NewClient {
    NewClient {
        name: name.into(),
        redirect_uris: vec![uri.into()],
        confidential: false,
        introspection: false,
        owner: Some("u1".into()),
        machine: None,
        keys: None,
        secret_in_body: false,
    }
}

/// Dynamic registration and the clients people and operators create share the
/// redirect allow-list and the name rules.
#[tokio::test]
async fn every_way_of_creating_a_client_applies_the_same_rules() {
    let w = world().await;
    let custom = "https://app.example.test/callback";
    for (what, uri, name, code) in [
        (
            "a redirect not on the allow-list",
            custom,
            "App",
            ErrorCode::InvalidRedirectUri,
        ),
        (
            "a name with a control character",
            REDIRECT,
            "App\u{7}",
            ErrorCode::InvalidClientMetadata,
        ),
        (
            "a redirect with a fragment",
            "http://127.0.0.1:9999/cb#x",
            "App",
            ErrorCode::InvalidRedirectUri,
        ),
    ] {
        let dynamic = register::register(&w.s, registration(uri, name)).await;
        assert_eq!(dynamic.unwrap_err().code, code, "registration: {what}");
        let own = admin::create_client(
            &w.s,
            own_client(uri, name),
            &mcpgate_domain::Actor::Person("u1".into()),
        )
        .await;
        assert_eq!(own.unwrap_err().code, code, "a person's client: {what}");
        let operator = NewClient {
            owner: None,
            machine: None,
            keys: None,
            secret_in_body: false,
            ..own_client(uri, name)
        };
        let operator = admin::create_client(&w.s, operator, &mcpgate_domain::Actor::Operator).await;
        assert_eq!(operator.unwrap_err().code, code, "operator: {what}");
    }
    // Once the operator allows the URI, every path accepts it.
    assert!(
        admin::set_redirect_uri(&w.s, custom, true, &mcpgate_domain::Actor::Operator)
            .await
            .unwrap()
    );
    register::register(&w.s, registration(custom, "App"))
        .await
        .unwrap();
    admin::create_client(
        &w.s,
        own_client(custom, "App"),
        &mcpgate_domain::Actor::Person("u1".into()),
    )
    .await
    .unwrap();
    // A URI cannot pose as a preset of the allow-list.
    assert_eq!(
        admin::set_redirect_uri(
            &w.s,
            "preset:claude",
            true,
            &mcpgate_domain::Actor::Operator
        )
        .await
        .unwrap_err()
        .code,
        ErrorCode::InvalidRequest
    );
}

/// A person a provider vouched for gets an account and its link in one step: the
/// first free name, and never an account without its link.
#[tokio::test]
async fn a_provisioned_account_comes_with_its_link_or_not_at_all() {
    let w = world().await;
    let corp = |subject| ProviderIdentity {
        provider: "corp",
        subject,
        email: Some("ada@corp.example"),
    };
    // "ada" is taken: the next free name.
    let u = identities::provision(&w.s, corp("s1"), "ada", "ada@corp.example")
        .await
        .unwrap();
    assert_eq!(u.username, "ada-2");
    let link = w.store.user_identity("corp", "s1").await.unwrap().unwrap();
    assert_eq!(link.user_id, u.id);
    // The link refused by the database: no account is left behind.
    let users = w.count("users").await;
    w.break_table("INSERT", "user_identities").await;
    let err = identities::provision(&w.s, corp("s2"), "grace", "grace@corp.example").await;
    w.heal().await;
    assert_eq!(err.unwrap_err().code, ErrorCode::ServerError);
    assert_eq!(w.count("users").await, users);
    assert!(w.store.user_by_name("grace").await.unwrap().is_none());
}

/// An administrator's account is never linked to a provider by email, whatever the
/// caller checked before: whoever holds the address at the provider would gain the
/// administrator's powers. An operator links it by hand, once, audited.
#[tokio::test]
async fn an_administrators_account_is_linked_by_an_operator_only() {
    let w = world().await;
    let root = mcpgate_domain::model::User {
        id: "u-root".into(),
        username: "root".into(),
        email: Some("root@corp.example".into()),
        password_hash: "x".into(),
        is_admin: true,
        disabled: false,
        created_at: 0,
    };
    w.store.create_user(&root).await.unwrap();
    let id = ProviderIdentity {
        provider: "corp",
        subject: "s-root",
        email: Some("root@corp.example"),
    };
    let err = identities::link_by_email(&w.s, id, &root)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::AccessDenied);
    assert!(
        w.store
            .user_identity("corp", "s-root")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        identities::link_by_operator(&w.s, id, &root).await.unwrap(),
        identities::LinkOutcome::Linked
    );
    let link = w
        .store
        .user_identity("corp", "s-root")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(link.user_id, "u-root");
    assert_eq!(
        identities::link_by_operator(&w.s, id, &root).await.unwrap(),
        identities::LinkOutcome::AlreadyLinked
    );
    let linked: Vec<_> = w
        .store
        .search_audit(&Default::default(), 50)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event == "idp_identity_linked")
        .collect();
    assert_eq!(linked.len(), 1, "{linked:?}");
    let detail: serde_json::Value = serde_json::from_str(&linked[0].detail).unwrap();
    assert_eq!(detail["by"], "operator");
}
