//! Tokens signed by keys these tests generate, against every rule of [`super`]. The
//! same rules are exercised against a real OpenID provider's RS256, PS256 and ES256
//! tokens end to end (tests-e2e/tests/oidc_provider.test.mjs).

use super::*;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::Algorithm;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

pub(crate) const ISS: &str = "https://idp.example";
pub(crate) const AUD: &str = "https://mcp.example/mcp";
pub(crate) const NOW: i64 = 1_000_000;

pub(crate) struct TestKey {
    pub(crate) kid: &'static str,
    alg: Algorithm,
    enc: EncodingKey,
    pub(crate) jwk: Value,
}

fn random32() -> [u8; 32] {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).unwrap();
    b
}

pub(crate) fn es256(kid: &'static str) -> TestKey {
    use p256::pkcs8::EncodePrivateKey;
    let sk = p256::ecdsa::SigningKey::from_slice(&random32()).unwrap();
    let point = sk.verifying_key().to_sec1_point(false);
    let b = point.as_bytes();
    TestKey {
        kid,
        alg: Algorithm::ES256,
        enc: EncodingKey::from_ec_der(sk.to_pkcs8_der().unwrap().as_bytes()),
        jwk: json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(&b[1..33]), "y": URL_SAFE_NO_PAD.encode(&b[33..65])}),
    }
}

pub(crate) fn eddsa(kid: &'static str) -> TestKey {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let sk = ed25519_dalek::SigningKey::from_bytes(&random32());
    TestKey {
        kid,
        alg: Algorithm::EdDSA,
        enc: EncodingKey::from_ed_der(sk.to_pkcs8_der().unwrap().as_bytes()),
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": "EdDSA",
            "x": URL_SAFE_NO_PAD.encode(sk.verifying_key().as_bytes())}),
    }
}

pub(crate) fn claims() -> Value {
    json!({"iss": ISS, "aud": AUD, "sub": "person-1", "exp": NOW + 300, "iat": NOW,
        "client_id": "app", "scope": "op:add op:sub"})
}

impl TestKey {
    pub(crate) fn sign_with(&self, typ: Option<&str>, claims: &Value) -> String {
        let mut h = Header::new(self.alg);
        h.typ = typ.map(str::to_owned);
        h.kid = Some(self.kid.to_owned());
        jsonwebtoken::encode(&h, claims, &self.enc).unwrap()
    }
    pub(crate) fn sign(&self, claims: &Value) -> String {
        self.sign_with(Some("at+jwt"), claims)
    }
}

fn set(keys: &[&TestKey]) -> ProviderKeys {
    let jwks = json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()});
    ProviderKeys::from_jwks(&jwks)
}

pub(crate) fn rules() -> TokenRules {
    TokenRules::new(ISS, AUD)
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

#[test]
fn accepts_es256_and_eddsa_tokens_for_this_audience() {
    let (ec, ed) = (es256("ec"), eddsa("ed"));
    let keys = set(&[&ec, &ed]);
    assert_eq!(keys.len(), 2);
    for k in [&ec, &ed] {
        let p = verify(&k.sign(&claims()), &keys, &rules(), NOW).unwrap();
        assert_eq!(p.subject, "person-1");
        assert_eq!(p.client_id, "app");
        assert!(p.scopes.contains("op:add") && p.scopes.contains("op:sub"));
        assert_eq!(p.expires_at, NOW + 300);
    }
    // `aud` as an array containing this resource
    let mut c = claims();
    c["aud"] = json!(["https://other.example", AUD]);
    assert!(verify(&ec.sign(&c), &keys, &rules(), NOW).is_ok());
}

#[test]
fn scopes_come_from_scope_or_scp_and_the_client_from_azp() {
    let k = es256("k");
    let keys = set(&[&k]);
    let mut c = claims();
    c.as_object_mut().unwrap().remove("scope");
    c.as_object_mut().unwrap().remove("client_id");
    c["scp"] = json!(["op:mult", "op:div"]);
    c["azp"] = json!("spa");
    let p = verify(&k.sign(&c), &keys, &rules(), NOW).unwrap();
    assert!(p.scopes.contains("op:mult") && p.scopes.contains("op:div"));
    assert_eq!(p.client_id, "spa");
    c["scp"] = json!("op:add op:div");
    let p = verify(&k.sign(&c), &keys, &rules(), NOW).unwrap();
    assert!(p.scopes.contains("op:add") && p.scopes.contains("op:div"));
    c["scp"] = json!([1, 2]);
    assert_eq!(
        verify(&k.sign(&c), &keys, &rules(), NOW).unwrap_err(),
        JwtError::BadClaims
    );
    c["scp"] = json!("has\"quote");
    assert_eq!(
        verify(&k.sign(&c), &keys, &rules(), NOW).unwrap_err(),
        JwtError::BadClaims
    );
}

#[test]
fn refuses_another_audience_issuer_and_missing_claims() {
    let k = es256("k");
    let keys = set(&[&k]);
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims();
        f(&mut c);
        verify(&k.sign(&c), &keys, &rules(), NOW).unwrap_err()
    };
    assert_eq!(
        with(&|c| c["aud"] = json!("https://other.example/mcp")),
        JwtError::WrongAudience
    );
    assert_eq!(
        with(&|c| c["aud"] = json!([format!("{AUD}/"), "x"])),
        JwtError::WrongAudience
    );
    assert_eq!(
        with(&|c| c["iss"] = json!(format!("{ISS}/"))),
        JwtError::WrongIssuer
    );
    for claim in ["aud", "iss", "sub", "exp"] {
        assert_eq!(
            with(&|c| {
                c.as_object_mut().unwrap().remove(claim);
            }),
            JwtError::BadClaims,
            "{claim} missing"
        );
    }
}

#[test]
fn expiry_and_not_before_allow_only_a_small_leeway() {
    let k = es256("k");
    let keys = set(&[&k]);
    let mut c = claims();
    c["exp"] = json!(NOW - LEEWAY_SECS + 1);
    assert!(verify(&k.sign(&c), &keys, &rules(), NOW).is_ok());
    c["exp"] = json!(NOW - LEEWAY_SECS);
    assert_eq!(
        verify(&k.sign(&c), &keys, &rules(), NOW).unwrap_err(),
        JwtError::Expired
    );
    let mut c = claims();
    c["nbf"] = json!(NOW + LEEWAY_SECS);
    assert!(verify(&k.sign(&c), &keys, &rules(), NOW).is_ok());
    c["nbf"] = json!(NOW + LEEWAY_SECS + 1);
    assert_eq!(
        verify(&k.sign(&c), &keys, &rules(), NOW).unwrap_err(),
        JwtError::NotYetValid
    );
}

#[test]
fn typ_must_be_at_jwt_unless_the_operator_allows_jwt() {
    let k = es256("k");
    let keys = set(&[&k]);
    for typ in [Some("JWT"), None, Some("application/jwt")] {
        let t = k.sign_with(typ, &claims());
        assert_eq!(
            verify(&t, &keys, &rules(), NOW).unwrap_err(),
            JwtError::UnsupportedHeader,
            "{typ:?} refused by default"
        );
        let lenient = TokenRules {
            accept_plain_jwt: true,
            ..rules()
        };
        assert!(verify(&t, &keys, &lenient, NOW).is_ok(), "{typ:?} allowed");
    }
    assert!(
        verify(
            &k.sign_with(Some("application/at+jwt"), &claims()),
            &keys,
            &rules(),
            NOW
        )
        .is_ok()
    );
    // Never another type, whatever the operator allows (an ID-JAG, a logout token).
    let lenient = TokenRules {
        accept_plain_jwt: true,
        ..rules()
    };
    let t = k.sign_with(Some("oauth-id-jag+jwt"), &claims());
    assert_eq!(
        verify(&t, &keys, &lenient, NOW).unwrap_err(),
        JwtError::UnsupportedHeader
    );
}

#[test]
fn an_altered_token_fails_its_signature() {
    let k = es256("k");
    let keys = set(&[&k]);
    let t = k.sign(&claims());
    let parts: Vec<&str> = t.split('.').collect();
    let mut c = claims();
    c["sub"] = json!("admin");
    let altered = format!("{}.{}.{}", parts[0], b64(&c), parts[2]);
    assert_eq!(
        verify(&altered, &keys, &rules(), NOW).unwrap_err(),
        JwtError::BadSignature
    );
    // a signature moved from another token of the same key
    let other = k.sign(&c);
    let spliced = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        other.split('.').nth(2).unwrap()
    );
    assert_eq!(
        verify(&spliced, &keys, &rules(), NOW).unwrap_err(),
        JwtError::BadSignature
    );
}

#[test]
fn alg_none_is_refused() {
    let k = es256("k");
    let keys = set(&[&k]);
    for alg in ["none", "None", "NONE"] {
        let h = json!({"alg": alg, "typ": "at+jwt", "kid": "k"});
        for sig in ["", "AAAA"] {
            let t = format!("{}.{}.{sig}", b64(&h), b64(&claims()));
            assert!(verify(&t, &keys, &rules(), NOW).is_err(), "alg {alg}");
        }
    }
}

/// The classic confusion: HS256 "signed" with the issuer's public key as the secret,
/// in every encoding an attacker might guess.
#[test]
fn hmac_signed_with_the_public_key_is_refused() {
    let (ec, ed) = (es256("ec"), eddsa("ed"));
    let keys = set(&[&ec, &ed]);
    for k in [&ec, &ed] {
        let mut secrets: Vec<Vec<u8>> = vec![
            serde_json::to_vec(&k.jwk).unwrap(),
            k.jwk.to_string().into_bytes(),
        ];
        for f in ["x", "y"] {
            if let Some(v) = k.jwk.get(f).and_then(Value::as_str) {
                secrets.push(v.as_bytes().to_vec());
                secrets.push(URL_SAFE_NO_PAD.decode(v).unwrap());
                secrets.push(
                    STANDARD
                        .encode(URL_SAFE_NO_PAD.decode(v).unwrap())
                        .into_bytes(),
                );
            }
        }
        for secret in secrets {
            for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
                let mut h = Header::new(alg);
                h.typ = Some("at+jwt".into());
                h.kid = Some(k.kid.into());
                let t = jsonwebtoken::encode(
                    &h,
                    &claims(),
                    &EncodingKey::from_secret(&secret).unwrap(),
                )
                .unwrap();
                assert_eq!(
                    verify(&t, &keys, &rules(), NOW).unwrap_err(),
                    JwtError::UnsupportedHeader
                );
            }
        }
    }
}

#[test]
fn the_algorithm_is_the_one_pinned_to_the_key() {
    let (ec, ed) = (es256("ec"), eddsa("ed"));
    let keys = set(&[&ec, &ed]);
    // A valid EdDSA signature presented under the EC key's kid, and the reverse.
    let mut h = Header::new(Algorithm::EdDSA);
    h.typ = Some("at+jwt".into());
    h.kid = Some("ec".into());
    let t = jsonwebtoken::encode(&h, &claims(), &ed.enc).unwrap();
    assert_eq!(
        verify(&t, &keys, &rules(), NOW).unwrap_err(),
        JwtError::UnsupportedHeader
    );
    let mut h = Header::new(Algorithm::ES256);
    h.typ = Some("at+jwt".into());
    h.kid = Some("ed".into());
    let t = jsonwebtoken::encode(&h, &claims(), &ec.enc).unwrap();
    assert_eq!(
        verify(&t, &keys, &rules(), NOW).unwrap_err(),
        JwtError::UnsupportedHeader
    );
    // ES384 named with a P-256 key
    let t = ec.sign(&claims());
    let parts: Vec<&str> = t.split('.').collect();
    let h = json!({"alg": "ES384", "typ": "at+jwt", "kid": "ec"});
    let relabelled = format!("{}.{}.{}", b64(&h), parts[1], parts[2]);
    assert_eq!(
        verify(&relabelled, &keys, &rules(), NOW).unwrap_err(),
        JwtError::UnsupportedHeader
    );
}

#[test]
fn keys_that_cannot_be_used_safely_are_skipped() {
    let ec = es256("ec");
    let mut declared_wrong = ec.jwk.clone();
    declared_wrong["alg"] = json!("RS256");
    declared_wrong["kid"] = json!("wrong-alg");
    let mut enc_use = ec.jwk.clone();
    enc_use["use"] = json!("enc");
    enc_use["kid"] = json!("enc");
    let mut short_x = eddsa("short").jwk;
    short_x["x"] = json!(URL_SAFE_NO_PAD.encode([1u8; 16]));
    let mut off_curve = ec.jwk.clone();
    off_curve["kid"] = json!("off-curve");
    off_curve["y"] = json!(URL_SAFE_NO_PAD.encode([7u8; 32]));
    let small_rsa = json!({"kty": "RSA", "kid": "small", "alg": "RS256",
        "n": URL_SAFE_NO_PAD.encode([0xC5u8; 128]), "e": "AQAB"});
    let jwks = json!({"keys": [
        {"kty": "oct", "kid": "hmac", "k": URL_SAFE_NO_PAD.encode(b"a shared secret")},
        declared_wrong, enc_use, short_x, off_curve, small_rsa,
        {"kty": "EC", "crv": "P-521", "kid": "p521", "x": "AA", "y": "AA"},
        {"kty": "weird"}, "not an object",
    ]});
    let keys = ProviderKeys::from_jwks(&jwks);
    assert_eq!(keys.len(), 0, "nothing here may verify a token");
    // The HMAC key is not there to be used, whatever the token says.
    let mut h = Header::new(Algorithm::HS256);
    h.typ = Some("at+jwt".into());
    h.kid = Some("hmac".into());
    let t = jsonwebtoken::encode(
        &h,
        &claims(),
        &EncodingKey::from_secret(b"a shared secret").unwrap(),
    )
    .unwrap();
    assert_eq!(
        verify(&t, &keys, &rules(), NOW).unwrap_err(),
        JwtError::UnknownKey
    );
}

/// RFC 7515 §4.1.4: `kid` is optional. Without it, a token verifies with whichever key
/// of the issuer's set signed it (two keys during a rotation), and with no other.
#[test]
fn a_token_without_kid_verifies_with_the_key_of_the_set_that_signed_it() {
    let (a, b, c) = (es256("a"), es256("b"), es256("c"));
    let mut h = Header::new(Algorithm::ES256);
    h.typ = Some("at+jwt".into());
    let t = jsonwebtoken::encode(&h, &claims(), &a.enc).unwrap();
    assert!(verify(&t, &set(&[&a]), &rules(), NOW).is_ok());
    assert!(verify(&t, &set(&[&b, &a]), &rules(), NOW).is_ok());
    assert!(verify(&t, &set(&[&b, &c]), &rules(), NOW).is_err());
    assert_eq!(
        verify(&a.sign(&claims()), &set(&[&b]), &rules(), NOW).unwrap_err(),
        JwtError::UnknownKey
    );
}

#[test]
fn a_configured_resource_claim_replaces_aud() {
    let k = es256("k");
    let r = TokenRules {
        audience_claim: "resource".into(),
        audiences: vec!["api://calculator".into()],
        ..rules()
    };
    let keys = set(&[&k]);
    let mut c = claims();
    c["aud"] = json!("something-else");
    c["resource"] = json!(["api://calculator"]);
    assert!(verify(&k.sign(&c), &keys, &r, NOW).is_ok());
    c["resource"] = json!("api://other");
    assert_eq!(
        verify(&k.sign(&c), &keys, &r, NOW).unwrap_err(),
        JwtError::WrongAudience
    );
    c.as_object_mut().unwrap().remove("resource");
    assert_eq!(
        verify(&k.sign(&c), &keys, &r, NOW).unwrap_err(),
        JwtError::WrongAudience
    );
}

#[test]
fn oversized_and_garbage_tokens_are_refused_cheaply() {
    let k = es256("k");
    let keys = set(&[&k]);
    let big = "a".repeat(MAX_EXTERNAL_TOKEN_LEN + 1);
    assert_eq!(
        verify(&big, &keys, &rules(), NOW).unwrap_err(),
        JwtError::TooLong
    );
    for t in ["", ".", "..", "a.b.c", "a.b.c.d", "eyJ.eyJ.sig"] {
        assert!(verify(t, &keys, &rules(), NOW).is_err(), "{t:?}");
    }
}
