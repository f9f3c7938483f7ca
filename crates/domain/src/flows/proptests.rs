//! Property tests of the parsers that read a stranger's client description: the
//! registration JSON (RFC 7591) and metadata documents. Arbitrary JSON never panics,
//! and nothing accepted carries a redirect URI that a browser would resolve to an
//! origin the operator did not allow. `PROPTEST_CASES=100000 cargo test -p
//! mcpgate-domain proptests` runs them longer.

use mcpgate_core::redirect_uri::{AllowList, PRESETS};
use proptest::prelude::*;
use serde_json::{Value, json};
use url::Url;

use super::metadata_document::check_document;
use super::register::{RegistrationRequest, check};

const CUSTOM: &[&str] = &[
    "https://app.example.com/cb",
    "cursor://anysphere.cursor-mcp/cb",
];
const DOC_URL: &str = "https://client.example/meta.json";

fn entries() -> Vec<String> {
    PRESETS
        .iter()
        .flat_map(|p| p.redirect_uris.iter().map(|u| (*u).to_owned()))
        .chain(CUSTOM.iter().map(|u| (*u).to_owned()))
        .collect()
}

fn allow() -> AllowList {
    let presets: Vec<String> = PRESETS
        .iter()
        .map(|p| mcpgate_core::redirect_uri::AllowEntry::Preset(p.name.into()).stored())
        .collect();
    AllowList::from_entries(
        presets
            .iter()
            .map(String::as_str)
            .chain(CUSTOM.iter().copied()),
    )
}

/// The origin a browser goes to, as (scheme, host, port); the port is left out for
/// loopback hosts, whose port is free (RFC 8252 §7.3).
fn origin(u: &Url) -> (String, Option<String>, Option<u16>) {
    let loopback = mcpgate_core::redirect_uri::is_loopback(u);
    (
        u.scheme().to_owned(),
        u.host_str().map(str::to_ascii_lowercase),
        if loopback {
            None
        } else {
            u.port_or_known_default()
        },
    )
}

/// The rules an accepted redirect URI must satisfy, checked independently of the
/// matcher: absolute, no fragment, bounded, no whitespace or control characters, and
/// going to the origin of an allowed entry, with the same path and query.
fn assert_allowed(uri: &str) -> Result<(), TestCaseError> {
    prop_assert!(uri.len() <= 2000);
    prop_assert!(!uri.contains('#'), "fragment in {uri:?}");
    prop_assert!(
        !uri.chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\'),
        "{uri:?}"
    );
    let u = Url::parse(uri).map_err(|e| TestCaseError::fail(format!("{uri:?}: {e}")))?;
    prop_assert!(
        u.username().is_empty() && u.password().is_none(),
        "userinfo in {uri:?}"
    );
    let same = entries().iter().any(|e| {
        let a = Url::parse(e).unwrap();
        origin(&a) == origin(&u) && a.path() == u.path() && a.query() == u.query()
    });
    prop_assert!(same, "{uri:?} goes where no allowed entry goes");
    Ok(())
}

/// Redirect URIs near the allowed ones (and far from them), as an attacker writes them.
fn redirect() -> impl Strategy<Value = String> {
    let base = prop::sample::select(entries());
    let twist = prop_oneof![
        Just(""),
        Just("/"),
        Just("#x"),
        Just("?x=1"),
        Just("\t"),
        Just("\\@evil.example"),
        Just("@evil.example"),
        Just(".evil.example"),
        Just("%2F..%2F"),
        Just(":8443"),
    ];
    prop_oneof![
        3 => base.clone(),
        3 => (base.clone(), twist).prop_map(|(b, t)| format!("{b}{t}")),
        1 => base.clone().prop_map(|b| b.replacen("://", "://user@", 1)),
        1 => base.clone().prop_map(|b| b.replacen("127.0.0.1", "127.0.0.1:1234", 1)),
        1 => base.prop_map(|b| b.to_uppercase()),
        1 => prop::sample::select(vec![
            "javascript:alert(1)", "data:text/html,x", "http://example.com/cb",
            "https://claude.ai\\@evil.example/api/mcp/auth_callback", "//claude.ai/x",
            "file:///etc/passwd", "https://claude.ai:443/api/mcp/auth_callback",
        ]).prop_map(String::from),
        1 => "\\PC{0,40}",
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "\\PC{0,20}".prop_map(Value::from),
    ]
}

fn any_json() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A client description: mostly well-formed with tricky values, sometimes anything.
fn description(self_id: Option<&'static str>) -> impl Strategy<Value = Value> {
    let field = |vals: BoxedStrategy<Value>| prop::option::of(vals);
    let structured = (
        prop::collection::vec(redirect(), 0..4),
        field(
            prop_oneof![
                "\\PC{0,30}".prop_map(Value::from),
                Just(json!("a\u{0}b")),
                Just(json!("x".repeat(300)))
            ]
            .boxed(),
        ),
        field(
            prop::sample::select(vec![
                "none",
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
                "",
            ])
            .prop_map(Value::from)
            .boxed(),
        ),
        field(
            prop_oneof![
                Just(json!(["authorization_code", "refresh_token"])),
                Just(json!(["implicit"])),
                Just(json!("authorization_code"))
            ]
            .boxed(),
        ),
        field(
            prop_oneof![
                Just(json!("op:add op:sub")),
                Just(json!("bad\u{1}scope")),
                Just(json!(""))
            ]
            .boxed(),
        ),
        field(
            prop_oneof![
                Just(json!("https://app.example.com")),
                Just(json!("javascript:x")),
                Just(json!(5))
            ]
            .boxed(),
        ),
        any_json(),
    )
        .prop_map(
            move |(uris, name, method, grants, scope, client_uri, extra)| {
                let mut o = serde_json::Map::new();
                o.insert("redirect_uris".into(), json!(uris));
                for (k, v) in [
                    ("client_name", name),
                    ("token_endpoint_auth_method", method),
                    ("grant_types", grants),
                    ("scope", scope),
                    ("client_uri", client_uri),
                ] {
                    if let Some(v) = v {
                        o.insert(k.into(), v);
                    }
                }
                if let Some(id) = self_id {
                    o.insert("client_id".into(), json!(id));
                }
                o.insert("extra".into(), extra);
                Value::Object(o)
            },
        );
    prop_oneof![4 => structured, 1 => any_json()]
}

proptest! {
    #![proptest_config(crate::proptest_cases())]

    /// Registration JSON: any bytes parse or are refused, never panic; an accepted
    /// registration stores exactly the URIs it checked, and each obeys the rules.
    #[test]
    fn registrations_never_accept_a_redirect_outside_the_rules(v in description(None)) {
        let Ok(req) = serde_json::from_value::<RegistrationRequest>(v.clone()) else {
            return Ok(());
        };
        let requested = req.redirect_uris.clone();
        if let Ok(c) = check(&allow(), req) {
            prop_assert!(!c.redirect_uris.is_empty() && c.redirect_uris.len() <= 10);
            prop_assert_eq!(&c.redirect_uris, &requested);
            prop_assert_eq!(&c.metadata["redirect_uris"], &json!(requested));
            for u in &c.redirect_uris {
                assert_allowed(u)?;
            }
            prop_assert!(!c.name.chars().any(char::is_control) && c.name.chars().count() <= 200);
            prop_assert!(matches!(c.method.as_str(), "none" | "client_secret_basic" | "client_secret_post"));
        }
    }

    /// Raw bytes, not only JSON values, through the registration parser.
    #[test]
    fn registration_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(req) = serde_json::from_slice::<RegistrationRequest>(&b) {
            let _ = check(&allow(), req);
        }
    }

    /// Metadata documents: an accepted document names itself exactly, and its
    /// redirect URIs obey the rules.
    #[test]
    fn documents_never_accept_a_redirect_outside_the_rules(
        doc in prop_oneof![description(Some(DOC_URL)), description(Some("https://client.example/meta.json/")), description(None)]
    ) {
        if let Ok((name, uris)) = check_document(&allow(), DOC_URL, &doc) {
            prop_assert_eq!(doc["client_id"].as_str(), Some(DOC_URL));
            prop_assert!(!name.chars().any(char::is_control));
            prop_assert!(!uris.is_empty());
            for u in &uris {
                assert_allowed(u)?;
            }
        }
    }
}
