//! `mcpgate-bench`: what the gate costs, against a floor measured in the same run.
//!
//! Cells (all servers pinned to core 0, this load generator to core 1, when there are
//! two cores), measured at 1, 16 and 64 connections in interleaved rounds (A B C … A B
//! C …) so that drift on a shared machine cancels out:
//!
//! - floor: a minimal axum endpoint answering `POST /mcp` with a fixed tools/call result;
//! - no-guard: the calculator over rmcp, no authentication (`mcpgate mcp --insecure-no-auth`);
//! - jwt: `mcpgate serve`, in-process JWT validation;
//! - introspection (cached / uncached): `mcpgate mcp` against a separate `mcpgate serve`;
//! - gateway: `mcpgate serve --upstream` (JWT guard) in front of the no-guard calculator:
//!   its `/no-guard` ratio is the gateway's throughput over the upstream's direct one.
//!
//! Then the authorization server's endpoints, startup time and memory.
//!
//! `mcpgate-bench instructions` counts instructions per call instead, under valgrind
//! (see [`instructions`]): slower, but steady on a busy machine. `mcpgate-bench soak
//! [SECONDS]` runs a mix of load and token churn for long and watches memory (see
//! [`soak`]).
//!
//! Usage: `./scripts/bench` (builds in release mode first). Environment: BENCH_SECS
//! (seconds per round, default 2), BENCH_ROUNDS (default 5). Ratios are medians of the
//! rounds' ratios, with their range.

mod flow;
mod instructions;
mod load;
mod procs;
mod soak;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, header};
use load::{Round, Target};
use serde_json::json;
use sha2::{Digest, Sha256};

const FLOOR_BODY: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"resultType":"complete","content":[{"type":"text","text":"13"}],"structuredContent":{"result":13.0},"isError":false}}"#;

/// The allocator `mcpgate` uses, so that the floor measures HTTP, not a different
/// allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("floor") {
        return floor(args.get(2).context("floor ADDR")?.parse()?);
    }
    if args.get(1).map(String::as_str) == Some("load") {
        return drive(&args[2..]);
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    if args.get(1).map(String::as_str) == Some("token") {
        return token(&args[2..]);
    }
    if args.get(1).map(String::as_str) == Some("instructions") {
        let me = std::env::current_exe()?;
        let bin = me.with_file_name("mcpgate");
        let core = procs::can_pin().then_some(0);
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(instructions::run(me, bin, core));
    }
    if args.get(1).map(String::as_str) == Some("soak") {
        let secs = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(600);
        let bin = std::env::current_exe()?.with_file_name("mcpgate");
        let core = procs::can_pin().then_some(0);
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(soak::run(bin, core, secs));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(bench())
}

/// The floor: HTTP alone, answering a fixed, valid tools/call result.
fn floor(addr: SocketAddr) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let app = axum::Router::new()
            .route(
                "/mcp",
                axum::routing::post(|| async {
                    ([(header::CONTENT_TYPE, "application/json")], FLOOR_BODY)
                }),
            )
            .route("/healthz", axum::routing::get(|| async { "ok" }));
        let l = tokio::net::TcpListener::bind(addr).await?;
        println!("floor listening");
        axum::serve(l, app).await?;
        Ok(())
    })
}

/// `mcpgate-bench load ADDR CONNS SECS [TOKEN]`: calculator calls against a running
/// server, for profiling it (`perf record -p PID`, or the server under callgrind).
fn drive(args: &[String]) -> anyhow::Result<()> {
    let usage = "load ADDR CONNS SECS [TOKEN]";
    let addr: SocketAddr = args.first().context(usage)?.parse()?;
    let conns: usize = args.get(1).context(usage)?.parse()?;
    let secs: f64 = args.get(2).context(usage)?.parse()?;
    let target = Arc::new(calc_target(addr, args.get(3).map(String::as_str)));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut r = rt.block_on(load::run(target, conns, Duration::from_secs_f64(secs)));
    let (p50, p99) = (r.percentile_ms(0.5), r.percentile_ms(0.99));
    println!(
        "{} ok, {} errors, {:.0} req/s, p50 {p50:.3} ms, p99 {p99:.3} ms",
        r.ok,
        r.errors,
        r.rps()
    );
    Ok(())
}

/// `mcpgate-bench token BASE USER PASSWORD [RESOURCE]`: an access token from a running
/// `mcpgate serve`, through the whole flow (registration, login, consent, PKCE).
fn token(args: &[String]) -> anyhow::Result<()> {
    let usage = "token BASE USER PASSWORD [RESOURCE]";
    let base = args
        .first()
        .context(usage)?
        .trim_end_matches('/')
        .to_owned();
    let (user, password) = (args.get(1).context(usage)?, args.get(2).context(usage)?);
    let resource = args.get(3).cloned().unwrap_or(format!("{base}/mcp"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut session = flow::Session::new(&base);
        session.login(user, password).await?;
        let t = session.tokens(&resource).await?;
        println!("{}", t["access_token"].as_str().context("access_token")?);
        Ok(())
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

struct Cell {
    name: &'static str,
    target: Arc<Target>,
    servers: Vec<u32>,
}

fn calc_target(addr: SocketAddr, token: Option<&str>) -> Target {
    let mut headers: Vec<(HeaderName, HeaderValue)> = vec![
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ),
        (
            header::ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        ),
        (
            HeaderName::from_static("mcp-protocol-version"),
            HeaderValue::from_static("2026-07-28"),
        ),
        (
            HeaderName::from_static("mcp-method"),
            HeaderValue::from_static("tools/call"),
        ),
        (
            HeaderName::from_static("mcp-name"),
            HeaderValue::from_static("calculator"),
        ),
    ];
    if let Some(t) = token {
        headers.push((
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {t}")).expect("token"),
        ));
    }
    let body = Bytes::from(
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "calculator",
               "arguments": {"operation": "add", "a": 5, "b": 8},
               "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}})
        .to_string(),
    );
    Target {
        addr,
        path: "/mcp".into(),
        headers,
        body: Box::new(move |_, _| body.clone()),
        expect: br#""result":13"#.to_vec(),
    }
}

/// `mcpgate serve` on `port` with a fresh `data_dir`, also issuing for `resources`.
fn serve_args(port: u16, data_dir: &std::path::Path, resources: &[String]) -> Vec<String> {
    let mut args = vec![
        "serve".to_owned(),
        "--listen".to_owned(),
        format!("127.0.0.1:{port}"),
        "--public-url".to_owned(),
        format!("http://127.0.0.1:{port}"),
        "--data-dir".to_owned(),
        data_dir.display().to_string(),
        // The load runs register and exchange from one address as fast as they can.
        "--rate-limit-register=0".to_owned(),
        "--rate-limit-token=0".to_owned(),
    ];
    for r in resources {
        args.extend(["--resource".to_owned(), r.clone()]);
    }
    args
}

/// `mcpgate mcp --insecure-no-auth` on `port`.
fn no_guard_args(port: u16) -> Vec<String> {
    [
        "mcp",
        "--insecure-no-auth",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--public-url",
        &format!("http://127.0.0.1:{port}"),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// `mcpgate mcp` on `port`, validating by introspection at `issuer` with a cache of
/// `cache_secs`.
fn introspection_args(
    port: u16,
    issuer: &str,
    creds: &(String, String),
    cache_secs: u32,
) -> Vec<String> {
    [
        "mcp",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--public-url",
        &format!("http://127.0.0.1:{port}"),
        "--issuer",
        issuer,
        "--introspection-client-id",
        &creds.0,
        "--introspection-client-secret",
        &creds.1,
        "--introspection-cache-secs",
        &cache_secs.to_string(),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Starts the authorization server on its first run; returns it with the
/// administrator's one-time password, once it is healthy.
async fn start_first_run(
    bin: &std::path::Path,
    args: &[String],
    port: u16,
    core: Option<usize>,
) -> anyhow::Result<(procs::Server, String)> {
    let server = procs::spawn("serve", bin, args, core)?;
    let password = server
        .wait_line("password:", Duration::from_secs(20))
        .context("first-run password")?
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .to_owned();
    wait_healthy(([127, 0, 0, 1], port).into()).await?;
    Ok((server, password))
}

/// Introspection credentials for a resource server, made with the CLI.
fn introspection_credentials(
    bin: &std::path::Path,
    data_dir: &std::path::Path,
) -> anyhow::Result<(String, String)> {
    let out = std::process::Command::new(bin)
        .args([
            "client",
            "add",
            "--name",
            "bench RS",
            "--introspection",
            "--json",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .output()?;
    let creds: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("client add output")?;
    let field = |k: &str| {
        creds[k]
            .as_str()
            .map(str::to_owned)
            .context("client add output")
    };
    Ok((field("client_id")?, field("client_secret")?))
}

/// Polls `/healthz` until it answers, for at most `timeout`.
async fn wait_healthy_within(addr: SocketAddr, timeout: Duration) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if http
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    anyhow::bail!("{addr} did not become healthy within {timeout:?}")
}

async fn wait_healthy(addr: SocketAddr) -> anyhow::Result<()> {
    wait_healthy_within(addr, Duration::from_secs(10)).await
}

async fn bench() -> anyhow::Result<()> {
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let me = std::env::current_exe()?;
    let bin = me.with_file_name("mcpgate");
    anyhow::ensure!(
        bin.exists(),
        "{} not found: build with `cargo build --release -p mcpgate`",
        bin.display()
    );
    let core = procs::can_pin().then_some(0);
    let data_dir = std::env::temp_dir().join(format!("mcpgate-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);

    // --- servers -------------------------------------------------------------------
    let (p_as, p_nog, p_ic, p_iu, p_floor, p_gw) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let as_base = format!("http://127.0.0.1:{p_as}");
    let rs = |p: u16| format!("http://127.0.0.1:{p}");
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let serve_args = serve_args(
        p_as,
        &data_dir,
        &[format!("{}/mcp", rs(p_ic)), format!("{}/mcp", rs(p_iu))],
    );
    let started = Instant::now();
    let (as_srv, password) = start_first_run(&bin, &serve_args, p_as, core).await?;
    let first_start = started.elapsed();

    let mut session = flow::Session::new(&as_base);
    session.login("admin", &password).await?;
    let jwt = session.tokens(&format!("{as_base}/mcp")).await?;
    let tok_ic = session.tokens(&format!("{}/mcp", rs(p_ic))).await?;
    let tok_iu = session.tokens(&format!("{}/mcp", rs(p_iu))).await?;
    let creds = introspection_credentials(&bin, &data_dir)?;

    let t0 = Instant::now();
    let nog = procs::spawn("mcp --insecure-no-auth", &bin, &no_guard_args(p_nog), core)?;
    first_call(([127, 0, 0, 1], p_nog).into(), None).await?;
    let startup_nog = t0.elapsed();
    let introspect_args = |p: u16, cache: u32| introspection_args(p, &as_base, &creds, cache);
    let ic = procs::spawn(
        "mcp introspection cached",
        &bin,
        &introspect_args(p_ic, 60),
        core,
    )?;
    let iu = procs::spawn(
        "mcp introspection uncached",
        &bin,
        &introspect_args(p_iu, 0),
        core,
    )?;
    let fl = procs::spawn(
        "floor",
        &me,
        &s(&["floor", &format!("127.0.0.1:{p_floor}")]),
        core,
    )?;
    for p in [p_ic, p_iu, p_floor] {
        wait_healthy(([127, 0, 0, 1], p).into()).await?;
    }
    // The gateway: its own authorization server and data, the no-guard calculator as
    // its upstream.
    let gw_dir = data_dir.with_extension("gateway");
    let mut gw_args = self::serve_args(p_gw, &gw_dir, &[]);
    gw_args.extend(["--upstream".to_owned(), format!("{}/mcp", rs(p_nog))]);
    let (gw, gw_password) = start_first_run(&bin, &gw_args, p_gw, core).await?;
    let mut gw_session = flow::Session::new(&rs(p_gw));
    gw_session.login("admin", &gw_password).await?;
    let tok_gw = gw_session.tokens(&format!("{}/mcp", rs(p_gw))).await?;
    // restart-to-first-call for serve with existing data (keys persisted, token still valid)
    drop(as_srv);
    let t0 = Instant::now();
    let as_srv = procs::spawn("serve", &bin, &serve_args, core)?;
    first_call(([127, 0, 0, 1], p_as).into(), jwt["access_token"].as_str()).await?;
    let startup_serve = t0.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle: Vec<(String, f64)> = [
        (&as_srv, "serve"),
        (&nog, "mcp no-guard"),
        (&ic, "mcp introspection"),
    ]
    .iter()
    .map(|(s, n)| (n.to_string(), s.rss_mb().0))
    .collect();

    let addr = |p: u16| -> SocketAddr { ([127, 0, 0, 1], p).into() };
    let cells = vec![
        Cell {
            name: "floor (HTTP only)",
            target: Arc::new(calc_target(addr(p_floor), None)),
            servers: vec![fl.pid()],
        },
        Cell {
            name: "calculator, no guard",
            target: Arc::new(calc_target(addr(p_nog), None)),
            servers: vec![nog.pid()],
        },
        Cell {
            name: "guard: in-process JWT",
            target: Arc::new(calc_target(addr(p_as), jwt["access_token"].as_str())),
            servers: vec![as_srv.pid()],
        },
        Cell {
            name: "guard: introspection, cached",
            target: Arc::new(calc_target(addr(p_ic), tok_ic["access_token"].as_str())),
            servers: vec![ic.pid(), as_srv.pid()],
        },
        Cell {
            name: "guard: introspection, uncached",
            target: Arc::new(calc_target(addr(p_iu), tok_iu["access_token"].as_str())),
            servers: vec![iu.pid(), as_srv.pid()],
        },
        Cell {
            name: "gateway (JWT) -> no-guard calc",
            target: Arc::new(calc_target(addr(p_gw), tok_gw["access_token"].as_str())),
            servers: vec![gw.pid(), nog.pid()],
        },
    ];
    let servers = [&fl, &nog, &as_srv, &ic, &iu, &gw];
    let cpu_of = |pids: &[u32]| -> f64 {
        servers
            .iter()
            .filter(|s| pids.contains(&s.pid()))
            .map(|s| s.cpu_secs())
            .sum()
    };

    println!(
        "mcpgate benchmark: {} round(s) of {secs} s per cell, interleaved; servers {}",
        rounds,
        if core.is_some() {
            "pinned to core 0, load generator on core 1"
        } else {
            "unpinned (need 2 cores and taskset)"
        }
    );
    for c in &cells {
        let _ = load::run(c.target.clone(), 4, Duration::from_millis(500)).await; // warm-up
    }
    let mut table = Vec::new();
    let machine0 = procs::machine_cpu_secs();
    for conns in [1usize, 16, 64] {
        // Per cell: every round's requests/s, the merged round, the server CPU time.
        let mut acc: Vec<(Vec<f64>, Round, f64)> = cells
            .iter()
            .map(|_| (Vec::new(), Round::default(), 0.0))
            .collect();
        for _ in 0..rounds {
            for (i, c) in cells.iter().enumerate() {
                let cpu0 = cpu_of(&c.servers);
                let r = load::run(c.target.clone(), conns, Duration::from_secs(secs)).await;
                acc[i].2 += cpu_of(&c.servers) - cpu0;
                acc[i].0.push(r.rps());
                acc[i].1.merge(r);
            }
        }
        // Ratios are taken round by round (the cells of one round ran seconds apart)
        // and the median is shown with the range: one disturbed round moves neither.
        let per_round: Vec<Vec<f64>> = acc.iter().map(|a| a.0.clone()).collect();
        let ratio = |i: usize, base: usize| -> String {
            let mut v: Vec<f64> = per_round[i]
                .iter()
                .zip(&per_round[base])
                .map(|(a, b)| a / b.max(1e-9))
                .collect();
            v.sort_by(f64::total_cmp);
            let median = v[v.len() / 2];
            if v.len() >= 3 {
                format!("{median:.2} ({:.2}-{:.2})", v[0], v[v.len() - 1])
            } else {
                format!("{median:.2}")
            }
        };
        for i in 0..cells.len() {
            let (rps, cpu) = (acc[i].1.rps(), acc[i].2);
            let r = &mut acc[i].1;
            let cpu_us = cpu / (r.ok.max(1) as f64) * 1e6;
            let (p50, p99, errors) = (r.percentile_ms(0.5), r.percentile_ms(0.99), r.errors);
            table.push(format!(
                "{:<32} {:>5} {:>9.0} {:>7.3} {:>7.3} {:>6} {:>8.1} {:>17} {:>17}",
                cells[i].name,
                conns,
                rps,
                p50,
                p99,
                errors,
                cpu_us,
                if i >= 2 { ratio(i, 1) } else { "-".into() },
                if i >= 1 { ratio(i, 0) } else { "-".into() },
            ));
        }
    }
    println!(
        "\n{:<32} {:>5} {:>9} {:>7} {:>7} {:>6} {:>8} {:>17} {:>17}",
        "cell", "conns", "req/s", "p50 ms", "p99 ms", "errors", "cpu µs", "/no-guard", "/floor"
    );
    println!(
        "{:<32} {:>5} {:>9} {:>7} {:>7} {:>6} {:>8} {:>17} {:>17}",
        "", "", "", "", "", "", "per req", "median (range)", "median (range)"
    );
    for l in &table {
        println!("{l}");
    }
    let machine1 = procs::machine_cpu_secs();
    let (all, stolen) = (machine1.0 - machine0.0, machine1.1 - machine0.1);
    println!(
        "CPU time stolen by the host during the cells: {:.1}% (a busy host makes ratios wander; rerun)",
        100.0 * stolen / all.max(1e-9)
    );
    println!(
        "\nstartup to first successful tools/call: mcp (no guard) {:.0} ms; serve restart with data {:.0} ms; serve first run (keys, admin) to healthy {:.0} ms",
        startup_nog.as_secs_f64() * 1000.0,
        startup_serve.as_secs_f64() * 1000.0,
        first_start.as_secs_f64() * 1000.0
    );
    for (n, mb) in &idle {
        println!("idle RSS {n}: {mb:.1} MB");
    }
    for s in [&as_srv, &nog, &ic, &gw] {
        let (now, peak) = s.rss_mb();
        println!(
            "RSS after the runs, {}: {now:.1} MB (peak {peak:.1} MB)",
            s.name
        );
    }

    authorization_server(
        &as_base,
        &mut session,
        &creds.0,
        &creds.1,
        jwt["access_token"].as_str().unwrap(),
        secs,
    )
    .await?;
    let _ = std::fs::remove_dir_all(&data_dir);
    let _ = std::fs::remove_dir_all(&gw_dir);
    Ok(())
}

/// Polls until a tools/call succeeds; returns how long it took from now.
async fn first_call(addr: SocketAddr, token: Option<&str>) -> anyhow::Result<Duration> {
    let t = Arc::new(calc_target(addr, token));
    let start = Instant::now();
    for _ in 0..2000 {
        let r = load::run(t.clone(), 1, Duration::from_millis(1)).await;
        if r.ok > 0 {
            return Ok(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    anyhow::bail!("no successful call to {addr}")
}

/// Requests per second of the authorization server's endpoints, 16 connections.
async fn authorization_server(
    base: &str,
    session: &mut flow::Session,
    rs_id: &str,
    rs_secret: &str,
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
        "code issuance", issue_rps
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
