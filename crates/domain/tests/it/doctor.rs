//! The connection doctor over the real flows: each step noted where it happens, written
//! in a batch, and read back as where the connection stopped.

use mcpgate_core::pkce;
use mcpgate_domain::flows::authorize::{self, AuthorizeRequest};
use mcpgate_domain::flows::doctor;
use mcpgate_domain::model::StepKind;
use mcpgate_domain::store::prelude::*;
use mcpgate_domain::store::{STEPS_KEPT_SECS, STEPS_PER_CLIENT};

use crate::world::*;

fn request<'a>(client: &'a str, challenge: &'a str) -> AuthorizeRequest<'a> {
    AuthorizeRequest {
        client_id: Some(client),
        redirect_uri: Some(REDIRECT),
        response_type: Some("code"),
        state: None,
        code_challenge: Some(challenge),
        code_challenge_method: Some("S256"),
        resource: Some(RESOURCE),
        scope: Some("op:add"),
    }
}

async fn stopped(w: &World, client: &str) -> (Option<StepKind>, String) {
    w.s.flush_steps().await.unwrap();
    let r = doctor::report(&w.s, Some(client)).await.unwrap();
    (r[0].stopped_at, r[0].advice.clone().unwrap_or_default())
}

#[tokio::test]
async fn each_step_is_noted_where_it_happens_and_the_first_missing_one_is_named() {
    let w = world().await;
    let challenge = pkce::challenge_of(VERIFIER);
    // An authorization request that is refused: a redirect URI the client never registered.
    let mut bad = request("c1", &challenge);
    bad.redirect_uri = Some("http://127.0.0.1:9999/elsewhere");
    assert!(authorize::validate(&w.s, &bad).await.is_err());
    let (at, _) = stopped(&w, "c1").await;
    assert_eq!(at, Some(StepKind::Authorize));
    // The request accepted, the page shown and never answered.
    let handle = authorize::validate(&w.s, &request("c1", &challenge))
        .await
        .unwrap();
    let (req, _) = authorize::pending(&w.s, &handle).await.unwrap().unwrap();
    let user = w.store.user("u1").await.unwrap().unwrap();
    authorize::offer(&w.s, &user, &req).await.unwrap();
    assert_eq!(stopped(&w, "c1").await.0, Some(StepKind::Consent));
    // Consent given; the code never exchanged, past its lifetime.
    let location = authorize::approve(&w.s, &handle, &req, &user, &req.scope, None)
        .await
        .unwrap();
    w.clock.advance(w.s.cfg.code_ttl_secs + 1);
    let (at, advice) = stopped(&w, "c1").await;
    assert_eq!(at, Some(StepKind::Token));
    assert!(advice.contains("never exchanged"), "{advice}");
    // A code exchanged, its tokens never presented anywhere.
    let code = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let _ = w.exchange(&code).await; // expired: refused, and noted so
    let (at, advice) = stopped(&w, "c1").await;
    assert_eq!(at, Some(StepKind::Token));
    assert!(advice.contains("invalid_grant"), "{advice}");
    w.exchange(&w.code().await).await.unwrap();
    let (at, advice) = stopped(&w, "c1").await;
    assert_eq!(at, Some(StepKind::Call));
    assert!(advice.contains("never presented"), "{advice}");
    // The record is the client's: another client's steps are not in it.
    assert!(
        doctor::report(&w.s, Some("c2")).await.unwrap()[0]
            .steps
            .is_empty()
    );
    // An unknown client id at /authorize is nobody's step.
    let _ = authorize::validate(&w.s, &request("no-such-client", &challenge)).await;
    w.s.flush_steps().await.unwrap();
    assert!(
        w.store
            .client_steps("no-such-client", 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn the_record_is_bounded_per_client_and_forgotten_after_a_week() {
    let w = world().await;
    for _ in 0..(STEPS_PER_CLIENT + 20) {
        w.s.note(
            "c1",
            StepKind::Call,
            mcpgate_domain::model::Outcome::Ok,
            "a call",
        );
    }
    w.s.note(
        "c2",
        StepKind::Call,
        mcpgate_domain::model::Outcome::Ok,
        "a call",
    );
    w.s.flush_steps().await.unwrap();
    w.store
        .prune_steps(w.s.now() - STEPS_KEPT_SECS)
        .await
        .unwrap();
    assert_eq!(
        w.store.client_steps("c1", 1000).await.unwrap().len() as i64,
        STEPS_PER_CLIENT
    );
    w.clock.advance(STEPS_KEPT_SECS + 1);
    w.store
        .prune_steps(w.s.now() - STEPS_KEPT_SECS)
        .await
        .unwrap();
    assert!(w.store.client_steps("c2", 10).await.unwrap().is_empty());
}
