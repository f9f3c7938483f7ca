//! Who may hold which scope: a scope restricted to a group reaches only its members,
//! at consent, code exchange, refresh and introspection, and losing it takes effect at
//! once. `op:mult` is restricted to the group `finance` in these tests; `op:add` stays
//! open.

use mcpgate_core::ScopeSet;
use mcpgate_domain::Actor;
use mcpgate_domain::flows::authorize;
use mcpgate_domain::flows::{entitlements, groups, introspect};
use mcpgate_domain::model::MemberSource;
use mcpgate_domain::store::prelude::*;

use crate::world::*;

const OP: &Actor = &Actor::Operator;

fn set(s: &str) -> ScopeSet {
    ScopeSet::parse(s).unwrap()
}

/// `finance` exists and `op:mult` is restricted to it; ada is a member when `member`.
async fn restricted(w: &World, member: bool) {
    groups::add_group(&w.s, "finance", "", None, OP)
        .await
        .unwrap();
    if member {
        groups::add_member(&w.s, "finance", "ada", OP)
            .await
            .unwrap();
    }
    groups::set_scope_groups(&w.s, "op:mult", &["finance".into()], OP)
        .await
        .unwrap();
}

async fn consent(
    w: &World,
    scope: &str,
    approved: &str,
) -> (authorize::Offer, Result<String, String>) {
    w.consent(scope, approved, None).await
}

#[tokio::test]
async fn the_consent_page_offers_only_what_the_person_may_hold_and_a_forged_form_gets_no_more() {
    let w = world().await;
    restricted(&w, false).await;
    let (offer, code) = consent(&w, "op:add op:mult", "op:add op:mult").await;
    assert_eq!(offer.offered, set("op:add"));
    assert_eq!(offer.withheld, set("op:mult"));
    let tokens = w.exchange(&code.unwrap()).await.unwrap();
    assert_eq!(tokens.scope, "op:add", "the client gets the rest");
    let grant = w
        .store
        .live_grant("u1", "c1", RESOURCE)
        .await
        .unwrap()
        .unwrap();
    assert!(
        grant.withheld.contains("op:mult"),
        "the person sees what was withheld"
    );
    // Asking only for what the person may not hold: access_denied, nothing issued.
    let (_, refused) = consent(&w, "op:mult", "op:mult").await;
    assert_eq!(refused.unwrap_err(), "access_denied");
    // A member is offered it.
    groups::add_member(&w.s, "finance", "ada", OP)
        .await
        .unwrap();
    let (offer, code) = consent(&w, "op:add op:mult", "op:add op:mult").await;
    assert_eq!(offer.offered, set("op:add op:mult"));
    assert!(offer.withheld.is_empty());
    assert_eq!(
        w.exchange(&code.unwrap()).await.unwrap().scope,
        "op:add op:mult"
    );
    let grant = w
        .store
        .live_grant("u1", "c1", RESOURCE)
        .await
        .unwrap()
        .unwrap();
    assert!(grant.withheld.is_empty(), "held now, so no longer withheld");
}

#[tokio::test]
async fn a_code_issued_before_the_person_left_the_group_carries_only_what_remains() {
    let w = world().await;
    restricted(&w, true).await;
    let code = w.code().await; // op:add op:mult
    groups::remove_member(&w.s, "finance", "ada", OP)
        .await
        .unwrap();
    let tokens = w.exchange(&code).await.unwrap();
    assert_eq!(tokens.scope, "op:add");
    let claims = introspect::introspect(&w.s, &tokens.access_token, "c1")
        .await
        .unwrap();
    assert_eq!(claims["scope"], "op:add", "the JWT and introspection agree");
}

#[tokio::test]
async fn leaving_the_group_revokes_the_tokens_narrows_the_grant_and_the_refresh_keeps_working() {
    let w = world().await;
    restricted(&w, true).await;
    let first = w.exchange(&w.code().await).await.unwrap();
    assert_eq!(first.scope, "op:add op:mult");
    let refresh = first.refresh_token.clone().unwrap();
    assert!(
        groups::remove_member(&w.s, "finance", "ada", OP)
            .await
            .unwrap()
    );
    // The access token that carried op:mult is refused at once (its family's handle
    // is revoked: the guard's list and introspection agree).
    assert!(!w.active(&first.access_token).await);
    let family = first_family(&w, &first.access_token);
    assert!(w.s.revoked.is_revoked(&family), "pushed to the guards");
    // The grant narrowed; the withdrawn scope is listed for the person.
    let grant = w
        .store
        .live_grant("u1", "c1", RESOURCE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(grant.scope, set("op:add"));
    assert_eq!(grant.withheld, set("op:mult"));
    // The client's refresh token still works, for what remains.
    let next = w.refresh(&refresh, &[]).await.unwrap();
    assert_eq!(next.scope, "op:add");
    assert!(w.active(&next.access_token).await);
    // Asking for the lost scope explicitly is asking for more than the grant holds.
    assert_eq!(
        w.refresh(
            next.refresh_token.as_deref().unwrap(),
            &[("scope", "op:add op:mult")]
        )
        .await
        .unwrap_err(),
        mcpgate_core::ErrorCode::InvalidScope
    );
    // The event says what was withdrawn, from whom.
    let events = audit(&w, "scopes_withdrawn").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].user_id.as_deref(), Some("u1"));
    assert!(events[0].detail.contains("op:mult"), "{}", events[0].detail);
}

#[tokio::test]
async fn restricting_a_scope_takes_it_from_everyone_outside_the_group() {
    let w = world().await;
    let first = w.exchange(&w.code().await).await.unwrap();
    assert_eq!(first.scope, "op:add op:mult", "open before");
    restricted(&w, false).await;
    assert!(!w.active(&first.access_token).await);
    let next = w
        .refresh(first.refresh_token.as_deref().unwrap(), &[])
        .await
        .unwrap();
    assert_eq!(next.scope, "op:add");
    // Opening it again gives it back at the next consent (not silently to old grants).
    groups::set_scope_groups(&w.s, "op:mult", &[], OP)
        .await
        .unwrap();
    let e = entitlements::entitled(&w.s, "u1", &set("op:mult"))
        .await
        .unwrap();
    assert_eq!(e.held, set("op:mult"));
}

#[tokio::test]
async fn introspection_refuses_a_token_whose_scope_the_person_lost_even_before_any_revocation() {
    let w = world().await;
    restricted(&w, true).await;
    let first = w.exchange(&w.code().await).await.unwrap();
    // Membership ends behind the flows' back (as a provider's claim would, were the
    // withdrawal not run): the one decision still refuses the token.
    w.store
        .remove_member("finance", "u1", MemberSource::Manual)
        .await
        .unwrap();
    assert!(!w.active(&first.access_token).await);
    let next = w
        .refresh(first.refresh_token.as_deref().unwrap(), &[])
        .await
        .unwrap();
    assert_eq!(next.scope, "op:add", "nor does a refresh return it");
}

/// The person leaves the group while refreshes run: whichever order the steps take,
/// no live token carries the lost scope afterwards, and the client's refresh token
/// keeps working (it was never ended).
#[tokio::test]
async fn a_person_removed_while_a_refresh_runs_keeps_nothing_of_the_lost_scope() {
    for round in 0..20 {
        let w = world().await;
        restricted(&w, true).await;
        let first = w.exchange(&w.code().await).await.unwrap();
        let r0 = first.refresh_token.clone().unwrap();
        let (refreshed, removed) = tokio::join!(
            w.refresh(&r0, &[]),
            groups::remove_member(&w.s, "finance", "ada", OP)
        );
        assert!(removed.unwrap());
        let refreshed = refreshed.unwrap_or_else(|e| panic!("round {round}: {e:?}"));
        if refreshed.scope.contains("op:mult") {
            assert!(
                !w.active(&refreshed.access_token).await,
                "round {round}: issued before the removal, so revoked by it"
            );
        }
        let next = w
            .refresh(refreshed.refresh_token.as_deref().unwrap(), &[])
            .await
            .unwrap_or_else(|e| panic!("round {round}: the successor works: {e:?}"));
        assert_eq!(next.scope, "op:add", "round {round}");
        assert!(w.active(&next.access_token).await);
    }
}

#[tokio::test]
async fn a_group_that_alone_guards_a_scope_cannot_be_removed_and_another_can() {
    let w = world().await;
    restricted(&w, true).await;
    let err = groups::remove_group(&w.s, "finance", OP).await.unwrap_err();
    assert!(err.description.contains("op:mult"), "{}", err.description);
    groups::add_group(&w.s, "math", "", None, OP).await.unwrap();
    groups::set_scope_groups(&w.s, "op:mult", &["finance".into(), "math".into()], OP)
        .await
        .unwrap();
    let first = w.exchange(&w.code().await).await.unwrap();
    assert!(groups::remove_group(&w.s, "finance", OP).await.unwrap());
    // op:mult now needs math, which ada is not in: taken back.
    assert!(!w.active(&first.access_token).await);
    assert_eq!(
        w.store.scope_groups().await.unwrap(),
        vec![("op:mult".to_owned(), "math".to_owned())]
    );
}

#[tokio::test]
async fn every_change_names_who_made_it_and_bad_names_are_refused() {
    let w = world().await;
    let admin = Actor::Administrator("root".into());
    groups::add_group(&w.s, "finance", "Money", None, &admin)
        .await
        .unwrap();
    assert!(
        groups::add_group(&w.s, "finance", "", None, OP)
            .await
            .is_err(),
        "taken"
    );
    for bad in ["", " padded", "line\nbreak", &"x".repeat(200)] {
        assert!(
            groups::add_group(&w.s, bad, "", None, OP).await.is_err(),
            "{bad:?}"
        );
    }
    assert!(
        groups::add_group(&w.s, "corp", "", Some("no-such-idp"), OP)
            .await
            .is_err()
    );
    assert!(
        groups::add_member(&w.s, "finance", "nobody", OP)
            .await
            .is_err()
    );
    assert!(
        groups::add_member(&w.s, "nogroup", "ada", OP)
            .await
            .is_err()
    );
    assert!(
        groups::add_member(&w.s, "finance", "ada", &admin)
            .await
            .unwrap()
    );
    assert!(
        !groups::add_member(&w.s, "finance", "ada", &admin)
            .await
            .unwrap(),
        "no change"
    );
    assert!(
        groups::set_scope_groups(&w.s, "op:nope", &["finance".into()], OP)
            .await
            .is_err(),
        "unknown scope"
    );
    assert!(
        groups::set_scope_groups(&w.s, "op:mult", &["typo".into()], OP)
            .await
            .is_err(),
        "unknown group"
    );
    groups::set_scope_groups(&w.s, "op:mult", &["finance".into()], &admin)
        .await
        .unwrap();
    groups::remove_member(&w.s, "finance", "ada", &admin)
        .await
        .unwrap();
    for (event, by) in [
        ("group_added", "admin:root"),
        ("member_added", "admin:root"),
        ("scope_groups_set", "admin:root"),
        ("member_removed", "admin:root"),
    ] {
        let e = audit(&w, event).await;
        assert_eq!(e.len(), 1, "{event}");
        assert!(
            e[0].detail.contains(&format!("\"by\":\"{by}\"")),
            "{event}: {}",
            e[0].detail
        );
    }
}

#[tokio::test]
async fn a_providers_claim_sets_its_groups_only_and_never_a_membership_added_by_hand() {
    let w = world().await;
    w.store
        .upsert_identity_provider(&mcpgate_domain::model::IdentityProviderRow {
            name: "corp".into(),
            display_name: "Corp".into(),
            kind: "oidc".into(),
            issuer: "https://idp.example.test".into(),
            client_id: "x".into(),
            client_secret: "y".into(),
            allowed_domains: "[]".into(),
            auto_create: false,
            groups_claim: Some("groups".into()),
            groups_scope: None,
            created_at: NOW,
        })
        .await
        .unwrap();
    groups::add_group(&w.s, "finance", "", Some("corp"), OP)
        .await
        .unwrap();
    groups::add_group(&w.s, "staff", "", None, OP)
        .await
        .unwrap();
    groups::add_group(&w.s, "ops", "", Some("corp"), OP)
        .await
        .unwrap();
    groups::add_member(&w.s, "ops", "ada", OP).await.unwrap(); // by hand
    let claim = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    groups::sync_from_provider(&w.s, "corp", "u1", &claim(&["finance", "staff", "unknown"]))
        .await
        .unwrap();
    let mut mine = w.store.groups_of("u1").await.unwrap();
    mine.sort();
    assert_eq!(
        mine,
        ["finance", "ops"],
        "staff is not the provider's; unknown is ignored"
    );
    assert!(
        w.store.group("unknown").await.unwrap().is_none(),
        "never created"
    );
    groups::sync_from_provider(&w.s, "corp", "u1", &[])
        .await
        .unwrap();
    assert_eq!(
        w.store.groups_of("u1").await.unwrap(),
        ["ops"],
        "the hand-added one stays"
    );
    let removed = audit(&w, "member_removed").await;
    assert!(
        removed[0].detail.contains("\"by\":\"idp:corp\""),
        "{}",
        removed[0].detail
    );
}

/// The `sid` (token family) of an access token we issued.
fn first_family(w: &World, access: &str) -> String {
    w.s.keys
        .verify(access, &w.s.cfg.expectations(), w.s.now())
        .unwrap()
        .session_id
        .unwrap()
}

async fn audit(w: &World, event: &str) -> Vec<mcpgate_domain::model::AuditEvent> {
    let f = mcpgate_domain::model::AuditFilter {
        event: Some(event.into()),
        ..Default::default()
    };
    w.store.search_audit(&f, 100).await.unwrap()
}
