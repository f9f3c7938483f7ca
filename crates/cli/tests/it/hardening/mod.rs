//! Negative tests of the hardening rules (issue 13): each test names the rule it holds
//! and fails if the hole it closes opens again.

mod accounts;
mod consent;
mod keys_at_rest;
mod limits;
mod login;
mod rate_limits;
mod registration;
mod secrets;
mod seeding;
mod tokens;

use std::collections::HashMap;

use crate::support::{TestApp, body_json};

/// (status, error code) of a token-endpoint error answer.
pub async fn token_error(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    (
        status,
        body_json(r).await["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// The query parameters of a redirect.
pub fn query_of(location: &str) -> HashMap<String, String> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// Registers an operator's client directly in the store (what `mcpgate client add`
/// does): confidential when `secret` is given, created by a person when `owner` is.
pub async fn operator_client(
    app: &TestApp,
    secret: Option<&mcpgate_core::secret::Secret>,
    owner: Option<&str>,
) -> String {
    let id = mcpgate_core::secret::random_id();
    app.rules
        .store
        .insert_client(&mcpgate_domain::model::Client {
            client_id: id.clone(),
            secret_hash: secret.map(|s| s.hash()),
            name: "Operator client".into(),
            redirect_uris: vec![crate::support::REDIRECT.into()],
            kind: mcpgate_domain::model::ClientKind::Preregistered,
            auth_method: mcpgate_domain::model::AuthMethod::for_secret(secret.is_some()),
            can_introspect: false,
            owner_user_id: owner.map(str::to_owned),
            registration_hash: None,
            metadata: serde_json::json!({}),
            fetched_until: None,
            created_at: 0,
            last_used_at: None,
        })
        .await
        .unwrap();
    id
}
