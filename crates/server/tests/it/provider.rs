//! An OpenID provider these tests play themselves, and the ID-token checks against it (on loopback, with an
//! ES256 key they generate), so each rule can be broken on purpose: nonce, issuer,
//! audience, azp, expiry, `alg: none`, HMAC. The positive path and the browser flow run
//! against a real provider in tests-e2e/tests/idp_signin.test.mjs.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::routing::{get, post};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcpgate_core::secret::Secret;
use mcpgate_server::idp::{Identity, IdpError, IdpSettings, Preset, Registry};

pub struct FakeProvider {
    pub issuer: String,
    key: EncodingKey,
    pub id_token: Arc<Mutex<String>>,
}

pub async fn fake_provider() -> FakeProvider {
    let _ = rustls::crypto::ring::default_provider().install_default();
    use p256::pkcs8::EncodePrivateKey;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).unwrap();
    let sk = p256::ecdsa::SigningKey::from_slice(&seed).unwrap();
    let point = sk.verifying_key().to_sec1_point(false);
    let b = point.as_bytes();
    let jwk = json!({"kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig", "alg": "ES256",
        "x": URL_SAFE_NO_PAD.encode(&b[1..33]), "y": URL_SAFE_NO_PAD.encode(&b[33..65])});
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let id_token = Arc::new(Mutex::new(String::new()));
    let doc = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/auth"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
    });
    let tok = id_token.clone();
    let app = axum::Router::new()
        .route("/.well-known/openid-configuration", get(move || async move { Json(doc) }))
        .route("/jwks", get(move || async move { Json(json!({"keys": [jwk]})) }))
        .route(
            "/token",
            post(move || async move {
                let t = tok.lock().unwrap().clone();
                Json(json!({"access_token": "at", "token_type": "Bearer", "expires_in": 300, "id_token": t}))
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    FakeProvider {
        issuer,
        key: EncodingKey::from_ec_der(sk.to_pkcs8_der().unwrap().as_bytes()),
        id_token,
    }
}

pub fn settings(issuer: &str) -> IdpSettings {
    IdpSettings {
        name: "fake".into(),
        display_name: "Fake".into(),
        preset: Preset::Oidc,
        issuer: issuer.into(),
        client_id: "client-1".into(),
        client_secret: Secret::new("the-client-secret"),
        allowed_domains: vec![],
        auto_create: false,
        groups_claim: None,
        groups_scope: None,
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

impl FakeProvider {
    pub fn claims(&self) -> Value {
        json!({"iss": self.issuer, "aud": "client-1", "sub": "person-1", "nonce": "n-1",
            "iat": now(), "exp": now() + 300, "email": "p@example.com", "email_verified": true})
    }
    pub fn sign(&self, claims: &Value) -> String {
        let mut h = Header::new(Algorithm::ES256);
        h.kid = Some("k1".into());
        jsonwebtoken::encode(&h, claims, &self.key).unwrap()
    }
    async fn finish_with(&self, id_token: String) -> Result<Identity, IdpError> {
        *self.id_token.lock().unwrap() = id_token;
        // A fresh registry each time: nothing cached between cases.
        let reg = Registry::new(vec![]);
        let p = settings(&self.issuer);
        reg.finish(
            &p,
            "http://127.0.0.1:9/cb",
            "code",
            "n-1",
            "verifier-0123456789-0123456789-0123456789",
        )
        .await
    }
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

#[tokio::test]
async fn a_good_id_token_names_the_person_and_every_broken_rule_is_refused() {
    let fp = fake_provider().await;
    let ok = fp.finish_with(fp.sign(&fp.claims())).await.unwrap();
    assert_eq!(ok.subject, "person-1");
    assert_eq!(ok.email.as_deref(), Some("p@example.com"));
    assert!(ok.email_verified);

    let mut unverified = fp.claims();
    unverified["email_verified"] = json!(false);
    assert!(
        !fp.finish_with(fp.sign(&unverified))
            .await
            .unwrap()
            .email_verified
    );

    type Breaker = Box<dyn Fn(&mut Value)>;
    let broken: Vec<(&str, Breaker)> = vec![
        ("another nonce", Box::new(|c| c["nonce"] = json!("n-2"))),
        (
            "no nonce",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("nonce");
            }),
        ),
        (
            "another issuer",
            Box::new(|c| c["iss"] = json!("http://127.0.0.1:1")),
        ),
        (
            "another audience",
            Box::new(|c| c["aud"] = json!("client-2")),
        ),
        (
            "an extra untrusted audience",
            Box::new(|c| c["aud"] = json!(["client-1", "client-2"])),
        ),
        (
            "azp of another client",
            Box::new(|c| c["azp"] = json!("client-2")),
        ),
        ("expired", Box::new(|c| c["exp"] = json!(now() - 600))),
    ];
    for (what, f) in broken {
        let mut c = fp.claims();
        f(&mut c);
        let r = fp.finish_with(fp.sign(&c)).await;
        assert!(matches!(r, Err(IdpError::IdToken(_))), "{what}: {r:?}");
    }
    // altered after signing
    let good = fp.sign(&fp.claims());
    let parts: Vec<&str> = good.split('.').collect();
    let mut c = fp.claims();
    c["sub"] = json!("admin");
    let altered = format!("{}.{}.{}", parts[0], b64(&c), parts[2]);
    assert!(matches!(
        fp.finish_with(altered).await,
        Err(IdpError::IdToken(_))
    ));
    // alg none
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "kid": "k1"})),
        b64(&fp.claims())
    );
    assert!(fp.finish_with(none).await.is_err(), "alg none");
    // HS256 with the client secret (OpenID Connect allows it; we do not)
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("k1".into());
    let hs = jsonwebtoken::encode(
        &h,
        &fp.claims(),
        &EncodingKey::from_secret(b"the-client-secret").unwrap(),
    )
    .unwrap();
    assert!(
        matches!(fp.finish_with(hs).await, Err(IdpError::IdToken(_))),
        "HS256"
    );
}

#[tokio::test]
async fn a_discovery_document_for_another_issuer_is_refused() {
    let fp = fake_provider().await;
    // the same server under another name: its document names 127.0.0.1, not localhost
    let other = fp.issuer.replace("127.0.0.1", "localhost");
    let reg = Registry::new(vec![]);
    let r = reg.begin(&settings(&other), "http://127.0.0.1:9/cb").await;
    assert!(matches!(r, Err(IdpError::Discovery(_))));
    assert!(
        reg.begin(&settings(&fp.issuer), "http://127.0.0.1:9/cb")
            .await
            .is_ok()
    );
}
