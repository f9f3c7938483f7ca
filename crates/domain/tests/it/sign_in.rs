//! Signing in with a password, as one flow: the throttle per account name, the lock,
//! the disabled check, the audit; and the sessions that follow.

use mcpgate_domain::Actor;
use mcpgate_domain::audit::Event;
use mcpgate_domain::flows::admin::{self, NewUser};
use mcpgate_domain::flows::sign_in::{self, FREE_FAILURES, SignInRefusal};
use mcpgate_domain::store::prelude::*;

use crate::world::*;

async fn with_password(w: &World) {
    admin::create_user(
        &w.s,
        NewUser {
            username: "grace".into(),
            email: None,
            admin: false,
            password: Some("a long enough password".into()),
        },
        &Actor::Operator,
    )
    .await
    .unwrap();
}

async fn failures_audited(w: &World) -> usize {
    w.store
        .audit_events(1000)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.event == "login_failed")
        .count()
}

#[tokio::test]
async fn a_right_password_signs_in_and_wrong_ones_lock_the_name() {
    let w = world().await;
    with_password(&w).await;
    let ok = sign_in::with_password(&w.s, "grace", "a long enough password").await;
    assert_eq!(ok.unwrap().username, "grace");
    // An unknown name and a wrong password are one answer, each audited.
    for (name, password) in [("grace", "wrong"), ("nobody", "a long enough password")] {
        assert!(matches!(
            sign_in::with_password(&w.s, name, password).await,
            Err(SignInRefusal::Invalid)
        ));
    }
    assert_eq!(failures_audited(&w).await, 2);
    // Past the free failures the name is locked, even for the right password.
    for _ in 0..FREE_FAILURES {
        let _ = sign_in::with_password(&w.s, "GRACE", "wrong").await;
    }
    let locked = sign_in::with_password(&w.s, "grace", "a long enough password").await;
    let Err(SignInRefusal::Locked { retry_after }) = locked else {
        panic!("locked: {locked:?}");
    };
    assert!(retry_after > 0);
    // Once the lock has passed, the right password clears the count.
    w.clock.advance(retry_after + 1);
    assert!(
        sign_in::with_password(&w.s, "grace", "a long enough password")
            .await
            .is_ok()
    );
    assert!(
        sign_in::with_password(&w.s, "grace", "a long enough password")
            .await
            .is_ok(),
        "no lock left behind"
    );
}

#[tokio::test]
async fn a_disabled_account_does_not_sign_in_and_over_long_input_is_refused_unread() {
    let w = world().await;
    with_password(&w).await;
    mcpgate_domain::flows::accounts::disable_user(&w.s, "grace", &Actor::Operator)
        .await
        .unwrap();
    assert!(matches!(
        sign_in::with_password(&w.s, "grace", "a long enough password").await,
        Err(SignInRefusal::Invalid)
    ));
    let long = "x".repeat(sign_in::MAX_USERNAME_LEN + 1);
    assert!(matches!(
        sign_in::with_password(&w.s, &long, "whatever").await,
        Err(SignInRefusal::Invalid)
    ));
    assert!(matches!(
        sign_in::with_password(&w.s, "", "whatever").await,
        Err(SignInRefusal::Invalid)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_guesses_each_count() {
    let w = world().await;
    with_password(&w).await;
    let guesses: Vec<_> = (0..FREE_FAILURES + 3)
        .map(|_| {
            let s = w.s.clone();
            tokio::spawn(async move { sign_in::with_password(&s, "grace", "wrong").await })
        })
        .collect();
    for g in guesses {
        assert!(g.await.unwrap().is_err());
    }
    // Every guess was counted, whatever the interleaving: the name is locked now.
    assert!(matches!(
        sign_in::with_password(&w.s, "grace", "a long enough password").await,
        Err(SignInRefusal::Locked { .. })
    ));
}

#[tokio::test]
async fn a_session_is_opened_for_a_person_and_ended() {
    let w = world().await;
    let how = Event::LoginSucceeded {
        provider: None,
        subject: None,
        email: None,
    };
    let sid = sign_in::open_session(&w.s, "u1", 3600, how).await.unwrap();
    let who = sign_in::session_user(&w.s, sid.expose()).await.unwrap();
    assert_eq!(who.unwrap().id, "u1");
    w.clock.advance(3601);
    assert!(
        sign_in::session_user(&w.s, sid.expose())
            .await
            .unwrap()
            .is_none(),
        "expired"
    );
    let sid = sign_in::open_session(
        &w.s,
        "u1",
        3600,
        Event::LoginSucceeded {
            provider: None,
            subject: None,
            email: None,
        },
    )
    .await
    .unwrap();
    sign_in::end_session(&w.s, sid.expose()).await.unwrap();
    assert!(
        sign_in::session_user(&w.s, sid.expose())
            .await
            .unwrap()
            .is_none()
    );
}
