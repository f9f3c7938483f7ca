//! `mcpgate-bench soak [SECONDS]`: does memory stay flat when the server runs for long?
//!
//! The guarded calculator (`mcpgate serve`, SQLite, pinned to one core like the other
//! cells) takes steady load, 16 connections of `tools/call`, while other clients do
//! what real ones do: rotate refresh tokens and use each new access token; register,
//! sign in (and fail to, as strangers), consent and redeem codes; revoke grants and
//! see their tokens refused; and, in the separate resource-server topology
//! (`mcpgate mcp --issuer … --introspection-client-id …`), present new tokens that
//! are introspected. Every few seconds it samples both servers' RSS and open file
//! descriptors, the database's size, and the sizes of the servers' long-lived caches
//! (which they log on the `mcpgate::memory` target), then prints the slope of RSS over
//! the second half of the run: the first half is warm-up (caches fill up to their
//! steady state, which the access-token lifetime bounds).
//!
//! Environment: SOAK_SAMPLE (seconds between samples, default 5), SOAK_TOKEN_TTL
//! (access-token lifetime, default 120 s, so that tokens expire within the run and
//! their cache entries must be released), SOAK_CONNS (hot connections, default 16),
//! SOAK_ROTATIONS (refresh rotations per second of each of the two rotating clients,
//! default 25: as many as 22,000 clients refreshing every 15 minutes, each).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;

use super::{flow, load, procs};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What the churning clients did, counted as they go.
#[derive(Default)]
struct Counts {
    rotations: std::cell::Cell<u64>,
    introspected: std::cell::Cell<u64>,
    sign_ins: std::cell::Cell<u64>,
    revocations: std::cell::Cell<u64>,
    hot_calls: std::cell::Cell<u64>,
    errors: std::cell::Cell<u64>,
}

impl Counts {
    fn add(c: &std::cell::Cell<u64>, n: u64) {
        c.set(c.get() + n);
    }
}

struct Sample {
    t: f64,
    rss: f64,
    rss_rs: f64,
    /// The SQLite write-ahead log's size, MB.
    wal: f64,
}

pub async fn run(bin: PathBuf, core: Option<usize>, secs: u64) -> anyhow::Result<()> {
    let sample_every = Duration::from_secs(env_or("SOAK_SAMPLE", 5));
    let ttl: u64 = env_or("SOAK_TOKEN_TTL", 120);
    let conns: usize = env_or("SOAK_CONNS", 16);
    let rate: f64 = env_or("SOAK_ROTATIONS", 25.0);
    let pace = Duration::from_secs_f64(1.0 / rate.max(0.01));
    let data_dir = std::env::temp_dir().join(format!("mcpgate-soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let (p_as, p_rs) = (super::free_port(), super::free_port());
    let as_base = format!("http://127.0.0.1:{p_as}");
    let rs_base = format!("http://127.0.0.1:{p_rs}");
    let mut args = super::serve_args(p_as, &data_dir, &[format!("{rs_base}/mcp")]);
    args.extend(["--access-token-ttl".to_owned(), ttl.to_string()]);
    let log = Some("warn,mcpgate::memory=debug");
    let server = procs::spawn_logging("serve", &bin, &args, core, log)?;
    let password = server
        .wait_line("password:", Duration::from_secs(20))
        .context("first-run password")?
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .to_owned();
    super::wait_healthy(([127, 0, 0, 1], p_as).into()).await?;
    let creds = super::introspection_credentials(&bin, &data_dir)?;
    let rs_args = super::introspection_args(p_rs, &as_base, &creds, 60);
    let rs = procs::spawn_logging("mcp introspection", &bin, &rs_args, core, log)?;
    super::wait_healthy(([127, 0, 0, 1], p_rs).into()).await?;

    let mut admin = flow::Session::new(&as_base);
    admin.login("admin", &password).await?;
    let hot = admin.tokens(&format!("{as_base}/mcp")).await?;
    let chain_as = admin.tokens(&format!("{as_base}/mcp")).await?;
    let chain_rs = admin.tokens(&format!("{rs_base}/mcp")).await?;

    println!(
        "mcpgate soak: {secs} s; serve (SQLite) {}; {conns} connections of tools/call, \
         with refresh rotations (each new token used), sign-ins and registrations, \
         revocations, and introspection at a separate `mcpgate mcp`; {rate} rotations/s \
         at each; access tokens live {ttl} s; a sample every {} s",
        if core.is_some() {
            "and mcp pinned to core 0, clients on core 1"
        } else {
            "unpinned"
        },
        sample_every.as_secs()
    );
    println!(
        "{:>6} {:>8} {:>5} {:>8} {:>8} {:>8} {:>9} {:>8} {:>8} {:>5} {:>9} {:>9} {:>9}",
        "t s",
        "RSS MB",
        "fds",
        "DB MB",
        "WAL MB",
        "jwt n",
        "jwt KB",
        "revoked",
        "mcp RSS",
        "fds",
        "intro n",
        "intro KB",
        "calls/s"
    );

    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let counts = Rc::new(Counts::default());
    let http = admin.http.clone();
    let local = tokio::task::LocalSet::new();
    local.spawn_local(hot_load(
        http.clone(),
        as_base.clone(),
        hot,
        conns,
        sample_every,
        deadline,
        counts.clone(),
    ));
    local.spawn_local(rotations(
        http.clone(),
        as_base.clone(),
        as_base.clone(),
        chain_as,
        pace,
        deadline,
        counts.clone(),
        false,
    ));
    local.spawn_local(rotations(
        http.clone(),
        as_base.clone(),
        rs_base.clone(),
        chain_rs,
        pace,
        deadline,
        counts.clone(),
        true,
    ));
    let sign_in_now = Rc::new(tokio::sync::Notify::new());
    local.spawn_local(sign_ins(
        as_base.clone(),
        password.clone(),
        sign_in_now.clone(),
        deadline,
        counts.clone(),
    ));
    let mut samples = Vec::new();
    local
        .run_until(async {
            let (mut last_calls, mut last_t) = (0u64, 0.0f64);
            let (mut sizes_as, mut sizes_rs) = (Value::Null, Value::Null);
            let mut tick = tokio::time::interval(sample_every);
            while Instant::now() < deadline {
                tick.tick().await;
                let t = start.elapsed().as_secs_f64();
                latest_sizes(&server, &mut sizes_as);
                latest_sizes(&rs, &mut sizes_rs);
                let calls = counts.hot_calls.get();
                let rate = (calls - last_calls) as f64 / (t - last_t).max(1e-9);
                (last_calls, last_t) = (calls, t);
                let s = Sample {
                    t,
                    rss: server.rss_mb().0,
                    rss_rs: rs.rss_mb().0,
                    wal: file_mb(&data_dir.join("mcpgate.db-wal")),
                };
                let n = |v: &Value, k: &str| v[k].as_u64().unwrap_or(0);
                println!(
                    "{:>6.0} {:>8.1} {:>5} {:>8.2} {:>8.2} {:>8} {:>9.1} {:>8} {:>8.1} {:>5} {:>9} {:>9.1} {:>9}",
                    s.t,
                    s.rss,
                    server.open_fds(),
                    db_mb(&data_dir),
                    s.wal,
                    n(&sizes_as, "token_cache_entries"),
                    n(&sizes_as, "token_cache_bytes") as f64 / 1024.0,
                    n(&sizes_as, "revoked_entries"),
                    s.rss_rs,
                    rs.open_fds(),
                    n(&sizes_rs, "token_cache_entries"),
                    n(&sizes_rs, "token_cache_bytes") as f64 / 1024.0,
                    if calls == 0 { "-".to_owned() } else { format!("{rate:.0}") },
                );
                samples.push(s);
                sign_in_now.notify_one();
            }
        })
        .await;
    // Let the churning clients finish their last step.
    sign_in_now.notify_one();
    tokio::time::timeout(Duration::from_secs(30), local)
        .await
        .ok();

    let second_half: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.t >= secs as f64 / 2.0)
        .collect();
    let slope = |f: &dyn Fn(&Sample) -> f64| slope_per_10min(&second_half, f);
    println!(
        "\n{} hot calls ({:.0}/s), {} refresh rotations, {} introspected tokens, {} sign-ins, \
         {} revocations, {} errors",
        counts.hot_calls.get(),
        counts.hot_calls.get() as f64 / secs.max(1) as f64,
        counts.rotations.get(),
        counts.introspected.get(),
        counts.sign_ins.get(),
        counts.revocations.get(),
        counts.errors.get()
    );
    println!(
        "RSS slope over the second half: serve {:+.2} MB per 10 min, mcp {:+.2} MB per 10 min ({} samples)",
        slope(&|s| s.rss),
        slope(&|s| s.rss_rs),
        second_half.len()
    );
    let wal_max = |from: &[&Sample]| from.iter().map(|s| s.wal).fold(0.0, f64::max);
    let all: Vec<&Sample> = samples.iter().collect();
    println!(
        "WAL: largest {:.2} MB over the run, {:.2} MB over the second half, slope {:+.2} MB per 10 min",
        wal_max(&all),
        wal_max(&second_half),
        slope(&|s| s.wal)
    );
    drop((server, rs));
    let _ = std::fs::remove_dir_all(&data_dir);
    Ok(())
}

/// The last cache sizes a server logged, if it logged any since the last look.
fn latest_sizes(server: &procs::Server, into: &mut Value) {
    while let Ok(line) = server.lines.try_recv() {
        if !line.contains("mcpgate::memory") {
            continue;
        }
        if let Ok(v) = serde_json::from_str::<Value>(&line)
            && let Some(s) = v["fields"]["sizes"].as_str()
            && let Ok(sizes) = serde_json::from_str(s)
        {
            *into = sizes;
        }
    }
}

fn file_mb(path: &Path) -> f64 {
    std::fs::metadata(path).map_or(0.0, |m| m.len() as f64 / 1048576.0)
}

fn db_mb(dir: &Path) -> f64 {
    ["mcpgate.db", "mcpgate.db-wal", "mcpgate.db-shm"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len() as f64)
        .sum::<f64>()
        / 1048576.0
}

/// Least-squares slope of `f` over time, in MB per 10 minutes.
fn slope_per_10min(samples: &[&Sample], f: &dyn Fn(&Sample) -> f64) -> f64 {
    let n = samples.len() as f64;
    if n < 2.0 {
        return f64::NAN;
    }
    let mt = samples.iter().map(|s| s.t).sum::<f64>() / n;
    let my = samples.iter().map(|s| f(s)).sum::<f64>() / n;
    let cov: f64 = samples.iter().map(|s| (s.t - mt) * (f(s) - my)).sum();
    let var: f64 = samples.iter().map(|s| (s.t - mt).powi(2)).sum();
    cov / var.max(1e-9) * 600.0
}

/// One `tools/call` with `token`; true when it answered the sum.
async fn call_once(http: &reqwest::Client, base: &str, token: &str) -> bool {
    let r = http
        .post(format!("{base}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "calculator")
        .bearer_auth(token)
        .body(CALL)
        .send()
        .await;
    match r {
        Ok(r) if r.status().is_success() => {
            r.text().await.is_ok_and(|b| b.contains(r#""result":13"#))
        }
        _ => false,
    }
}

const CALL: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calculator","arguments":{"operation":"add","a":5,"b":8},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;

/// A refresh (RFC 6749 §6) that rotates `chain`'s refresh token; returns the new
/// access token.
async fn refresh(http: &reqwest::Client, as_base: &str, chain: &mut Value) -> Option<String> {
    let r = http
        .post(format!("{as_base}/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", chain["refresh_token"].as_str()?),
            ("client_id", chain["client_id"].as_str()?),
        ])
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    let v: Value = r.json().await.ok()?;
    chain["refresh_token"] = v["refresh_token"].clone();
    v["access_token"].as_str().map(str::to_owned)
}

/// The steady load: `conns` connections of `tools/call` in segments of `segment` (so
/// that calls are counted as they go), the token refreshed between segments once half
/// its life is over (as clients do before it expires).
async fn hot_load(
    http: reqwest::Client,
    base: String,
    mut chain: Value,
    conns: usize,
    segment: Duration,
    deadline: Instant,
    counts: Rc<Counts>,
) {
    let addr: SocketAddr = base.trim_start_matches("http://").parse().expect("addr");
    let half_life = Duration::from_secs(chain["expires_in"].as_u64().unwrap_or(120) / 2);
    let mut token = chain["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut issued = Instant::now();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let target = Arc::new(super::calc_target(addr, Some(&token)));
        let r = load::run(target, conns, left.min(segment)).await;
        Counts::add(&counts.hot_calls, r.ok);
        Counts::add(&counts.errors, r.errors);
        if issued.elapsed() >= half_life {
            match refresh(&http, &base, &mut chain).await {
                Some(t) => (token, issued) = (t, Instant::now()),
                None => Counts::add(&counts.errors, 1),
            }
        }
    }
}

/// A refresh rotation every `pace`, each new access token used at `rs_base` (twice at
/// a resource server that introspects: a miss, then a hit).
#[allow(clippy::too_many_arguments)]
async fn rotations(
    http: reqwest::Client,
    as_base: String,
    rs_base: String,
    mut chain: Value,
    pace: Duration,
    deadline: Instant,
    counts: Rc<Counts>,
    introspected: bool,
) {
    let mut tick = tokio::time::interval(pace);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while Instant::now() < deadline {
        tick.tick().await;
        let Some(token) = refresh(&http, &as_base, &mut chain).await else {
            Counts::add(&counts.errors, 1);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let uses = if introspected { 2 } else { 1 };
        for _ in 0..uses {
            if !call_once(&http, &rs_base, &token).await {
                Counts::add(&counts.errors, 1);
            }
        }
        Counts::add(
            if introspected {
                &counts.introspected
            } else {
                &counts.rotations
            },
            1,
        );
    }
}

/// A new person-session each time `now` is notified (just after each sample): a
/// stranger's failed sign-in (login throttling state), a sign-in, a registration,
/// consent, a code exchange, a call; every other time the grant is then revoked and
/// its access token must be refused. Sign-ins hash passwords with argon2id, whose
/// 19 MiB buffer stays resident for a moment after each: run just after a sample,
/// they are over before the next one, which sees the memory the server keeps.
async fn sign_ins(
    base: String,
    password: String,
    now: Rc<tokio::sync::Notify>,
    deadline: Instant,
    counts: Rc<Counts>,
) {
    let mut n = 0u64;
    while Instant::now() < deadline {
        now.notified().await;
        n += 1;
        let mut s = flow::Session::new(&base);
        let _ = s.login(&format!("stranger-{n}"), "wrong password").await;
        let tokens = async {
            s.login("admin", &password).await?;
            s.tokens(&format!("{base}/mcp")).await
        }
        .await;
        let Ok(t) = tokens else {
            Counts::add(&counts.errors, 1);
            continue;
        };
        let access = t["access_token"].as_str().unwrap_or_default();
        if !call_once(&s.http, &base, access).await {
            Counts::add(&counts.errors, 1);
        }
        Counts::add(&counts.sign_ins, 1);
        if n.is_multiple_of(2) {
            let revoked = s
                .http
                .post(format!("{base}/revoke"))
                .form(&[
                    ("token", t["refresh_token"].as_str().unwrap_or_default()),
                    ("client_id", t["client_id"].as_str().unwrap_or_default()),
                ])
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            // The grant is gone: its access token must be refused from now on.
            if revoked && !call_once(&s.http, &base, access).await {
                Counts::add(&counts.revocations, 1);
            } else {
                Counts::add(&counts.errors, 1);
            }
        }
    }
}
