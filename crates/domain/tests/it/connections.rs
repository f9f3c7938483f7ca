//! Connected accounts: a connect page is the person's alone and good once; the token
//! given is theirs for that upstream only; disconnecting or being disabled removes it.

use std::sync::Arc;

use mcpgate_domain::Actor;
use mcpgate_domain::flows::connections::{self, NotYours};
use mcpgate_domain::flows::{accounts, admin};

use crate::world::*;

/// The world's authority with the upstream `files` taking personal tokens.
fn with_files(w: &World) -> mcpgate_domain::Authority {
    let mut s = w.s.clone();
    let mut cfg = (*s.cfg).clone();
    cfg.connectable.insert(
        "files".into(),
        mcpgate_domain::settings::Connectable {
            label: "a files token".into(),
            kind: mcpgate_domain::settings::ConnectKind::Token,
        },
    );
    s.cfg = Arc::new(cfg);
    s
}

fn handle(url: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "request")
        .unwrap()
        .1
        .into_owned()
}

#[tokio::test]
async fn a_connect_page_is_its_persons_alone_and_good_once() {
    let w = world().await;
    let s = with_files(&w);
    let bob = admin::create_user(
        &s,
        admin::NewUser {
            username: "bob".into(),
            email: None,
            admin: false,
            password: Some("pw-long-enough-1".into()),
        },
        &Actor::Operator,
    )
    .await
    .unwrap()
    .id;
    assert!(
        connections::elicit(&s, "u1", "other").await.is_err(),
        "not a connectable upstream"
    );
    let e = connections::elicit(&s, "u1", "files").await.unwrap();
    assert!(
        e.url
            .starts_with("https://auth.example.test/connections/files?request=")
    );
    let h = handle(&e.url);
    assert_eq!(
        connections::pending(&s, Some(&h), &bob, "files")
            .await
            .unwrap(),
        Err(NotYours::Other)
    );
    assert_eq!(
        connections::connect(&s, Some(&h), &bob, "files", "bobs-token")
            .await
            .unwrap(),
        Err(NotYours::Other),
        "another person cannot spend it"
    );
    assert!(
        connections::token_for(&s, &bob, "files", None)
            .await
            .unwrap()
            .is_none()
    );
    for bad in ["", "two words", &"x".repeat(connections::MAX_TOKEN_LEN + 1)] {
        assert!(
            connections::connect(&s, Some(&h), "u1", "files", bad)
                .await
                .is_err()
        );
    }
    assert_eq!(
        connections::connect(&s, Some(&h), "u1", "files", "adas-token")
            .await
            .unwrap(),
        Ok(())
    );
    assert_eq!(
        connections::connect(&s, Some(&h), "u1", "files", "adas-token")
            .await
            .unwrap(),
        Err(NotYours::Spent),
        "good once"
    );
    assert_eq!(
        connections::token_for(&s, "u1", "files", None)
            .await
            .unwrap()
            .as_deref(),
        Some("adas-token")
    );
    assert!(
        connections::token_for(&s, &bob, "files", None)
            .await
            .unwrap()
            .is_none()
    );
    // A page not used in time expires.
    let late = handle(&connections::elicit(&s, "u1", "files").await.unwrap().url);
    w.clock.advance(connections::REQUEST_TTL_SECS + 1);
    assert_eq!(
        connections::pending(&s, Some(&late), "u1", "files")
            .await
            .unwrap(),
        Err(NotYours::Spent)
    );
    // Listed; disconnected at once (the token read a moment ago is not served again).
    assert_eq!(connections::of(&s, "u1").await.unwrap().len(), 1);
    assert!(
        connections::disconnect(&s, "u1", "files", &Actor::Person("u1".into()))
            .await
            .unwrap()
    );
    assert!(
        connections::token_for(&s, "u1", "files", None)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        w.count("audit_events WHERE event IN ('account_connected', 'account_disconnected')")
            .await,
        2
    );
}

#[tokio::test]
async fn a_disabled_person_keeps_no_upstream_token() {
    let w = world().await;
    let s = with_files(&w);
    connections::connect(&s, None, "u1", "files", "adas-token")
        .await
        .unwrap()
        .unwrap();
    assert!(
        connections::token_for(&s, "u1", "files", None)
            .await
            .unwrap()
            .is_some()
    );
    accounts::disable_user(&s, "ada", &Actor::Operator)
        .await
        .unwrap();
    assert!(
        connections::token_for(&s, "u1", "files", None)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(w.count("connections").await, 0);
}

/// A client calling in a loop before its person connects cannot pile up connect pages:
/// the newest few stay, the older ones stop working.
#[tokio::test]
async fn connect_pages_are_bounded_per_person() {
    let w = world().await;
    let s = with_files(&w);
    let mut urls = Vec::new();
    for _ in 0..connections::PENDING_PER_PERSON + 3 {
        urls.push(connections::elicit(&s, "u1", "files").await.unwrap().url);
        w.clock.advance(1);
    }
    assert_eq!(
        w.count("connect_requests").await,
        connections::PENDING_PER_PERSON
    );
    assert_eq!(
        connections::pending(&s, Some(&handle(&urls[0])), "u1", "files")
            .await
            .unwrap(),
        Err(NotYours::Spent)
    );
    assert_eq!(
        connections::pending(&s, Some(&handle(urls.last().unwrap())), "u1", "files")
            .await
            .unwrap(),
        Ok(())
    );
}
