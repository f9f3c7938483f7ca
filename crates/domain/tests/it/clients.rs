//! Clients: authentication by the one method each registered, the introspection right,
//! and the bound on the clients one person may own.

use mcpgate_core::ErrorCode;
use mcpgate_core::secret::Secret;
use mcpgate_domain::Actor;
use mcpgate_domain::flows::admin::{self, MAX_OWN_CLIENTS, NewClient};
use mcpgate_domain::flows::client_auth::{self, Presented};
use mcpgate_domain::model::{AuthMethod, ClientKind};
use mcpgate_domain::store::prelude::*;

use crate::world::*;

/// A confidential client `id` with `secret`, registered for `method`.
async fn confidential(w: &World, id: &str, secret: &Secret, method: AuthMethod, introspect: bool) {
    let mut c = client(id);
    c.secret_hash = Some(secret.hash());
    c.auth_method = method;
    c.kind = ClientKind::Preregistered;
    c.can_introspect = introspect;
    w.store.insert_client(&c).await.unwrap();
}

fn basic(id: &str, secret: &str) -> Presented {
    Presented::Basic {
        client_id: id.into(),
        secret: secret.into(),
    }
}

fn form(id: &str, secret: Option<&str>) -> Presented {
    Presented::Form {
        client_id: id.into(),
        secret: secret.map(str::to_owned),
    }
}

#[tokio::test]
async fn each_client_authenticates_by_its_own_method_only() {
    let w = world().await;
    let secret = Secret::generate();
    confidential(&w, "rs", &secret, AuthMethod::ClientSecretBasic, true).await;
    confidential(&w, "post", &secret, AuthMethod::ClientSecretPost, false).await;
    let ok = |p: Presented| {
        let s = w.s.clone();
        async move { client_auth::authenticate(&s, &p).await.map(|c| c.client_id) }
    };
    assert_eq!(ok(basic("rs", secret.expose())).await.unwrap(), "rs");
    assert_eq!(
        ok(form("post", Some(secret.expose()))).await.unwrap(),
        "post"
    );
    assert_eq!(ok(form("c1", None)).await.unwrap(), "c1", "a public client");
    for (what, p) in [
        ("a wrong secret", basic("rs", "wrong")),
        (
            "a Basic secret in the form",
            form("rs", Some(secret.expose())),
        ),
        ("a form secret in Basic", basic("post", secret.expose())),
        ("no secret for a confidential client", form("rs", None)),
        ("a secret for a public client", form("c1", Some("anything"))),
        ("an unknown client", form("nobody", None)),
        ("an over-long id", form(&"x".repeat(600), None)),
    ] {
        assert_eq!(
            ok(p).await.unwrap_err().code,
            ErrorCode::InvalidClient,
            "{what}"
        );
    }
}

#[tokio::test]
async fn only_a_confidential_client_with_the_right_may_introspect() {
    let w = world().await;
    let secret = Secret::generate();
    confidential(&w, "rs", &secret, AuthMethod::ClientSecretBasic, true).await;
    confidential(&w, "app", &secret, AuthMethod::ClientSecretBasic, false).await;
    let c = |id: &'static str| {
        let store = w.store.clone();
        async move { store.client(id).await.unwrap().unwrap() }
    };
    assert!(client_auth::may_introspect(&c("rs").await).is_ok());
    for id in ["app", "c1"] {
        assert_eq!(
            client_auth::may_introspect(&c(id).await).unwrap_err().code,
            ErrorCode::InvalidClient,
            "{id}"
        );
    }
}

fn own(name: String) -> NewClient {
    NewClient {
        name,
        redirect_uris: vec![REDIRECT.into()],
        confidential: true,
        introspection: false,
        owner: Some("u1".into()),
        machine: None,
        keys: None,
        secret_in_body: false,
    }
}

/// Before, the pages counted a person's clients and then inserted: concurrent
/// requests could each pass the count.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_person_owns_at_most_the_bound_even_when_asking_at_once() {
    let w = world().await;
    admin::set_redirect_uri(&w.s, REDIRECT, true, &Actor::Operator)
        .await
        .unwrap();
    let by = Actor::Person("u1".into());
    for i in 0..MAX_OWN_CLIENTS - 3 {
        admin::create_client(&w.s, own(format!("app {i}")), &by)
            .await
            .unwrap();
    }
    let racing: Vec<_> = (0..10)
        .map(|i| {
            let (s, by) = (w.s.clone(), by.clone());
            tokio::spawn(
                async move { admin::create_client(&s, own(format!("late {i}")), &by).await },
            )
        })
        .collect();
    let mut made = 0;
    for r in racing {
        match r.await.unwrap() {
            Ok(_) => made += 1,
            Err(e) => assert!(e.description.contains("at most"), "{e:?}"),
        }
    }
    assert_eq!(made, 3, "exactly the room left");
    assert_eq!(
        w.store.clients(Some("u1")).await.unwrap().len() as i64,
        MAX_OWN_CLIENTS
    );
    // An operator's clients (no owner) are not a person's to count.
    admin::create_client(
        &w.s,
        NewClient {
            owner: None,
            machine: None,
            keys: None,
            secret_in_body: false,
            ..own("operator's".into())
        },
        &Actor::Operator,
    )
    .await
    .unwrap();
}

/// A client's use is written the first time, and then at most once a minute: a token
/// request a few seconds after the last writes nothing (the clients pages show the
/// minute).
#[tokio::test]
async fn a_clients_use_is_written_at_most_once_a_minute() {
    let w = world().await;
    let last_use = async || w.store.client("c1").await.unwrap().unwrap().last_used_at;
    let exchange = async || {
        let code = w.code().await;
        let c = w.store.client("c1").await.unwrap().unwrap();
        let pairs = [
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ];
        w.exchange_as(&c, &pairs).await.unwrap();
    };
    assert_eq!(last_use().await, None);
    exchange().await;
    assert_eq!(last_use().await, Some(NOW), "the first use is written");
    w.clock.advance(59);
    exchange().await;
    assert_eq!(
        last_use().await,
        Some(NOW),
        "within the minute: not written"
    );
    w.clock.advance(1);
    exchange().await;
    assert_eq!(last_use().await, Some(NOW + 60));
}
