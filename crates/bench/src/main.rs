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
//!   its `/no-guard` ratio is the gateway's throughput over the upstream's direct one,
//!   summed up with the latency it adds (see [`gateway`]);
//! - gateway -> stdio pool: 2026-07-28 calls served by the gateway's pool of stdio
//!   processes (`mcpgate-bench stdio-server`).
//!
//! Then the authorization server's endpoints, startup time and memory, and the memory
//! of idle stdio sessions through the gateway.
//!
//! `mcpgate-bench instructions` counts instructions per call instead, under valgrind
//! (see [`instructions`]): slower, but steady on a busy machine. `mcpgate-bench soak
//! [SECONDS]` runs a mix of load and token churn for long and watches memory (see
//! [`soak`]). `mcpgate-bench authz` runs the authorization server's figures alone.
//!
//! Usage: `./scripts/bench` (builds in release mode first). Environment: BENCH_SECS
//! (seconds per round, default 2), BENCH_ROUNDS (default 5). Ratios are medians of the
//! rounds' ratios, with their range.

mod authz;
mod flow;
mod gateway;
mod instructions;
mod load;
mod procs;
mod setup;
mod soak;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use load::{Round, Target};
pub(crate) use setup::{
    calc_target, first_call, floor, free_port, introspection_args, introspection_credentials,
    no_guard_args, serve_args, start_first_run, wait_healthy, wait_healthy_within,
};

/// The allocator `mcpgate` uses, so that the floor measures HTTP, not a different
/// allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("floor") {
        return floor(args.get(2).context("floor ADDR")?.parse()?);
    }
    if args.get(1).map(String::as_str) == Some("stdio-server") {
        return gateway::stdio_server();
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
    if args.get(1).map(String::as_str) == Some("authz") {
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(authz_only());
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

/// `mcpgate-bench authz`: the authorization server's figures alone (introspection,
/// registration, refresh, code exchange and issuance), for working on them.
async fn authz_only() -> anyhow::Result<()> {
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let bin = std::env::current_exe()?.with_file_name("mcpgate");
    let core = procs::can_pin().then_some(0);
    let data_dir = std::env::temp_dir().join(format!("mcpgate-bench-authz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let (_srv, password) =
        start_first_run(&bin, &serve_args(port, &data_dir, &[]), port, core).await?;
    let mut session = flow::Session::new(&base);
    session.login("admin", &password).await?;
    let jwt = session.tokens(&format!("{base}/mcp")).await?;
    let creds = introspection_credentials(&bin, &data_dir)?;
    let app = setup::operator_app(&bin, &data_dir)?;
    let r = authz::authorization_server(
        &base,
        &mut session,
        &creds.0,
        &creds.1,
        &app.0,
        jwt["access_token"].as_str().unwrap(),
        secs,
    )
    .await;
    let _ = std::fs::remove_dir_all(&data_dir);
    r
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

/// The cell whose ratio to the no-guard calculator is the gateway's figure.
const GATEWAY_CELL: &str = "gateway (JWT) -> no-guard calc";

struct Cell {
    name: &'static str,
    target: Arc<Target>,
    servers: Vec<u32>,
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
    let (p_as, p_nog, p_ic, p_iu, p_floor, p_gw, p_gws, p_gwp) = (
        free_port(),
        free_port(),
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
    // The same upstream with each person's own token (connected accounts).
    let (gwp, tok_gwp, _) = gateway::start_personal_gateway(
        &bin,
        p_gwp,
        &format!("{}/mcp", rs(p_nog)),
        data_dir.with_extension("personal-gateway"),
        core,
    )
    .await?;
    // A gateway in front of a stdio server: its stateless pool serves the cell's
    // 2026-07-28 calls; its sessions are measured for memory at the end.
    let gws_dir = data_dir.with_extension("stdio-gateway");
    let gws = gateway::start_stdio_gateway(&bin, &me, p_gws, gws_dir, core).await?;
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
            name: GATEWAY_CELL,
            target: Arc::new(calc_target(addr(p_gw), tok_gw["access_token"].as_str())),
            servers: vec![gw.pid(), nog.pid()],
        },
        Cell {
            name: "gateway (JWT, person's token) -> no-guard calc",
            target: Arc::new(Target {
                path: "/mcp/calc".into(),
                ..calc_target(addr(p_gwp), Some(&tok_gwp))
            }),
            servers: vec![gwp.pid(), nog.pid()],
        },
        Cell {
            name: "gateway (JWT) -> stdio pool (4)",
            target: Arc::new(calc_target(gws.addr, Some(&gws.token))),
            servers: vec![gws.server.pid()],
        },
    ];
    let servers = [&fl, &nog, &as_srv, &ic, &iu, &gw, &gwp, &gws.server];
    let gw_cell = cells
        .iter()
        .position(|c| c.name == GATEWAY_CELL)
        .unwrap_or(0);
    let mut gateway_rows = Vec::new();
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
        let mut lat = Vec::new();
        for i in 0..cells.len() {
            let (rps, cpu) = (acc[i].1.rps(), acc[i].2);
            let r = &mut acc[i].1;
            let cpu_us = cpu / (r.ok.max(1) as f64) * 1e6;
            let (p50, p99, errors) = (r.percentile_ms(0.5), r.percentile_ms(0.99), r.errors);
            lat.push([p50, p99]);
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
        gateway_rows.push((conns, lat[gw_cell], lat[1], ratio(gw_cell, 1)));
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
    gateway::summary(&gateway_rows);
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
    gateway::idle_session_rss(&gws).await?;
    for s in [&as_srv, &nog, &ic, &gw] {
        let (now, peak) = s.rss_mb();
        println!(
            "RSS after the runs, {}: {now:.1} MB (peak {peak:.1} MB)",
            s.name
        );
    }

    let app = setup::operator_app(&bin, &data_dir)?;
    authz::authorization_server(
        &as_base,
        &mut session,
        &creds.0,
        &creds.1,
        &app.0,
        jwt["access_token"].as_str().unwrap(),
        secs,
    )
    .await?;
    let _ = std::fs::remove_dir_all(&data_dir);
    let _ = std::fs::remove_dir_all(&gw_dir);
    let _ = std::fs::remove_dir_all(&gws.data_dir);
    Ok(())
}
