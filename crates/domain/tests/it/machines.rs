//! Machines and enterprises: the client_credentials grant for machine clients (with a
//! secret or a signed assertion, RFC 7523 §2.2), and ID-JAGs from a trusted identity
//! provider (enterprise-managed authorization). Every negative case named by the
//! rules: a wrong secret or assertion, a replayed `jti`, a wrong audience, an
//! untrusted issuer, an expired assertion, a scope beyond what is allowed.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mcpgate_core::secret::Secret;
use mcpgate_core::{ErrorCode, ScopeSet};
use mcpgate_domain::Actor;
use mcpgate_domain::flows::client_auth::{self, CLIENT_ASSERTION_TYPE, Presented};
use mcpgate_domain::flows::client_credentials::{self, CredentialsRequest};
use mcpgate_domain::flows::id_jag::{self, JwtBearerRequest};
use mcpgate_domain::flows::{admin, groups, identities, introspect, revoke};
use mcpgate_domain::model::{Client, ClientKeys, Machine, TrustedIssuer};
use mcpgate_domain::store::prelude::*;
use serde_json::{Value, json};

use crate::world::*;

const ISSUER: &str = "https://auth.example.test";
const IDP: &str = "https://idp.example.test";
const IDP_KEYS: &str = "https://idp.example.test/jwks";

/// An Ed25519 key that signs JWTs, with its public JWK.
struct Key {
    kid: String,
    enc: EncodingKey,
    jwk: Value,
}

impl Key {
    fn new(kid: &str) -> Self {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).unwrap();
        let sk = ed25519_dalek::SigningKey::from_bytes(&seed);
        Key {
            kid: kid.into(),
            enc: EncodingKey::from_ed_der(sk.to_pkcs8_der().unwrap().as_bytes()),
            jwk: json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": "EdDSA",
                "x": URL_SAFE_NO_PAD.encode(sk.verifying_key().as_bytes())}),
        }
    }

    fn set(&self) -> Value {
        json!({"keys": [self.jwk.clone()]})
    }

    fn sign(&self, typ: Option<&str>, claims: &Value) -> String {
        let mut h = Header::new(Algorithm::EdDSA);
        h.typ = typ.map(str::to_owned);
        h.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&h, claims, &self.enc).unwrap()
    }

    /// Signed with no `kid`, as the official Python SDK signs its assertions.
    fn sign_anonymously(&self, claims: &Value) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), claims, &self.enc).unwrap()
    }
}

fn machine(resources: &[&str]) -> Machine {
    Machine {
        scopes: ScopeSet::parse("op:add op:mult").unwrap(),
        resources: resources.iter().map(|r| r.to_string()).collect(),
    }
}

async fn machine_client(w: &World, keys: Option<ClientKeys>) -> (Client, Option<Secret>) {
    let new = admin::NewClient {
        name: "Nightly report".into(),
        redirect_uris: vec![],
        confidential: false,
        introspection: false,
        owner: None,
        machine: Some(machine(&[RESOURCE])),
        keys,
        secret_in_body: false,
    };
    admin::create_client(&w.s, new, &Actor::Operator)
        .await
        .unwrap()
}

async fn credentials(
    w: &World,
    client: &Client,
    scope: Option<&str>,
    resource: Option<&str>,
) -> Result<mcpgate_domain::flows::tokens::TokenResponse, ErrorCode> {
    client_credentials::grant(
        &w.s,
        client,
        CredentialsRequest {
            scope,
            resource,
            dpop_jkt: None,
        },
    )
    .await
    .map_err(|e| e.code)
}

#[tokio::test]
async fn a_machine_gets_tokens_for_what_the_operator_allowed_and_no_more() {
    let w = world().await;
    let (m, secret) = machine_client(&w, None).await;
    let secret = secret.expect("a machine without keys has a secret");
    // It authenticates as any confidential client does.
    let basic = Presented::Basic {
        client_id: m.client_id.clone(),
        secret: secret.expose().to_owned(),
    };
    let client = client_auth::authenticate(&w.s, &basic).await.unwrap();
    let t = credentials(&w, &client, None, None).await.unwrap();
    assert_eq!(t.scope, "op:add op:mult");
    assert!(
        t.refresh_token.is_none(),
        "no refresh token for client_credentials"
    );
    let claims =
        w.s.keys
            .verify(&t.access_token, &w.s.cfg.expectations(), w.s.now())
            .unwrap();
    assert_eq!(claims.sub, m.client_id, "the machine is its own subject");
    assert_eq!(claims.client_id, m.client_id);
    assert!(w.active(&t.access_token).await);
    // Narrower is fine; what is beyond is left out (RFC 6749 §3.3), and nothing but
    // what is beyond is invalid_scope; another resource is invalid_target.
    assert_eq!(
        credentials(&w, &client, Some("op:add"), Some(RESOURCE))
            .await
            .unwrap()
            .scope,
        "op:add"
    );
    assert_eq!(
        credentials(&w, &client, Some("op:add op:div"), None)
            .await
            .unwrap()
            .scope,
        "op:add"
    );
    assert_eq!(
        credentials(&w, &client, Some("op:div"), None)
            .await
            .unwrap_err(),
        ErrorCode::InvalidScope
    );
    assert_eq!(
        credentials(&w, &client, None, Some("https://elsewhere.test/mcp"))
            .await
            .unwrap_err(),
        ErrorCode::InvalidTarget
    );
    // A wrong secret authenticates nobody.
    let wrong = Presented::Basic {
        client_id: m.client_id.clone(),
        secret: "not-the-secret".into(),
    };
    assert_eq!(
        client_auth::authenticate(&w.s, &wrong)
            .await
            .unwrap_err()
            .code,
        ErrorCode::InvalidClient
    );
    // A client that is not a machine may not use the grant.
    assert_eq!(
        credentials(&w, &w.client, None, None).await.unwrap_err(),
        ErrorCode::UnauthorizedClient
    );
    // Removing the machine ends its tokens.
    revoke::delete_client(&w.s, &m.client_id, None, &Actor::Operator)
        .await
        .unwrap();
    assert!(!w.active(&t.access_token).await);
    assert!(
        w.s.revoked
            .is_revoked(&client_credentials::handle(&m.client_id))
    );
}

#[tokio::test]
async fn a_machine_needs_known_scopes_and_resources() {
    let w = world().await;
    for (scopes, resources) in [
        ("op:nope", vec![RESOURCE.to_owned()]),
        ("op:add", vec!["https://elsewhere.test/mcp".to_owned()]),
        ("op:add", vec![]),
    ] {
        let new = admin::NewClient {
            name: "m".into(),
            redirect_uris: vec![],
            confidential: false,
            introspection: false,
            owner: None,
            machine: Some(Machine {
                scopes: ScopeSet::parse(scopes).unwrap(),
                resources,
            }),
            keys: None,
            secret_in_body: false,
        };
        assert!(
            admin::create_client(&w.s, new, &Actor::Operator)
                .await
                .is_err()
        );
    }
}

/// A client assertion as a machine signs one for this server.
fn assertion(key: &Key, client_id: &str, tweak: impl FnOnce(&mut Value)) -> Value {
    let mut c = json!({
        "iss": client_id, "sub": client_id, "aud": ISSUER,
        "iat": NOW, "exp": NOW + 60, "jti": mcpgate_core::secret::random_id(),
    });
    tweak(&mut c);
    let _ = key;
    c
}

async fn by_assertion(w: &World, jwt: String) -> Result<Client, ErrorCode> {
    client_auth::authenticate(
        &w.s,
        &Presented::Assertion {
            client_id: None,
            assertion: jwt,
        },
    )
    .await
    .map_err(|e| e.code)
}

#[tokio::test]
async fn a_machine_authenticates_with_its_signed_assertion_once_each() {
    let w = world().await;
    let key = Key::new("k1");
    let (m, secret) = machine_client(&w, Some(ClientKeys::Set(key.set()))).await;
    assert!(secret.is_none(), "keys instead of a secret");
    assert_eq!(
        CLIENT_ASSERTION_TYPE,
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    let good = assertion(&key, &m.client_id, |_| {});
    let jwt = key.sign(Some("JWT"), &good);
    let client = by_assertion(&w, jwt.clone()).await.unwrap();
    assert_eq!(client.client_id, m.client_id);
    assert!(credentials(&w, &client, None, None).await.is_ok());
    // The same assertion again: a replay.
    assert_eq!(
        by_assertion(&w, jwt).await.unwrap_err(),
        ErrorCode::InvalidClient
    );
    let other = Key::new("k1");
    let id = m.client_id.clone();
    for (what, jwt) in [
        (
            "another key",
            other.sign(None, &assertion(&other, &id, |_| {})),
        ),
        (
            "the token endpoint as audience",
            key.sign(
                None,
                &assertion(&key, &id, |c| c["aud"] = json!(format!("{ISSUER}/token"))),
            ),
        ),
        (
            "a second audience",
            key.sign(
                None,
                &assertion(&key, &id, |c| c["aud"] = json!([ISSUER, "https://x"])),
            ),
        ),
        (
            "expired",
            key.sign(None, &assertion(&key, &id, |c| c["exp"] = json!(NOW - 120))),
        ),
        (
            "too long-lived",
            key.sign(
                None,
                &assertion(&key, &id, |c| c["exp"] = json!(NOW + 7200)),
            ),
        ),
        (
            "iss is not the client",
            key.sign(None, &assertion(&key, &id, |c| c["iss"] = json!("someone"))),
        ),
        (
            "no jti",
            key.sign(None, &assertion(&key, &id, |c| c["jti"] = json!(""))),
        ),
        (
            "an access token's typ",
            key.sign(Some("at+jwt"), &assertion(&key, &id, |_| {})),
        ),
        (
            "an ID-JAG's typ",
            key.sign(Some(id_jag::TYP), &assertion(&key, &id, |_| {})),
        ),
    ] {
        assert_eq!(
            by_assertion(&w, jwt).await.unwrap_err(),
            ErrorCode::InvalidClient,
            "{what}"
        );
    }
    // A client registered with a secret cannot switch to assertions.
    let (with_secret, _) = machine_client(&w, None).await;
    let jwt = key.sign(None, &assertion(&key, &with_secret.client_id, |_| {}));
    assert_eq!(
        by_assertion(&w, jwt).await.unwrap_err(),
        ErrorCode::InvalidClient
    );
}

#[tokio::test]
async fn keys_at_a_uri_are_fetched_once_and_again_when_a_new_key_appears() {
    let w = world().await;
    let uri = "https://machine.example.test/jwks";
    let k1 = Key::new("k1");
    w.docs.publish(uri, k1.set());
    let (m, _) = machine_client(&w, Some(ClientKeys::Uri(uri.into()))).await;
    let id = m.client_id.clone();
    for _ in 0..3 {
        by_assertion(&w, k1.sign(None, &assertion(&k1, &id, |_| {})))
            .await
            .unwrap();
    }
    let fetched = |w: &World| w.docs.fetches.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(fetched(&w), 1, "kept between assertions");
    // The machine rotates: its new key is fetched once the set may be fetched again.
    let k2 = Key::new("k2");
    w.docs
        .publish(uri, json!({"keys": [k1.jwk.clone(), k2.jwk.clone()]}));
    w.clock.advance(61);
    by_assertion(
        &w,
        k2.sign(
            None,
            &assertion(&k2, &id, |c| {
                c["iat"] = json!(NOW + 61);
                c["exp"] = json!(NOW + 120);
            }),
        ),
    )
    .await
    .unwrap();
    assert_eq!(fetched(&w), 2);
}

/// An ID-JAG as the trusted provider issues one for client `client`.
fn id_jag_claims(client: &str, tweak: impl FnOnce(&mut Value)) -> Value {
    let mut c = json!({
        "iss": IDP, "sub": "employee-42", "aud": ISSUER, "resource": RESOURCE,
        "client_id": client, "jti": mcpgate_core::secret::random_id(),
        "iat": NOW, "exp": NOW + 300, "scope": "op:add op:mult",
        "email": "bea@example.com", "email_verified": true,
    });
    tweak(&mut c);
    c
}

async fn enterprise(w: &World) -> (Key, Client) {
    let key = Key::new("idp-1");
    w.docs.publish(IDP_KEYS, key.set());
    identities::trust_issuer(
        &w.s,
        &TrustedIssuer {
            name: "corp".into(),
            issuer: IDP.into(),
            jwks_uri: IDP_KEYS.into(),
            allowed_domains: vec!["example.com".into()],
            auto_create: true,
            exchange_audiences: vec![],
            exchange_clients: vec![],
            created_at: NOW,
        },
        &Actor::Operator,
    )
    .await
    .unwrap();
    // The agent: a confidential client the operator registered.
    let new = admin::NewClient {
        name: "Agent".into(),
        redirect_uris: vec![],
        confidential: true,
        introspection: false,
        owner: None,
        machine: None,
        keys: None,
        secret_in_body: false,
    };
    let (agent, _) = admin::create_client(&w.s, new, &Actor::Operator)
        .await
        .unwrap();
    (key, agent)
}

async fn present(
    w: &World,
    client: &Client,
    jwt: &str,
    scope: Option<&str>,
) -> Result<mcpgate_domain::flows::tokens::TokenResponse, ErrorCode> {
    let req = JwtBearerRequest {
        assertion: jwt,
        scope,
        resource: None,
        dpop_jkt: None,
    };
    id_jag::grant(&w.s, client, req).await.map_err(|e| e.code)
}

#[tokio::test]
async fn a_trusted_providers_id_jag_gets_a_person_a_token_without_a_browser() {
    let w = world().await;
    let (key, agent) = enterprise(&w).await;
    let jwt = key.sign(Some(id_jag::TYP), &id_jag_claims(&agent.client_id, |_| {}));
    // Asked for less than asserted: the intersection.
    let t = present(&w, &agent, &jwt, Some("op:add")).await.unwrap();
    assert_eq!(t.scope, "op:add");
    assert!(t.refresh_token.is_none());
    let bea = w
        .store
        .user_by_name("bea")
        .await
        .unwrap()
        .expect("created for the verified email");
    let claims = introspect::introspect(&w.s, &t.access_token, "x")
        .await
        .unwrap();
    assert_eq!(claims["sub"], bea.id.as_str());
    assert_eq!(claims["client_id"], agent.client_id.as_str());
    // The person sees the grant, and revoking it ends the token.
    let grant = w
        .store
        .live_grant(&bea.id, &agent.client_id, RESOURCE)
        .await
        .unwrap()
        .expect("a grant the person can see");
    revoke::revoke_grant(&w.s, &grant.id, &Actor::Person(bea.id.clone()))
        .await
        .unwrap();
    assert!(!w.active(&t.access_token).await);
    // The same ID-JAG again: a replay.
    assert_eq!(
        present(&w, &agent, &jwt, None).await.unwrap_err(),
        ErrorCode::InvalidGrant
    );
}

#[tokio::test]
async fn an_id_jag_is_refused_for_every_flaw_with_invalid_grant() {
    let w = world().await;
    let (key, agent) = enterprise(&w).await;
    let id = agent.client_id.clone();
    let stranger = Key::new("idp-1");
    let sign = |c: Value| key.sign(Some(id_jag::TYP), &c);
    for (what, jwt) in [
        (
            "wrong audience",
            sign(id_jag_claims(&id, |c| {
                c["aud"] = json!("https://other.test")
            })),
        ),
        (
            "two audiences",
            sign(id_jag_claims(&id, |c| {
                c["aud"] = json!([ISSUER, "https://x"])
            })),
        ),
        (
            "untrusted issuer",
            sign(id_jag_claims(&id, |c| {
                c["iss"] = json!("https://evil.test")
            })),
        ),
        (
            "signed by another key",
            stranger.sign(Some(id_jag::TYP), &id_jag_claims(&id, |_| {})),
        ),
        (
            "expired",
            sign(id_jag_claims(&id, |c| c["exp"] = json!(NOW - 120))),
        ),
        (
            "too long-lived",
            sign(id_jag_claims(&id, |c| c["exp"] = json!(NOW + 7200))),
        ),
        (
            "issued to another client",
            sign(id_jag_claims(&id, |c| c["client_id"] = json!("other"))),
        ),
        (
            "another resource",
            sign(id_jag_claims(&id, |c| {
                c["resource"] = json!("https://x.test/mcp")
            })),
        ),
        (
            "no resource",
            sign(id_jag_claims(&id, |c| {
                c.as_object_mut().unwrap().remove("resource");
            })),
        ),
        (
            "not an ID-JAG",
            key.sign(Some("JWT"), &id_jag_claims(&id, |_| {})),
        ),
        (
            "unverified email, no link",
            sign(id_jag_claims(&id, |c| c["email_verified"] = json!(false))),
        ),
    ] {
        assert_eq!(
            present(&w, &agent, &jwt, None).await.unwrap_err(),
            ErrorCode::InvalidGrant,
            "{what}"
        );
    }
    // Scopes beyond the assertion are not issued: asked for op:mult, asserted op:add.
    let jwt = sign(id_jag_claims(&id, |c| c["scope"] = json!("op:add")));
    assert_eq!(
        present(&w, &agent, &jwt, Some("op:mult"))
            .await
            .unwrap_err(),
        ErrorCode::InvalidScope
    );
    // A public client may not present one.
    let jwt = sign(id_jag_claims(&w.client.client_id, |_| {}));
    assert_eq!(
        present(&w, &w.client, &jwt, None).await.unwrap_err(),
        ErrorCode::UnauthorizedClient
    );
}

#[tokio::test]
async fn an_id_jag_gives_no_scope_the_person_may_not_hold() {
    let w = world().await;
    let (key, agent) = enterprise(&w).await;
    groups::add_group(&w.s, "finance", "", None, &Actor::Operator)
        .await
        .unwrap();
    groups::set_scope_groups(&w.s, "op:mult", &["finance".into()], &Actor::Operator)
        .await
        .unwrap();
    let jwt = key.sign(Some(id_jag::TYP), &id_jag_claims(&agent.client_id, |_| {}));
    let t = present(&w, &agent, &jwt, None).await.unwrap();
    assert_eq!(t.scope, "op:add", "op:mult is the finance group's");
}

/// A Client ID Metadata Document that declares `private_key_jwt` with its keys is a
/// confidential client: its assertions are verified with the document's keys (given,
/// or at its `jwks_uri`, fetched as a stranger's), and it is never treated as public.
#[tokio::test]
async fn a_metadata_document_with_keys_is_a_confidential_client() {
    use mcpgate_domain::flows::metadata_document;
    use mcpgate_domain::model::AuthMethod;
    let w = world().await;
    admin::set_redirect_uri(
        &w.s,
        "https://chat.example.test/callback",
        true,
        &Actor::Operator,
    )
    .await
    .unwrap();
    let key = Key::new("doc-key");
    let doc = |url: &str, keys: Value| {
        let mut d = json!({"client_id": url, "client_name": "Chat",
            "redirect_uris": ["https://chat.example.test/callback"],
            "token_endpoint_auth_method": "private_key_jwt"});
        d.as_object_mut()
            .unwrap()
            .extend(keys.as_object().unwrap().clone());
        d
    };
    let given = "https://chat.example.test/oauth/given.json";
    w.docs
        .publish(given, doc(given, json!({"jwks": key.set()})));
    let at_uri = "https://chat.example.test/oauth/at-uri.json";
    w.docs.publish(
        at_uri,
        doc(
            at_uri,
            json!({"jwks_uri": "https://chat.example.test/jwks"}),
        ),
    );
    w.docs.publish("https://chat.example.test/jwks", key.set());
    for url in [given, at_uri] {
        let c = metadata_document::client_for(&w.s, url).await.unwrap();
        assert_eq!(c.auth_method, AuthMethod::PrivateKeyJwt, "{url}");
        assert!(
            !c.is_public(),
            "{url}: a document with keys is confidential"
        );
        let jwt = key.sign(None, &assertion(&key, url, |_| {}));
        assert_eq!(by_assertion(&w, jwt).await.unwrap().client_id, url);
        let stranger = Key::new("doc-key");
        let forged = stranger.sign(None, &assertion(&stranger, url, |_| {}));
        assert_eq!(
            by_assertion(&w, forged).await.unwrap_err(),
            ErrorCode::InvalidClient,
            "{url}: another key"
        );
    }
    // Keys both given and at a URI, or none at all, make no client.
    for (name, keys) in [
        (
            "both",
            json!({"jwks": key.set(), "jwks_uri": "https://chat.example.test/jwks"}),
        ),
        ("none", json!({})),
    ] {
        let url = format!("https://chat.example.test/oauth/{name}.json");
        w.docs.publish(&url, doc(&url, keys));
        assert!(
            metadata_document::client_for(&w.s, &url).await.is_err(),
            "{name}"
        );
    }
}

/// RFC 7515 §4.1.4: `kid` is optional. An assertion without one verifies with whichever
/// key of the client's set signed it (two keys, as during a rotation), and with no
/// other key.
#[tokio::test]
async fn an_assertion_without_kid_verifies_with_the_key_that_signed_it() {
    let w = world().await;
    let (old, new) = (Key::new("old"), Key::new("new"));
    let set = json!({"keys": [old.jwk.clone(), new.jwk.clone()]});
    let (m, _) = machine_client(&w, Some(ClientKeys::Set(set))).await;
    for key in [&old, &new] {
        let jwt = key.sign_anonymously(&assertion(key, &m.client_id, |_| {}));
        assert_eq!(by_assertion(&w, jwt).await.unwrap().client_id, m.client_id);
    }
    let stranger = Key::new("new");
    let jwt = stranger.sign_anonymously(&assertion(&stranger, &m.client_id, |_| {}));
    assert_eq!(
        by_assertion(&w, jwt).await.unwrap_err(),
        ErrorCode::InvalidClient
    );
}
