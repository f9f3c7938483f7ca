//! The authorization endpoint's rules (OAuth 2.1 §4.1.1): what is checked before
//! anything may be redirected, what is sent back to the client, and consent.

use mcpgate_core::{ErrorCode, ScopeSet, pkce};
use mcpgate_domain::flows::authorize::{self, AuthorizeError, AuthorizeRequest};
use url::Url;

use crate::world::*;
use mcpgate_domain::store::prelude::*;

fn request(challenge: &str) -> AuthorizeRequest<'_> {
    AuthorizeRequest {
        client_id: Some("c1"),
        redirect_uri: Some(REDIRECT),
        response_type: Some("code"),
        state: Some("st"),
        code_challenge: Some(challenge),
        code_challenge_method: Some("S256"),
        resource: Some(RESOURCE),
        scope: Some("op:add"),
    }
}

/// The query of a redirect URL as pairs.
fn query(location: &str) -> Vec<(String, String)> {
    Url::parse(location)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn get<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn nothing_is_redirected_before_the_client_and_its_redirect_uri_are_verified() {
    let w = world().await;
    let challenge = pkce::challenge_of(VERIFIER);
    for (what, req) in [
        (
            "unknown client",
            AuthorizeRequest {
                client_id: Some("nobody"),
                ..request(&challenge)
            },
        ),
        (
            "no client",
            AuthorizeRequest {
                client_id: None,
                ..request(&challenge)
            },
        ),
        (
            "unregistered redirect",
            AuthorizeRequest {
                redirect_uri: Some("https://attacker.example/cb"),
                ..request(&challenge)
            },
        ),
        (
            // Every other check fails too: the redirect URI's is the one that counts.
            "unregistered redirect and no PKCE",
            AuthorizeRequest {
                redirect_uri: Some("https://attacker.example/cb"),
                code_challenge: None,
                ..request(&challenge)
            },
        ),
    ] {
        match authorize::validate(&w.s, &req).await {
            Err(AuthorizeError::Page(_)) => {}
            other => panic!("{what}: {other:?}"),
        }
    }
    assert_eq!(w.count("auth_requests").await, 0);
}

#[tokio::test]
async fn a_verified_client_is_told_what_is_wrong_with_state_and_iss() {
    let w = world().await;
    let challenge = pkce::challenge_of(VERIFIER);
    let base = request(&challenge);
    for (what, req, code) in [
        (
            "no PKCE",
            AuthorizeRequest {
                code_challenge: None,
                ..base
            },
            ErrorCode::InvalidRequest,
        ),
        (
            "plain PKCE",
            AuthorizeRequest {
                code_challenge_method: Some("plain"),
                ..base
            },
            ErrorCode::InvalidRequest,
        ),
        (
            "implicit grant",
            AuthorizeRequest {
                response_type: Some("token"),
                ..base
            },
            ErrorCode::UnsupportedResponseType,
        ),
        (
            "foreign resource",
            AuthorizeRequest {
                resource: Some("https://elsewhere.test/mcp"),
                ..base
            },
            ErrorCode::InvalidTarget,
        ),
    ] {
        match authorize::validate(&w.s, &req).await {
            Err(AuthorizeError::Redirect {
                redirect_uri,
                state,
                error,
            }) => {
                assert_eq!(redirect_uri, REDIRECT, "{what}");
                assert_eq!(state.as_deref(), Some("st"), "{what}");
                assert_eq!(error.code, code, "{what}");
                let location = authorize::error_redirect(
                    &w.s.cfg.issuer,
                    &redirect_uri,
                    state.as_deref(),
                    &error,
                );
                let q = query(&location);
                assert_eq!(get(&q, "error"), Some(code.as_str()), "{what}");
                assert_eq!(get(&q, "iss"), Some(w.s.cfg.issuer.as_str()), "{what}");
            }
            other => panic!("{what}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn approval_issues_one_code_for_the_request_and_consumes_it() {
    let w = world().await;
    let user = w.store.user("u1").await.unwrap().unwrap();
    let challenge = pkce::challenge_of(VERIFIER);
    let handle = authorize::validate(&w.s, &request(&challenge))
        .await
        .unwrap();
    let (req, client) = authorize::pending(&w.s, &handle).await.unwrap().unwrap();
    assert_eq!(client.client_id, "c1");
    assert_eq!(req.scope, ScopeSet::parse("op:add").unwrap());
    let approved = req.scope.clone();
    let location = authorize::approve(&w.s, &handle, &req, &user, &approved, None)
        .await
        .unwrap();
    let q = query(&location);
    assert!(location.starts_with(REDIRECT), "{location}");
    assert_eq!(get(&q, "state"), Some("st"));
    assert_eq!(get(&q, "iss"), Some(w.s.cfg.issuer.as_str()));
    // The request is consumed: it cannot be approved, or found, again.
    assert!(matches!(
        authorize::approve(&w.s, &handle, &req, &user, &approved, None).await,
        Err(AuthorizeError::Page(_))
    ));
    assert!(authorize::pending(&w.s, &handle).await.unwrap().is_none());
    // The code carries the approved scopes, merged into the person's grant.
    let tokens = w.exchange(get(&q, "code").unwrap()).await.unwrap();
    assert_eq!(tokens.scope, "op:add");
    let grant = w
        .store
        .live_grant("u1", "c1", RESOURCE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(grant.scope, ScopeSet::parse("op:add op:mult").unwrap());
}

#[tokio::test]
async fn a_denial_tells_the_client_access_denied_and_issues_nothing() {
    let w = world().await;
    let user = w.store.user("u1").await.unwrap().unwrap();
    let challenge = pkce::challenge_of(VERIFIER);
    let handle = authorize::validate(&w.s, &request(&challenge))
        .await
        .unwrap();
    let (req, _) = authorize::pending(&w.s, &handle).await.unwrap().unwrap();
    let location = authorize::deny(&w.s, &handle, &req, &user).await.unwrap();
    let q = query(&location);
    assert_eq!(get(&q, "error"), Some("access_denied"));
    assert_eq!(get(&q, "state"), Some("st"));
    assert!(get(&q, "code").is_none());
    assert_eq!(w.count("auth_codes").await, 0);
}

#[tokio::test]
async fn a_pending_request_expires() {
    let w = world().await;
    let challenge = pkce::challenge_of(VERIFIER);
    let handle = authorize::validate(&w.s, &request(&challenge))
        .await
        .unwrap();
    w.clock.advance(w.s.cfg.request_ttl_secs + 1);
    assert!(authorize::pending(&w.s, &handle).await.unwrap().is_none());
}
