//! The authorization server's endpoints under load: introspection, registration,
//! refresh with rotation, code exchange and issuance, and a (slow by design) login.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, header};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::flow;
use crate::load::{self, Target};

/// Requests per second of the authorization server's endpoints, 16 connections.
pub async fn authorization_server(
    base: &str,
    session: &mut flow::Session,
    rs_id: &str,
    rs_secret: &str,
    operator_app: &str,
    token: &str,
    secs: u64,
) -> anyhow::Result<()> {
    use base64::Engine;
    let addr: SocketAddr = base.trim_start_matches("http://").parse()?;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{rs_id}:{rs_secret}"))
    );
    let form = |extra: Vec<(HeaderName, HeaderValue)>| {
        let mut h = vec![(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        )];
        h.extend(extra);
        h
    };
    let introspect = Target {
        addr,
        path: "/introspect".into(),
        headers: form(vec![(
            header::AUTHORIZATION,
            HeaderValue::from_str(&basic)?,
        )]),
        body: {
            let b = Bytes::from(format!("token={token}"));
            Box::new(move |_, _| b.clone())
        },
        expect: br#""active":true"#.to_vec(),
    };
    let register = Target {
        addr,
        path: "/register".into(),
        headers: vec![(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body: Box::new(|c, n| {
            Bytes::from(json!({"redirect_uris": [flow::REDIRECT], "client_name": format!("bench {c} {n}"), "token_endpoint_auth_method": "none"}).to_string())
        }),
        expect: br#""client_id""#.to_vec(),
    };
    println!("\nauthorization server, 16 connections, {secs} s each:");
    for (name, t) in [
        ("introspection (RFC 7662)", introspect),
        ("dynamic registration (RFC 7591)", register),
    ] {
        let mut r = load::run(Arc::new(t), 16, Duration::from_secs(secs)).await;
        println!(
            "  {name:<34} {:>8.0} req/s  p50 {:.2} ms  p99 {:.2} ms  errors {}",
            r.rps(),
            r.percentile_ms(0.5),
            r.percentile_ms(0.99),
            r.errors
        );
    }
    // Refresh: 16 independent rotation chains, each refresh spending the previous token.
    let mut chains = Vec::new();
    for _ in 0..16 {
        chains.push(session.tokens(&format!("{base}/mcp")).await?);
    }
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for c in chains {
        let http = session.http.clone();
        let base = base.to_owned();
        tasks.push(tokio::spawn(async move {
            let (mut rt, cid) = (
                c["refresh_token"].as_str().unwrap().to_owned(),
                c["client_id"].as_str().unwrap().to_owned(),
            );
            let (mut ok, mut err) = (0u64, 0u64);
            while Instant::now() < deadline {
                match http
                    .post(format!("{base}/token"))
                    .form(&[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", &rt),
                        ("client_id", &cid),
                    ])
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => {
                        let v: serde_json::Value = r.json().await.unwrap_or_default();
                        rt = v["refresh_token"].as_str().unwrap_or_default().to_owned();
                        ok += 1;
                    }
                    _ => err += 1,
                }
            }
            (ok, err)
        }));
    }
    let (mut ok, mut err) = (0, 0);
    for t in tasks {
        let (o, e) = t.await?;
        ok += o;
        err += e;
    }
    println!(
        "  {:<34} {:>8.0} req/s  errors {err}",
        "refresh with rotation",
        ok as f64 / start.elapsed().as_secs_f64()
    );
    // Code exchange: codes made first (consent is skipped once granted), then redeemed.
    let client = session.register().await?;
    let verifier = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(b"bench code verifier"));
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    let t_codes = Instant::now();
    let mut codes = Vec::new();
    for _ in 0..200 {
        codes.push(
            session
                .code(&client, &format!("{base}/mcp"), &challenge)
                .await?,
        );
    }
    let issue_rps = 200.0 / t_codes.elapsed().as_secs_f64();
    // The same for an app the operator registered (confidential): once consented, its
    // requests skip the consent page; the first one, which shows it, is not timed.
    let resource = format!("{base}/mcp");
    session.code(operator_app, &resource, &challenge).await?;
    let t_skipped = Instant::now();
    for _ in 0..200 {
        session.code(operator_app, &resource, &challenge).await?;
    }
    let skipped_rps = 200.0 / t_skipped.elapsed().as_secs_f64();
    let start = Instant::now();
    let mut ok = 0;
    for chunk in codes.chunks(16) {
        let mut set = Vec::new();
        for code in chunk {
            let http = session.http.clone();
            let (base, client, verifier, code) = (
                base.to_owned(),
                client.clone(),
                verifier.clone(),
                code.clone(),
            );
            set.push(tokio::spawn(async move {
                http.post(format!("{base}/token"))
                    .form(&[
                        ("grant_type", "authorization_code"),
                        ("code", &code),
                        ("redirect_uri", flow::REDIRECT),
                        ("code_verifier", &verifier),
                        ("client_id", &client),
                    ])
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }));
        }
        for t in set {
            ok += t.await? as u64;
        }
    }
    println!(
        "  {:<34} {:>8.0} req/s  ({ok}/200 ok)",
        "code exchange",
        ok as f64 / start.elapsed().as_secs_f64()
    );
    println!(
        "  {:<34} {:>8.0} req/s  (authorize + consent skipped, 1 connection)",
        "code issuance", skipped_rps
    );
    println!(
        "  {:<34} {:>8.0} req/s  (a public client: authorize + consent page + approval)",
        "code issuance, consent shown", issue_rps
    );
    // A fresh browser (signed out), distinct unknown users: each attempt runs a
    // (dummy) argon2 verification, unslowed by the per-account throttle.
    let mut fresh = flow::Session::new(base);
    let t = Instant::now();
    for i in 0..5 {
        fresh
            .login(&format!("nobody-{i}"), "wrong password")
            .await
            .ok();
    }
    println!(
        "  {:<34} {:>8.1} ms each (argon2id by design; failures slow down per account)",
        "login",
        t.elapsed().as_secs_f64() * 1000.0 / 5.0
    );
    Ok(())
}
