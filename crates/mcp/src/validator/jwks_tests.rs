//! The key set served by a real HTTP server on loopback, changed while the validator
//! runs: a withdrawn key stops verifying after the periodic refresh, `max-age` is
//! honoured within its bounds, and unknown key ids fetch at most once per floor.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderValue, header};
use mcpgate_core::clock::ManualClock;
use serde_json::{Value, json};

use super::*;
use crate::validator::jose::tests::{NOW, TestKey, claims, es256, rules};

/// What the issuer serves, changed by the test, and how often it was asked.
#[derive(Clone)]
struct Issuer {
    keys: Arc<RwLock<Vec<Value>>>,
    cache_control: Arc<RwLock<&'static str>>,
    fetches: Arc<AtomicUsize>,
}

impl Issuer {
    fn serve(&self, keys: &[&TestKey]) {
        *self.keys.write().unwrap() = keys.iter().map(|k| k.jwk.clone()).collect();
    }
    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

async fn jwks(State(i): State<Issuer>) -> impl IntoResponse {
    i.fetches.fetch_add(1, Ordering::SeqCst);
    let keys = i.keys.read().unwrap().clone();
    let cc = *i.cache_control.read().unwrap();
    (
        [(header::CACHE_CONTROL, cc)],
        axum::Json(json!({ "keys": keys })),
    )
}

/// An issuer on `127.0.0.1:0` serving `keys` with `cache_control`; its JWKS URL.
async fn issuer(keys: &[&TestKey], cache_control: &'static str) -> (Issuer, String) {
    let i = Issuer {
        keys: Arc::default(),
        cache_control: Arc::new(RwLock::new(cache_control)),
        fetches: Arc::default(),
    };
    i.serve(keys);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/jwks", get(jwks))
        .with_state(i.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (i, url)
}

async fn validator(url: &str, refresh: Refresh) -> Arc<Jwks> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Jwks::start(
        reqwest::Client::builder().no_proxy().build().unwrap(),
        url.to_owned(),
        rules(),
        Arc::new(ManualClock::new(NOW)),
        refresh,
    )
    .await
    .unwrap()
}

/// Waits (polling, with a generous deadline) until `done` holds.
async fn eventually(what: &str, mut done: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done().await {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{what}: not within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

/// A token that names key id `kid`, with a signature nobody made (it is refused at
/// the key lookup, before any signature check).
fn naming_kid(kid: &str) -> String {
    let h = json!({"alg": "ES256", "typ": "at+jwt", "kid": kid});
    let b = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    format!("{}.{}.c2ln", b(&h), b(&claims()))
}

/// The key a token was signed with is withdrawn from the issuer's set: once the
/// periodic refresh has read the set again, the token is refused, though it was
/// verified (and remembered) before and no token with a new `kid` ever arrived.
#[tokio::test]
async fn a_key_withdrawn_by_the_issuer_stops_verifying_after_the_periodic_refresh() {
    let (a, b) = (es256("a"), es256("b"));
    let (issuer, url) = issuer(&[&a, &b], "max-age=0").await;
    let refresh = Refresh {
        min: Duration::from_millis(100),
        max: Duration::from_millis(300),
        unknown_kid_floor: Duration::from_secs(3600),
    };
    let v = validator(&url, refresh).await;
    let (ta, tb) = (a.sign(&claims()), b.sign(&claims()));
    assert!(v.validate(&ta).await.is_ok());
    assert!(v.validate(&tb).await.is_ok());
    issuer.serve(&[&b]);
    eventually("the withdrawn key refused", async || {
        v.validate(&ta).await.is_err()
    })
    .await;
    assert_eq!(
        v.validate(&ta).await,
        Err(Rejection::Invalid(Reason::UnknownKey))
    );
    assert!(v.validate(&tb).await.is_ok(), "the key kept still verifies");
}

/// `max-age` sets the interval within the bounds: a long one waits `max`, none or
/// `no-store` waits `min`, so the issuer is neither hammered nor trusted forever.
#[test]
fn the_refresh_interval_is_max_age_within_the_bounds() {
    let r = Refresh::new(Duration::from_secs(10)).unwrap();
    let with = |v: &'static str| {
        let mut h = HeaderMap::new();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static(v));
        r.interval(&h)
    };
    let min = Duration::from_secs(300);
    let max = Duration::from_secs(900);
    assert_eq!(r.interval(&HeaderMap::new()), max, "no Cache-Control");
    assert_eq!(with("public, max-age=600"), Duration::from_secs(600));
    assert_eq!(with("max-age=\"420\""), Duration::from_secs(420));
    assert_eq!(with("max-age=86400"), max, "a day is cut to 15 minutes");
    assert_eq!(with("max-age=30"), min, "30 s is raised to 5 minutes");
    assert_eq!(with("max-age=0"), min);
    assert_eq!(with("no-store"), min);
    assert_eq!(with("no-cache, max-age=600"), min);
    assert_eq!(with("max-age=soon"), max, "unreadable: as if absent");
}

/// The periodic refresh follows `max-age`: the set is read again within the bounds,
/// and not more often than `min`.
#[tokio::test]
async fn the_periodic_refresh_honours_its_bounds() {
    let a = es256("a");
    let (issuer, url) = issuer(&[&a], "max-age=86400").await;
    let refresh = Refresh {
        min: Duration::from_millis(150),
        max: Duration::from_millis(400),
        unknown_kid_floor: Duration::from_secs(3600),
    };
    let _v = validator(&url, refresh).await;
    assert_eq!(issuer.fetches(), 1);
    eventually("a refresh at max despite a day's max-age", async || {
        issuer.fetches() >= 2
    })
    .await;
    // Asked not to cache at all: still no more often than every `min`.
    *issuer.cache_control.write().unwrap() = "no-store";
    let (start, before) = (Instant::now(), issuer.fetches());
    eventually("three more refreshes", async || {
        issuer.fetches() >= before + 3
    })
    .await;
    let took = start.elapsed();
    let made = issuer.fetches() - before;
    let most = (took.as_millis() / 150) as usize + 2;
    assert!(made <= most, "{made} fetches in {took:?}");
}

/// A storm of tokens naming unknown key ids: one fetch per floor between them all.
#[tokio::test]
async fn unknown_key_ids_fetch_at_most_once_per_floor() {
    let a = es256("a");
    let (issuer, url) = issuer(&[&a], "max-age=900").await;
    let refresh = Refresh {
        min: Duration::from_secs(600),
        max: Duration::from_secs(900),
        unknown_kid_floor: Duration::from_secs(1),
    };
    let v = validator(&url, refresh).await;
    assert_eq!(issuer.fetches(), 1, "the fetch at start");
    // 200 at once, then more for two seconds and a half.
    let start = Instant::now();
    let storm: Vec<_> = (0..200)
        .map(|i| {
            let v = v.clone();
            tokio::spawn(async move { v.validate(&naming_kid(&format!("made-up-{i}"))).await })
        })
        .collect();
    for t in storm {
        assert!(t.await.unwrap().is_err());
    }
    // The fetch at start counts against the floor too: none, or one if a floor passed.
    let floors = start.elapsed().as_secs() as usize;
    let made = issuer.fetches() - 1;
    assert!(
        made <= floors,
        "{made} fetches for 200 unknown key ids in {:?}",
        start.elapsed()
    );
    let before = issuer.fetches();
    let start = Instant::now();
    let mut i = 0;
    while start.elapsed() < Duration::from_millis(2500) {
        i += 1;
        assert!(v.validate(&naming_kid(&format!("more-{i}"))).await.is_err());
    }
    let floors = start.elapsed().as_secs() as usize + 1;
    let extra = issuer.fetches() - before;
    assert!(
        (1..=floors).contains(&extra),
        "{extra} fetches for {i} unknown key ids in {:?}",
        start.elapsed()
    );
    assert!(v.validate(&a.sign(&claims())).await.is_ok());
}

/// No floor at all is refused: it would let every made-up key id fetch the set.
#[test]
fn a_zero_floor_is_refused() {
    assert_eq!(
        Refresh::new(Duration::ZERO),
        Err(RefreshError::FloorTooShort)
    );
    assert_eq!(
        Refresh::new(Duration::from_millis(999)),
        Err(RefreshError::FloorTooShort)
    );
    assert!(Refresh::new(Duration::from_secs(1)).is_ok());
    let bad = Refresh {
        min: Duration::from_secs(10),
        max: Duration::from_secs(5),
        unknown_kid_floor: Duration::from_secs(1),
    };
    assert_eq!(bad.checked(), Err(RefreshError::BadBounds));
}
