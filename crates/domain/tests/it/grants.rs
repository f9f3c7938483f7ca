//! The token endpoint's grants: authorization code and refresh.

use mcpgate_core::ErrorCode;
use mcpgate_domain::flows::revoke;

use crate::world::*;

#[tokio::test]
async fn a_code_is_bound_to_its_client_redirect_verifier_and_resource() {
    let w = world().await;
    let base = |code: &'static str| {
        vec![
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ]
    };
    for (what, client, change) in [
        ("another client", &w.other, None),
        (
            "another redirect",
            &w.client,
            Some(("redirect_uri", "http://127.0.0.1:9999/other")),
        ),
        (
            "another verifier",
            &w.client,
            Some(("code_verifier", &*"b".repeat(50))),
        ),
        (
            "another resource",
            &w.client,
            Some(("resource", "https://elsewhere.test/mcp")),
        ),
    ] {
        let code: &'static str = Box::leak(w.code().await.into_boxed_str());
        let mut pairs = base(code);
        if let Some((k, v)) = change {
            pairs.retain(|(name, _)| *name != k);
            pairs.push((k, v));
        }
        let err = w.exchange_as(client, &pairs).await.unwrap_err();
        let expected = if what == "another resource" {
            ErrorCode::InvalidTarget
        } else {
            ErrorCode::InvalidGrant
        };
        assert_eq!(err, expected, "{what}");
        // A failed attempt spends the code: the right request cannot follow it.
        assert_eq!(
            w.exchange(code).await.unwrap_err(),
            ErrorCode::InvalidGrant,
            "{what}: the code stays spent"
        );
    }
    assert_eq!(w.count("token_families").await, 0, "nothing was issued");
}

#[tokio::test]
async fn a_code_is_single_use_and_its_replay_by_its_client_revokes_what_it_issued() {
    let w = world().await;
    let code = w.code().await;
    let first = w.exchange(&code).await.unwrap();
    assert!(w.active(&first.access_token).await);
    // Presented again by another client: refused, and nothing is revoked.
    let by_other = w
        .exchange_as(
            &w.other,
            &[
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_eq!(by_other.unwrap_err(), ErrorCode::InvalidGrant);
    assert!(
        w.active(&first.access_token).await,
        "a stranger cannot revoke"
    );
    // By its own client: refused, and the family it issued ends.
    assert_eq!(
        w.exchange(&code).await.unwrap_err(),
        ErrorCode::InvalidGrant
    );
    assert!(!w.active(&first.access_token).await);
    let refresh = first.refresh_token.unwrap();
    assert_eq!(
        w.refresh(&refresh, &[]).await.unwrap_err(),
        ErrorCode::InvalidGrant
    );
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let w = world().await;
    let code = w.code().await;
    w.clock.advance(61);
    assert_eq!(
        w.exchange(&code).await.unwrap_err(),
        ErrorCode::InvalidGrant
    );
}

#[tokio::test]
async fn racing_exchanges_issue_one_family_and_the_loser_revokes_it() {
    let w = world().await;
    let code = w.code().await;
    let (a, b) = tokio::join!(w.exchange(&code), w.exchange(&code));
    let wins = [&a, &b].iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "exactly one exchange wins: {a:?} {b:?}");
    assert_eq!(w.count("token_families").await, 1);
    // The loser is a replay by the code's own client: the winner's tokens end
    // (RFC 9700 §4.2.4), which needs the family linked when the code was spent.
    let winner = a.or(b).unwrap();
    assert!(!w.active(&winner.access_token).await);
}

#[tokio::test]
async fn refresh_rotates_narrows_and_detects_reuse() {
    let w = world().await;
    let first = w.exchange(&w.code().await).await.unwrap();
    let r0 = first.refresh_token.unwrap();
    // Narrowing is allowed; widening is not.
    let narrowed = w.refresh(&r0, &[("scope", "op:add")]).await.unwrap();
    assert_eq!(narrowed.scope, "op:add");
    let r1 = narrowed.refresh_token.clone().unwrap();
    assert_ne!(r0, r1, "every use rotates");
    assert_eq!(
        w.refresh(&r1, &[("scope", "op:add op:admin")])
            .await
            .unwrap_err(),
        ErrorCode::InvalidScope
    );
    assert_eq!(
        w.refresh(&r1, &[("resource", "https://elsewhere.test/mcp")])
            .await
            .unwrap_err(),
        ErrorCode::InvalidTarget
    );
    // Within the grace period a duplicate gets the same answer.
    let again = w.refresh(&r0, &[("scope", "op:add")]).await.unwrap();
    assert_eq!(again.refresh_token, narrowed.refresh_token);
    // After it, reuse of the spent token ends the family, successor included.
    w.clock.advance(w.s.cfg.refresh_grace_secs + 1);
    assert_eq!(
        w.refresh(&r0, &[]).await.unwrap_err(),
        ErrorCode::InvalidGrant
    );
    assert_eq!(
        w.refresh(&r1, &[]).await.unwrap_err(),
        ErrorCode::InvalidGrant
    );
    assert!(!w.active(&narrowed.access_token).await);
}

/// RFC 6749 §6: a refresh token is bound to the client it was issued to; another
/// client presenting it learns nothing and the token stays its owner's.
#[tokio::test]
async fn a_refresh_token_is_its_clients_only() {
    let w = world().await;
    let first = w.exchange(&w.code().await).await.unwrap();
    let r0 = first.refresh_token.unwrap();
    let req = mcpgate_domain::flows::refresh::RefreshRequest {
        refresh_token: &r0,
        scope: None,
        resource: None,
        dpop_jkt: None,
    };
    let err = mcpgate_domain::flows::refresh::refresh(&w.s, &w.other, req)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidGrant);
    assert!(
        w.active(&first.access_token).await,
        "the owner's access stands"
    );
    assert!(
        w.refresh(&r0, &[]).await.is_ok(),
        "the owner can still refresh"
    );
}

#[tokio::test]
async fn revoking_a_grant_ends_its_tokens_and_its_unspent_codes() {
    let w = world().await;
    let issued = w.exchange(&w.code().await).await.unwrap();
    let pending = w.code().await;
    assert!(
        revoke::revoke_grant(&w.s, "g1", &mcpgate_domain::Actor::Operator)
            .await
            .unwrap()
    );
    assert!(!w.active(&issued.access_token).await);
    assert!(w.s.revoked.is_revoked(&issued_family(&w).await));
    assert_eq!(
        w.refresh(issued.refresh_token.as_deref().unwrap(), &[])
            .await
            .unwrap_err(),
        ErrorCode::InvalidGrant
    );
    assert_eq!(
        w.exchange(&pending).await.unwrap_err(),
        ErrorCode::InvalidGrant
    );
}

async fn issued_family(w: &World) -> String {
    sqlx::query_scalar("SELECT id FROM token_families LIMIT 1")
        .fetch_one(&w.raw)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_code_exchange_that_fails_at_any_step_leaves_the_code_unspent() {
    let w = world().await;
    // Each statement the exchange step writes, refused in turn by the database.
    for (op, table) in [
        ("UPDATE", "auth_codes"),
        ("INSERT", "token_families"),
        ("INSERT", "refresh_tokens"),
    ] {
        let code = w.code().await;
        w.break_table(op, table).await;
        let err = w.exchange(&code).await.unwrap_err();
        w.heal().await;
        assert_eq!(err, ErrorCode::ServerError, "{op} {table}");
        assert_eq!(
            w.count("token_families").await,
            0,
            "{op} {table}: no family"
        );
        assert_eq!(w.count("refresh_tokens").await, 0, "{op} {table}: no token");
        let used: Option<i64> =
            sqlx::query_scalar("SELECT used_at FROM auth_codes WHERE code_hash = $1")
                .bind(mcpgate_core::secret::hash_token(&code))
                .fetch_one(&w.raw)
                .await
                .unwrap();
        assert_eq!(used, None, "{op} {table}: the code is unspent");
        // ... so the client's retry completes the exchange, all of it.
        let issued = w.exchange(&code).await.unwrap();
        assert!(w.active(&issued.access_token).await);
        assert!(
            w.refresh(issued.refresh_token.as_deref().unwrap(), &[])
                .await
                .is_ok()
        );
        sqlx::query("DELETE FROM refresh_tokens")
            .execute(&w.raw)
            .await
            .unwrap();
        sqlx::query("UPDATE auth_codes SET family_id = NULL")
            .execute(&w.raw)
            .await
            .unwrap();
        sqlx::query("DELETE FROM token_families")
            .execute(&w.raw)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_refresh_rotation_that_fails_at_any_step_leaves_the_old_token_usable() {
    let w = world().await;
    let issued = w.exchange(&w.code().await).await.unwrap();
    let mut current = issued.refresh_token.unwrap();
    for (op, table) in [("UPDATE", "refresh_tokens"), ("INSERT", "refresh_tokens")] {
        let before = w.count("refresh_tokens").await;
        w.break_table(op, table).await;
        let err = w.refresh(&current, &[]).await.unwrap_err();
        w.heal().await;
        assert_eq!(err, ErrorCode::ServerError, "{op} {table}");
        assert_eq!(
            w.count("refresh_tokens").await,
            before,
            "{op} {table}: no successor"
        );
        let rotated: Option<i64> =
            sqlx::query_scalar("SELECT rotated_at FROM refresh_tokens WHERE token_hash = $1")
                .bind(mcpgate_core::secret::hash_token(&current))
                .fetch_one(&w.raw)
                .await
                .unwrap();
        assert_eq!(
            rotated, None,
            "{op} {table}: the presented token is not spent"
        );
        // The client's retry rotates normally, and nothing was revoked on the way.
        let next = w.refresh(&current, &[]).await.unwrap();
        assert!(w.active(&next.access_token).await);
        current = next.refresh_token.unwrap();
    }
}

#[tokio::test]
async fn a_grant_revoked_during_an_exchange_issues_nothing() {
    let w = world().await;
    let code = w.code().await;
    // The revocation lands after the exchange checked the grant and spent the code:
    // a trigger on that very write stands in for the racing revocation.
    sqlx::query(
        "CREATE TRIGGER racing_revocation AFTER UPDATE OF used_at ON auth_codes \
         BEGIN UPDATE grants SET revoked_at = 1 WHERE id = NEW.grant_id; END",
    )
    .execute(&w.raw)
    .await
    .unwrap();
    assert_eq!(
        w.exchange(&code).await.unwrap_err(),
        ErrorCode::InvalidGrant
    );
    assert_eq!(
        w.count("token_families").await,
        0,
        "no family outlives its grant"
    );
    assert_eq!(w.count("refresh_tokens").await, 0);
}
