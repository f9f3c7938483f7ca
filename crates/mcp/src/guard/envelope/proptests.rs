//! Differentials of the envelope's reading against other readers of the same bytes:
//!
//! - rmcp's own message model: whenever the envelope calls a body a plain
//!   `tools/call`, rmcp reads the same request (same id, tool and arguments);
//! - four decoders of the kinds upstream servers use: exact member names or names
//!   matched case-insensitively with Unicode folding (Go's `encoding/json`), each
//!   keeping the first or the last of duplicate members. Whenever the envelope accepts
//!   a body, each of them reads the same method, and the same tool, prompt or resource,
//!   as the envelope did: the policy decided on what every upstream will run.
//!
//! `PROPTEST_CASES=100000 cargo test -p mcpgate-mcp proptests` runs them longer.
use proptest::prelude::*;
use rmcp::model::{ClientJsonRpcMessage, ClientRequest, JsonRpcMessage};
use serde_json::{Value, json};

use super::Envelope;

fn cases() -> ProptestConfig {
    ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000),
    )
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,8}".prop_map(Value::from),
    ]
}

fn member() -> impl Strategy<Value = (String, Value)> {
    (
        prop_oneof![
            Just("jsonrpc".to_owned()),
            Just("id".to_owned()),
            Just("method".to_owned()),
            Just("params".to_owned()),
            Just("name".to_owned()),
            Just("arguments".to_owned()),
            Just("_meta".to_owned()),
            "[a-z]{1,4}",
        ],
        prop_oneof![
            scalar(),
            Just(json!("2.0")),
            Just(json!("tools/call")),
            Just(json!({"name": "calculator"})),
            Just(json!({"name": "calculator", "arguments": {"a": 1}})),
            Just(json!({})),
            Just(json!([])),
        ],
    )
}

fn body() -> impl Strategy<Value = Value> {
    (
        proptest::option::of(prop_oneof![Just(json!(1)), Just(json!("x")), scalar()]),
        prop_oneof![Just(json!("tools/call")), scalar()],
        proptest::option::of(prop_oneof![
            Just(json!({"name": "calculator", "arguments": {"operation": "add", "a": 1, "b": 2}})),
            Just(json!({"name": "calculator", "arguments": null})),
            Just(json!({"name": "calculator", "_meta": {"k": 1}})),
            Just(json!({"name": 5})),
        ]),
        proptest::collection::vec(member(), 0..3),
    )
        .prop_map(|(id, method, params, extra)| {
            let mut o = serde_json::Map::new();
            o.insert("jsonrpc".into(), json!("2.0"));
            if let Some(id) = id {
                o.insert("id".into(), id);
            }
            o.insert("method".into(), method);
            if let Some(p) = params {
                o.insert("params".into(), p);
            }
            for (k, v) in extra {
                o.insert(k, v);
            }
            Value::Object(o)
        })
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn plain_calls_are_read_as_rmcp_reads_them(v in body()) {
        let bytes = serde_json::to_vec(&v).unwrap();
        let Ok(e) = Envelope::parse(&bytes) else { return Ok(()); };
        let Some(call) = e.plain_call else { return Ok(()); };
        let rmcp: ClientJsonRpcMessage = serde_json::from_slice(&bytes)
            .map_err(|err| TestCaseError::fail(format!("rmcp refused a plain call {v}: {err}")))?;
        let JsonRpcMessage::Request(req) = rmcp else {
            return Err(TestCaseError::fail(format!("rmcp saw no request in {v}")));
        };
        prop_assert_eq!(&req.id, &call.id);
        let ClientRequest::CallToolRequest(ct) = req.request else {
            return Err(TestCaseError::fail(format!("rmcp saw another method in {v}")));
        };
        prop_assert_eq!(Some(ct.params.name.to_string()), e.tool);
        prop_assert_eq!(ct.params.arguments, e.arguments);
    }

    #[test]
    fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = Envelope::parse(&raw);
    }
}

/// A JSON value as a decoder that keeps every member sees it: objects are member lists
/// in order, duplicates kept.
#[derive(Debug, Clone)]
enum Dup {
    Object(Vec<(String, Dup)>),
    Other(Value),
}

impl<'de> serde::Deserialize<'de> for Dup {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{MapAccess, SeqAccess, Visitor};
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Dup;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Dup, A::Error> {
                let mut v = Vec::new();
                while let Some((k, x)) = m.next_entry::<String, Dup>()? {
                    v.push((k, x));
                }
                Ok(Dup::Object(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Dup, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = s.next_element::<Dup>()? {
                    v.push(match x {
                        Dup::Other(x) => x,
                        Dup::Object(_) => Value::Null,
                    });
                }
                Ok(Dup::Other(Value::Array(v)))
            }
            fn visit_bool<E>(self, b: bool) -> Result<Dup, E> {
                Ok(Dup::Other(b.into()))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Dup, E> {
                Ok(Dup::Other(n.into()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Dup, E> {
                Ok(Dup::Other(n.into()))
            }
            fn visit_f64<E>(self, n: f64) -> Result<Dup, E> {
                Ok(Dup::Other(n.into()))
            }
            fn visit_str<E>(self, s: &str) -> Result<Dup, E> {
                Ok(Dup::Other(s.into()))
            }
            fn visit_unit<E>(self) -> Result<Dup, E> {
                Ok(Dup::Other(Value::Null))
            }
        }
        d.deserialize_any(V)
    }
}

/// How a decoder finds a member by name.
#[derive(Debug, Clone, Copy)]
struct Decoder {
    /// Names compared as Go's `encoding/json` compares them (Unicode case folding).
    fold: bool,
    /// Of several matching members, the last is kept (else the first).
    last: bool,
}

const DECODERS: [Decoder; 4] = [
    Decoder {
        fold: false,
        last: false,
    },
    Decoder {
        fold: false,
        last: true,
    },
    Decoder {
        fold: true,
        last: false,
    },
    Decoder {
        fold: true,
        last: true,
    },
];

/// Simple case folding of the characters the generator uses, written independently of
/// the envelope's: each to the upper case of its lower case, as Go's `foldName` does.
fn go_fold(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{017F}' => 'S',
            '\u{212A}' => 'K',
            '\u{0131}' | '\u{0130}' => 'I',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

impl Decoder {
    /// The member `name` of `obj`, as this decoder finds it. Like Go's decoder, an
    /// exact match is preferred over a folded one, and among those of one kind the
    /// first or the last is kept.
    fn member<'a>(self, obj: &'a [(String, Dup)], name: &str) -> Option<&'a Dup> {
        let pick = |it: Vec<&'a Dup>| {
            if self.last {
                it.last().copied()
            } else {
                it.first().copied()
            }
        };
        let exact: Vec<&Dup> = obj
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v)
            .collect();
        if !self.fold {
            return pick(exact);
        }
        // Go keeps the last value written to the field, exact or folded.
        let folded: Vec<&Dup> = obj
            .iter()
            .filter(|(k, _)| go_fold(k) == go_fold(name))
            .map(|(_, v)| v)
            .collect();
        pick(folded)
    }

    fn string(self, obj: &[(String, Dup)], name: &str) -> Option<String> {
        match self.member(obj, name)? {
            Dup::Other(Value::String(s)) => Some(s.clone()),
            _ => None,
        }
    }

    /// The method and its target (`params.name` or `params.uri`) as this decoder reads them.
    fn read(self, body: &Dup) -> (Option<String>, Option<String>, Option<String>) {
        let Dup::Object(top) = body else {
            return (None, None, None);
        };
        let method = self.string(top, "method");
        let (name, uri) = match self.member(top, "params") {
            Some(Dup::Object(p)) => (self.string(p, "name"), self.string(p, "uri")),
            _ => (None, None),
        };
        (method, name, uri)
    }
}

/// Member names: the protocol's, their case and Unicode-fold variants, and others.
fn name(protocol: &'static str) -> impl Strategy<Value = String> {
    let variants: Vec<String> = {
        let mut v = vec![protocol.to_owned(), protocol.to_ascii_uppercase()];
        let mut first = protocol.chars();
        if let Some(c) = first.next() {
            v.push(format!("{}{}", c.to_ascii_uppercase(), first.as_str()));
        }
        for (from, to) in [
            ('s', '\u{017F}'),
            ('k', '\u{212A}'),
            ('i', '\u{0131}'),
            ('i', '\u{0130}'),
        ] {
            if protocol.contains(from) {
                v.push(protocol.replacen(from, &to.to_string(), 1));
            }
        }
        v
    };
    prop_oneof![
        4 => Just(protocol.to_owned()),
        3 => proptest::sample::select(variants),
        1 => "[a-zA-Z_]{1,5}",
    ]
}

/// A JSON object written by hand, so that a member may appear twice.
fn object(members: &[(String, String)]) -> String {
    let inner: Vec<String> = members
        .iter()
        .map(|(k, v)| format!("{}:{v}", serde_json::to_string(k).unwrap()))
        .collect();
    format!("{{{}}}", inner.join(","))
}

fn target_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(r#""safe""#.to_owned()),
        Just(r#""danger""#.to_owned()),
        Just("5".to_owned()),
        Just("null".to_owned()),
    ]
}

fn params() -> impl Strategy<Value = String> {
    let member = prop_oneof![
        (name("name"), target_value()),
        (name("uri"), target_value()),
        (name("arguments"), Just(r#"{"a":1}"#.to_owned())),
        (name("_meta"), Just("{}".to_owned())),
    ];
    proptest::collection::vec(member, 0..4).prop_map(|m| object(&m))
}

fn method_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(r#""tools/call""#.to_owned()),
        Just(r#""tools/list""#.to_owned()),
        Just(r#""prompts/get""#.to_owned()),
        Just(r#""resources/read""#.to_owned()),
        Just("7".to_owned()),
    ]
}

fn message() -> impl Strategy<Value = String> {
    let member = prop_oneof![
        3 => (name("method"), method_value()),
        3 => (name("params"), params()),
        1 => (name("id"), Just("1".to_owned())),
        1 => (name("jsonrpc"), Just(r#""2.0""#.to_owned())),
        1 => (name("result"), Just("{}".to_owned())),
    ];
    proptest::collection::vec(member, 1..6).prop_map(|m| object(&m))
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn every_decoder_reads_the_method_and_target_the_envelope_checked(body in message()) {
        let Ok(e) = Envelope::parse(body.as_bytes()) else { return Ok(()); };
        let dup: Dup = serde_json::from_str(&body).unwrap();
        for d in DECODERS {
            let (method, name, uri) = d.read(&dup);
            prop_assert_eq!(&method, &e.method, "{:?} read another method in {}", d, body);
            match method.as_deref() {
                Some("tools/call" | "prompts/get") => {
                    prop_assert!(e.tool.is_some(), "no target checked in {}", body);
                    prop_assert_eq!(&name, &e.tool, "{:?} read another name in {}", d, body);
                }
                Some("resources/read") => {
                    prop_assert!(e.uri.is_some(), "no target checked in {}", body);
                    prop_assert_eq!(&uri, &e.uri, "{:?} read another uri in {}", d, body);
                }
                _ => {}
            }
        }
    }
}
