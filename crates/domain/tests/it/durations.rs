//! A consent that ends: the person chooses at consent how long the app may act for
//! them, and no token of the grant outlives it. Time is the world's clock, advanced.

use mcpgate_core::{ErrorCode, ScopeSet};
use mcpgate_domain::flows::authorize::Lasting;

use crate::world::*;

/// A consent for `op:add`, lasting as given; returns the code.
async fn consent(w: &World, lasting: Option<Lasting>) -> String {
    w.consent("op:add", "op:add", lasting).await.1.unwrap()
}

fn exp_of(w: &World, access: &str) -> i64 {
    w.s.keys
        .verify(access, &w.s.cfg.expectations(), w.s.now())
        .unwrap()
        .exp
}

#[tokio::test]
async fn only_the_pages_choices_are_durations() {
    assert_eq!(Lasting::from_secs(0), Some(Lasting::UntilRevoked));
    assert_eq!(Lasting::from_secs(3600), Some(Lasting::For(3600)));
    assert_eq!(Lasting::from_secs(86_400), Some(Lasting::For(86_400)));
    assert_eq!(Lasting::from_secs(2_592_000), Some(Lasting::For(2_592_000)));
    for other in [-1, 1, 7200, 31_536_000] {
        assert_eq!(Lasting::from_secs(other), None, "{other}");
    }
}

#[tokio::test]
async fn an_hour_long_consent_issues_nothing_that_outlives_it() {
    let w = world().await;
    let start = w.s.now();
    let tokens = w
        .exchange(&consent(&w, Some(Lasting::For(3600))).await)
        .await
        .unwrap();
    let grant = w.grant().await;
    assert_eq!(grant.expires_at, Some(start + 3600));
    // Access tokens live their usual 15 minutes while the grant lasts…
    assert_eq!(tokens.expires_in, w.s.cfg.access_ttl_secs);
    // …and refreshing near the end caps them at it.
    w.clock.advance(3600 - 60);
    let late = w
        .refresh(tokens.refresh_token.as_deref().unwrap(), &[])
        .await
        .unwrap();
    assert_eq!(late.expires_in, 60);
    assert_eq!(exp_of(&w, &late.access_token), start + 3600);
    // Past the end: the refresh is refused, and a code of the ended grant too.
    w.clock.advance(61);
    assert_eq!(
        w.refresh(late.refresh_token.as_deref().unwrap(), &[])
            .await
            .unwrap_err(),
        ErrorCode::InvalidGrant
    );
    // The access token ends with the grant (past the verifiers' clock-skew leeway).
    w.clock.advance(120);
    assert!(!w.active(&late.access_token).await);
}

#[tokio::test]
async fn until_revoked_is_the_default_and_changes_nothing() {
    let w = world().await;
    let tokens = w.exchange(&consent(&w, None).await).await.unwrap();
    let grant = w.grant().await;
    assert_eq!(grant.expires_at, None);
    w.clock.advance(40 * 86_400);
    assert!(
        w.refresh(tokens.refresh_token.as_deref().unwrap(), &[])
            .await
            .is_err(),
        "the refresh token's own 30 days still bound it"
    );
    let w = world().await;
    let tokens = w
        .exchange(&consent(&w, Some(Lasting::UntilRevoked)).await)
        .await
        .unwrap();
    w.clock.advance(29 * 86_400);
    assert!(
        w.refresh(tokens.refresh_token.as_deref().unwrap(), &[])
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_new_consent_may_shorten_or_extend_and_an_ended_grant_starts_over() {
    let w = world().await;
    let start = w.s.now();
    let month = w
        .exchange(&consent(&w, Some(Lasting::For(2_592_000))).await)
        .await
        .unwrap();
    // A new consent for an hour caps what the month-long one issued.
    let hour = w
        .exchange(&consent(&w, Some(Lasting::For(3600))).await)
        .await
        .unwrap();
    w.clock.advance(3601);
    for (what, t) in [("the earlier family", &month), ("the new one", &hour)] {
        assert_eq!(
            w.refresh(t.refresh_token.as_deref().unwrap(), &[])
                .await
                .unwrap_err(),
            ErrorCode::InvalidGrant,
            "{what}"
        );
    }
    // Once ended, a code issued before cannot be exchanged…
    let g = w.grant().await;
    assert_eq!(g.expires_at, Some(start + 3600));
    // …and a new consent starts a new grant (the ended one's scopes are not carried over).
    let again = w
        .exchange(&consent(&w, Some(Lasting::For(86_400))).await)
        .await
        .unwrap();
    let g2 = w.grant().await;
    assert_ne!(g2.id, g.id);
    assert_eq!(g2.scope, ScopeSet::parse("op:add").unwrap());
    assert_eq!(g2.expires_at, Some(w.s.now() + 86_400));
    assert!(w.active(&again.access_token).await);
}

#[tokio::test]
async fn a_code_of_a_grant_that_ended_is_refused() {
    let w = world().await;
    let code = consent(&w, Some(Lasting::For(3600))).await;
    w.clock.advance(3601);
    // The code itself lives a minute; make it outlive the grant for the check.
    sqlx::query("UPDATE auth_codes SET expires_at = expires_at + 7200")
        .execute(&w.raw)
        .await
        .unwrap();
    assert_eq!(
        w.exchange(&code).await.unwrap_err(),
        ErrorCode::InvalidGrant
    );
}

/// A repeat authorization that skips the consent page (an operator-registered
/// confidential client asking for what was granted) keeps the grant's end: only a new
/// consent may move it.
#[tokio::test]
async fn a_repeat_authorization_without_consent_keeps_the_grants_end() {
    let w = world().await;
    let (_, code) = w
        .consent("op:add", "op:add", Some(Lasting::For(3600)))
        .await;
    code.unwrap();
    let ends = w.grant().await.expires_at;
    assert_eq!(ends, Some(NOW + 3600));
    w.clock.advance(600);
    let (_, code) = w.consent("op:add", "op:add", None).await;
    code.unwrap();
    assert_eq!(
        w.grant().await.expires_at,
        ends,
        "not extended without a consent"
    );
    let (_, code) = w
        .consent("op:add", "op:add", Some(Lasting::For(86_400)))
        .await;
    code.unwrap();
    assert_eq!(
        w.grant().await.expires_at,
        Some(NOW + 600 + 86_400),
        "a new consent says how long from now"
    );
}
