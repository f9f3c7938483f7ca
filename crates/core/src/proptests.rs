//! Property tests of the parsers that take outside input: redirect-URI matching,
//! resource indicators, scopes, PKCE and JWT verification. A few thousand cases per
//! target in the test command; `PROPTEST_CASES=100000 cargo test -p mcpgate-core
//! proptests` runs them longer.

use proptest::prelude::*;
use url::Url;

use crate::jwt::{AccessClaims, Audience, Expectations, KeyRing, StoredKey};
use crate::{ScopeSet, pkce, redirect_uri, resource};

fn cases() -> ProptestConfig {
    ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000),
    )
}

/// Pieces browsers treat specially in URLs: the generator glues them into near-misses.
fn url_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/".to_owned()),
        Just("//".to_owned()),
        Just("\\".to_owned()),
        Just("@".to_owned()),
        Just(":".to_owned()),
        Just("%2F".to_owned()),
        Just("%5C".to_owned()),
        Just("%40".to_owned()),
        Just("%00".to_owned()),
        Just("\t".to_owned()),
        Just("\n".to_owned()),
        Just(" ".to_owned()),
        Just(".".to_owned()),
        Just("..".to_owned()),
        Just("#".to_owned()),
        Just("?".to_owned()),
        Just("evil.example".to_owned()),
        Just("127.0.0.1".to_owned()),
        Just("localhost".to_owned()),
        Just("[::1]".to_owned()),
        Just("0x7f.1".to_owned()),
        Just("callback".to_owned()),
        "[a-z0-9]{1,6}",
        "[0-9]{1,5}",
        any::<char>().prop_map(String::from),
    ]
}

fn registered() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("http://127.0.0.1:33418/callback"),
        Just("http://localhost/callback"),
        Just("http://[::1]/cb"),
        Just("https://claude.ai/api/mcp/auth_callback"),
        Just("cursor://anysphere.cursor-retrieval/oauth/user-mcp/callback"),
    ]
}

/// What a browser navigates to for a redirect: scheme and host (any port for loopback).
fn browser_target(uri: &str) -> Option<(String, Option<String>)> {
    // WHATWG parsing strips tabs and newlines and reads `\` as `/` in special schemes;
    // the url crate implements that standard.
    let u = Url::parse(uri).ok()?;
    Some((u.scheme().to_owned(), u.host_str().map(str::to_owned)))
}

proptest! {
    #![proptest_config(cases())]

    /// No URI a browser resolves to another scheme or host ever matches a registered one.
    #[test]
    fn redirect_matching_never_leaves_the_registered_origin(
        reg in registered(),
        cut in 0usize..64,
        pieces in proptest::collection::vec(url_piece(), 0..6),
    ) {
        let cut = cut.min(reg.len());
        let cut = (0..=cut).rev().find(|&i| reg.is_char_boundary(i)).unwrap_or(0);
        let requested = format!("{}{}{}", &reg[..cut], pieces.concat(), &reg[cut..]);
        if redirect_uri::matches(reg, &requested) {
            prop_assert_eq!(browser_target(&requested), browser_target(reg), "{:?} matched {:?}", requested, reg);
            let r = Url::parse(&requested).unwrap();
            prop_assert!(r.fragment().is_none());
            prop_assert!(r.password().is_none());
        }
    }

    /// Arbitrary text never matches unless it is the registered string or a loopback
    /// port variant of it.
    #[test]
    fn redirect_matching_of_arbitrary_text(reg in registered(), requested in ".{0,80}") {
        if redirect_uri::matches(reg, &requested) {
            prop_assert_eq!(browser_target(&requested), browser_target(reg));
        }
    }

    /// A resource indicator is absolute http(s), without fragment, and canonical:
    /// canonicalising it again changes nothing.
    #[test]
    fn resource_indicators_are_canonical_and_fragment_free(
        base in prop_oneof![Just("http://127.0.0.1:8080/mcp"), Just("HTTPS://Calc.Example:443/mcp/"), Just("https://a.example")],
        pieces in proptest::collection::vec(url_piece(), 0..5),
    ) {
        let raw = format!("{base}{}", pieces.concat());
        if let Some(c) = resource::indicator(&raw) {
            prop_assert!(!raw.contains('#'));
            let u = Url::parse(&c).unwrap();
            prop_assert!(matches!(u.scheme(), "http" | "https"));
            prop_assert!(u.fragment().is_none());
            prop_assert_eq!(resource::canonicalize(&c), Some(c.clone()));
            prop_assert_eq!(resource::indicator(&c), Some(c));
        }
    }

    #[test]
    fn resource_indicator_of_arbitrary_text_never_panics(raw in ".{0,120}") {
        let _ = resource::indicator(&raw);
    }

    /// Scope parsing round-trips and refuses what RFC 6749 §3.3 does not allow.
    #[test]
    fn scopes_round_trip(raw in "[ -~]{0,80}") {
        if let Ok(s) = ScopeSet::parse(&raw) {
            prop_assert_eq!(ScopeSet::parse(&s.to_string()).unwrap(), s.clone());
            prop_assert!(!s.to_string().contains('"') && !s.to_string().contains('\\'));
        }
    }

    /// PKCE: only the verifier of a challenge passes it.
    #[test]
    fn pkce_only_the_verifier_passes(v in "[A-Za-z0-9._~-]{43,128}", other in "[A-Za-z0-9._~-]{43,128}") {
        let ch = pkce::challenge_of(&v);
        prop_assert!(pkce::verify(&v, &ch).is_ok());
        if other != v {
            prop_assert!(pkce::verify(&other, &ch).is_err());
        }
    }
}

fn claims(now: i64) -> AccessClaims {
    AccessClaims {
        iss: "http://as".into(),
        sub: "u1".into(),
        aud: Audience::One("http://rs/mcp".into()),
        client_id: "c1".into(),
        scope: ScopeSet::parse("op:add").unwrap(),
        jti: "j1".into(),
        iat: now,
        exp: now + 300,
        nbf: None,
        username: Some("alice".into()),
        session_id: Some("g1".into()),
        cnf: None,
    }
}

proptest! {
    #![proptest_config(cases())]

    /// JWT verification: a token changed anywhere (one character replaced, inserted or
    /// removed) never verifies, and arbitrary text never panics or verifies.
    #[test]
    fn tampered_tokens_never_verify(pos in any::<prop::sample::Index>(), c in any::<char>(), op in 0u8..3) {
        static RING: std::sync::OnceLock<(KeyRing, String)> = std::sync::OnceLock::new();
        let (ring, token) = RING.get_or_init(|| {
            let ring = KeyRing::new(&[StoredKey::generate(0)]);
            let t = ring.sign(&claims(1000));
            (ring, t)
        });
        let expect = Expectations::new("http://as", "http://rs/mcp");
        let mut chars: Vec<char> = token.chars().collect();
        let i = pos.index(chars.len());
        match op {
            0 => chars[i] = c,
            1 => chars.insert(i, c),
            _ => { chars.remove(i); }
        }
        let tampered: String = chars.into_iter().collect();
        if &tampered != token {
            // Base64url has spare bits in the last character of a segment: a change
            // there may decode to the same bytes, which is the same token.
            if let Ok(got) = ring.verify(&tampered, &expect, 1000) {
                prop_assert_eq!(got, claims(1000));
                let same_bytes = tampered.split('.').map(|s| base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, s).ok()).collect::<Vec<_>>()
                    == token.split('.').map(|s| base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, s).ok()).collect::<Vec<_>>();
                prop_assert!(same_bytes, "a changed token verified: {}", tampered);
            }
        }
    }

    #[test]
    fn arbitrary_text_never_verifies(raw in ".{0,300}", dots in proptest::collection::vec("[A-Za-z0-9_-]{0,60}", 0..5)) {
        let ring = {
            static RING: std::sync::OnceLock<KeyRing> = std::sync::OnceLock::new();
            RING.get_or_init(|| KeyRing::new(&[StoredKey::generate(0)]))
        };
        let expect = Expectations::new("http://as", "http://rs/mcp");
        prop_assert!(ring.verify(&raw, &expect, 1000).is_err());
        prop_assert!(ring.verify(&dots.join("."), &expect, 1000).is_err());
    }
}
