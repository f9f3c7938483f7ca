//! Who enters through an identity provider, over the store: the decision's table is
//! the unit test of `flows::admission`; these show that what it decides is done
//! (linked, created, refused and audited) and that a person linked once stays linked.

use mcpgate_domain::Actor;
use mcpgate_domain::flows::admin::{self, NewUser};
use mcpgate_domain::flows::admission::{self, NotAdmitted, Refusal, Trust, Vouched};
use mcpgate_domain::store::prelude::*;

use crate::world::*;

fn vouched(subject: &str, email: &str) -> Vouched {
    Vouched {
        subject: subject.into(),
        email: Some(email.into()),
        email_verified: true,
        hosted_domain: None,
        preferred_username: None,
        groups: None,
    }
}

async fn invite(w: &World, name: &str, email: &str, admin_role: bool) {
    admin::create_user(
        &w.s,
        NewUser {
            username: name.into(),
            email: Some(email.into()),
            admin: admin_role,
            password: None,
        },
        &Actor::Operator,
    )
    .await
    .unwrap();
}

async fn events(w: &World, name: &str) -> usize {
    w.store
        .audit_events(1000)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.event == name)
        .count()
}

#[tokio::test]
async fn an_invited_person_is_linked_once_then_known_by_their_identity() {
    let w = world().await;
    invite(&w, "bob", "bob@example.com", false).await;
    let domains = vec!["example.com".to_owned()];
    let trust = Trust {
        name: "corp",
        allowed_domains: &domains,
        auto_create: false,
        hosted_domains: false,
    };
    let u = admission::admit(&w.s, &trust, &vouched("s-bob", "bob@example.com"))
        .await
        .unwrap();
    assert_eq!(u.username, "bob");
    assert_eq!(events(&w, "idp_identity_linked").await, 1);
    // Linked now: the identity finds the account, whatever email it carries later.
    let again = admission::admit(&w.s, &trust, &vouched("s-bob", "b@elsewhere.example"))
        .await
        .unwrap();
    assert_eq!(again.id, u.id);
    assert_eq!(events(&w, "idp_identity_linked").await, 1);
}

#[tokio::test]
async fn an_administrators_email_is_refused_and_the_refusal_audited() {
    let w = world().await;
    invite(&w, "root", "root@example.com", true).await;
    let trust = Trust {
        name: "corp",
        allowed_domains: &[],
        auto_create: false,
        hosted_domains: false,
    };
    let r = admission::admit(&w.s, &trust, &vouched("s-x", "root@example.com")).await;
    assert!(matches!(
        r,
        Err(NotAdmitted::Refused(Refusal::AdministratorNotLinked))
    ));
    assert_eq!(events(&w, "idp_login_refused").await, 1);
    assert!(
        w.store
            .user_identity("corp", "s-x")
            .await
            .unwrap()
            .is_none(),
        "nothing linked"
    );
}

#[tokio::test]
async fn an_account_is_created_in_an_allowed_domain_only() {
    let w = world().await;
    let domains = vec!["example.com".to_owned()];
    let trust = Trust {
        name: "corp",
        allowed_domains: &domains,
        auto_create: true,
        hosted_domains: false,
    };
    let u = admission::admit(&w.s, &trust, &vouched("s-new", "new.person@example.com"))
        .await
        .unwrap();
    assert_eq!(u.username, "new.person");
    assert!(!u.is_admin);
    let refused = admission::admit(&w.s, &trust, &vouched("s-o", "o@other.example")).await;
    assert!(matches!(
        refused,
        Err(NotAdmitted::Refused(Refusal::DomainNotAllowed))
    ));
}
