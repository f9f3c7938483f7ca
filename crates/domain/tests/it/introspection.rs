//! Introspection remembers the access tokens it verified; what it remembers never
//! outlives what would refuse the token afresh: expiry, the signing key's
//! retirement, the grant's revocation.

use mcpgate_core::jwt::header_kid;
use mcpgate_domain::Actor;
use mcpgate_domain::flows::{introspect, keys, revoke};
use mcpgate_domain::store::Tokens as _;

use crate::world::*;

const OP: &Actor = &Actor::Operator;

async fn answer(w: &World, token: &str) -> serde_json::Value {
    introspect::introspect(&w.s, token, "c1").await.unwrap()
}

#[tokio::test]
async fn a_remembered_token_is_refused_once_its_key_is_retired() {
    let w = world().await;
    let t = w.exchange(&w.code().await).await.unwrap().access_token;
    let first = answer(&w, &t).await;
    assert_eq!(first["active"], true);
    assert_eq!(
        answer(&w, &t).await,
        first,
        "the remembered answer is the same"
    );
    let old = header_kid(&t).unwrap();
    keys::rotate(&w.s, OP).await.unwrap();
    assert!(
        w.active(&t).await,
        "rotation alone keeps the old key verifying"
    );
    assert!(keys::retire(&w.s, &old, OP).await.unwrap());
    assert!(!w.active(&t).await);
    let fresh = w.exchange(&w.code().await).await.unwrap().access_token;
    assert_ne!(header_kid(&fresh).unwrap(), old);
    assert!(w.active(&fresh).await);
}

#[tokio::test]
async fn a_remembered_token_is_refused_once_its_grant_is_revoked() {
    let w = world().await;
    let t = w.exchange(&w.code().await).await.unwrap().access_token;
    let sid = answer(&w, &t).await["sid"].as_str().unwrap().to_owned();
    assert!(w.active(&t).await);
    let family = w.store.family(&sid).await.unwrap().unwrap();
    assert!(
        revoke::revoke_grant(&w.s, &family.grant_id, OP)
            .await
            .unwrap()
    );
    assert_eq!(answer(&w, &t).await, serde_json::json!({ "active": false }));
}

#[tokio::test]
async fn a_remembered_token_is_refused_once_it_expires() {
    let w = world().await;
    let r = w.exchange(&w.code().await).await.unwrap();
    assert!(w.active(&r.access_token).await);
    w.clock.advance(r.expires_in - 1);
    assert!(
        w.active(&r.access_token).await,
        "within its life and leeway"
    );
    w.s.introspected.sweep(w.s.now());
    assert_eq!(w.s.introspected.len(), 1, "a live token stays remembered");
    w.clock.advance(mcpgate_core::jwt::LEEWAY_SECS + 1);
    assert!(!w.active(&r.access_token).await);
    w.s.introspected.sweep(w.s.now());
    assert!(w.s.introspected.is_empty(), "the sweep lets it go");
}
