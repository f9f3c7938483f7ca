//! `mcpgate-bench instructions`: what a call costs in instructions, counted by
//! valgrind's callgrind. Unlike requests/s, instruction counts do not move with what
//! else the machine is doing, so the guard's cost can be read to a few hundred
//! instructions on a busy machine. The kernel's share (the TCP stack) is not counted:
//! these ratios are of user-space work, and so stricter than the wall-clock ones.
//!
//! Each server runs under callgrind; after a warm-up its counters are zeroed, a fixed
//! load runs, and the counters are read (all threads, so background tasks count).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::{
    calc_target, flow, free_port, introspection_args, introspection_credentials, load,
    no_guard_args, procs, serve_args, start_first_run, wait_healthy_within,
};

struct Measured {
    name: &'static str,
    per_call: f64,
    calls: u64,
}

/// Sums the `Th N <count>` lines `callgrind_control -e` prints for a process.
fn instructions_so_far(pid: u32) -> anyhow::Result<f64> {
    let out = Command::new("callgrind_control")
        .args(["-e", &pid.to_string()])
        .output()
        .context("callgrind_control (valgrind) not found")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let total = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("Th "))
        .filter_map(|l| l.split_whitespace().nth(2))
        .filter_map(|n| n.replace(',', "").parse::<f64>().ok())
        .sum();
    Ok(total)
}

/// Runs `bin args` under callgrind, loads it, and returns instructions per call.
async fn measure(
    name: &'static str,
    bin: &Path,
    args: &[String],
    port: u16,
    token: Option<&str>,
    out_dir: &Path,
    core: Option<usize>,
) -> anyhow::Result<Measured> {
    measure_at(name, bin, args, port, token, "/mcp", out_dir, core).await
}

/// [`measure`], calling the MCP endpoint at `path`.
#[allow(clippy::too_many_arguments)]
async fn measure_at(
    name: &'static str,
    bin: &Path,
    args: &[String],
    port: u16,
    token: Option<&str>,
    path: &str,
    out_dir: &Path,
    core: Option<usize>,
) -> anyhow::Result<Measured> {
    let mut vg_args = vec![
        "--tool=callgrind".to_owned(),
        format!("--callgrind-out-file={}/cg.%p", out_dir.display()),
        bin.display().to_string(),
    ];
    vg_args.extend_from_slice(args);
    let server = procs::spawn(name, Path::new("valgrind"), &vg_args, core)?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_healthy_within(addr, Duration::from_secs(120)).await?;
    let target = Arc::new(load::Target {
        path: path.to_owned(),
        ..calc_target(addr, token)
    });
    let _ = load::run(target.clone(), 4, Duration::from_secs(2)).await; // warm-up
    let zero = Command::new("callgrind_control")
        .args(["-z", &server.pid().to_string()])
        .output()?;
    anyhow::ensure!(zero.status.success(), "callgrind_control -z failed");
    let r = load::run(target, 4, Duration::from_secs(6)).await;
    let total = instructions_so_far(server.pid())?;
    if std::env::var_os("BENCH_KEEP_PROFILES").is_some() {
        // The measured window, written out before the server is stopped.
        Command::new("callgrind_control")
            .args(["-d", &server.pid().to_string()])
            .output()?;
    }
    anyhow::ensure!(
        r.errors == 0 && r.ok > 0,
        "{name}: {} errors, {} calls",
        r.errors,
        r.ok
    );
    Ok(Measured {
        name,
        per_call: total / r.ok as f64,
        calls: r.ok,
    })
}

pub async fn run(me: PathBuf, bin: PathBuf, core: Option<usize>) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("mcpgate-bench-cg-{}", std::process::id()));
    // BENCH_KEEP_PROFILES=1 keeps the callgrind profiles (`cg.<pid>`, one per server)
    // for `callgrind_annotate`.
    if std::env::var_os("BENCH_KEEP_PROFILES").is_some() {
        println!("profiles kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    std::fs::create_dir_all(&dir)?;
    let data_dir = dir.join("data");
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let (p_as, p_floor, p_nog, p_ic) = (free_port(), free_port(), free_port(), free_port());
    let as_base = format!("http://127.0.0.1:{p_as}");
    let rs_ic = format!("http://127.0.0.1:{p_ic}");
    let serve_args = serve_args(p_as, &data_dir, &[format!("{rs_ic}/mcp")]);

    // Tokens and resource-server credentials from a normal run of the AS.
    let (as_srv, password) = start_first_run(&bin, &serve_args, p_as, core).await?;
    let mut session = flow::Session::new(&as_base);
    session.login("admin", &password).await?;
    let jwt = session.tokens(&format!("{as_base}/mcp")).await?;
    let tok_ic = session.tokens(&format!("{rs_ic}/mcp")).await?;
    let creds = introspection_credentials(&bin, &data_dir)?;

    println!(
        "mcpgate instruction counts (valgrind callgrind; user space; 4 connections, 6 s per cell)\n"
    );
    let mut rows = Vec::new();
    rows.push(
        measure(
            "floor (HTTP only)",
            &me,
            &s(&["floor", &format!("127.0.0.1:{p_floor}")]),
            p_floor,
            None,
            &dir,
            core,
        )
        .await?,
    );
    rows.push(
        measure(
            "calculator, no guard",
            &bin,
            &no_guard_args(p_nog),
            p_nog,
            None,
            &dir,
            core,
        )
        .await?,
    );
    rows.push(
        measure(
            "guard: introspection, cached",
            &bin,
            &introspection_args(p_ic, &as_base, &creds, 60),
            p_ic,
            tok_ic["access_token"].as_str(),
            &dir,
            core,
        )
        .await?,
    );
    // The in-process cell is the AS itself: restarted under valgrind on the same data
    // (keys persist, so the token stays valid).
    drop(as_srv);
    rows.push(
        measure(
            "guard: in-process JWT",
            &bin,
            &serve_args,
            p_as,
            jwt["access_token"].as_str(),
            &dir,
            core,
        )
        .await?,
    );

    // The gateway: its own authorization server's data, in front of a no-guard
    // calculator that runs natively, so that only the gateway's instructions count.
    let (p_up, p_gw) = (free_port(), free_port());
    let upstream = procs::spawn("mcp no-guard (upstream)", &bin, &no_guard_args(p_up), core)?;
    wait_healthy_within(([127, 0, 0, 1], p_up).into(), Duration::from_secs(20)).await?;
    let mut gw_args = crate::serve_args(p_gw, &dir.join("gateway"), &[]);
    gw_args.extend([
        "--upstream".to_owned(),
        format!("http://127.0.0.1:{p_up}/mcp"),
    ]);
    let (gw, gw_password) = start_first_run(&bin, &gw_args, p_gw, core).await?;
    let gw_base = format!("http://127.0.0.1:{p_gw}");
    let mut gw_session = flow::Session::new(&gw_base);
    gw_session.login("admin", &gw_password).await?;
    let tok_gw = gw_session.tokens(&format!("{gw_base}/mcp")).await?;
    drop(gw);
    rows.push(
        measure(
            "gateway (JWT), gateway alone",
            &bin,
            &gw_args,
            p_gw,
            tok_gw["access_token"].as_str(),
            &dir,
            core,
        )
        .await?,
    );
    // The same, where the upstream takes each person's own token (connected accounts):
    // what the person's token costs a call (the vault, the body kept for a retry).
    let p_gwp = free_port();
    let (gwp, tok_gwp, gwp_args) = crate::gateway::start_personal_gateway(
        &bin,
        p_gwp,
        &format!("http://127.0.0.1:{p_up}/mcp"),
        dir.join("personal-gateway"),
        core,
    )
    .await?;
    drop(gwp);
    let personal = measure_at(
        "gateway (JWT, person's token)",
        &bin,
        &gwp_args,
        p_gwp,
        Some(&tok_gwp),
        "/mcp/calc",
        &dir,
        core,
    )
    .await?;
    drop(upstream);
    let gw_alone = rows.last().map_or(0.0, |m| m.per_call);

    let floor = rows[0].per_call;
    let nog = rows[1].per_call;
    println!(
        "{:<32} {:>8} {:>14} {:>10} {:>8}",
        "cell", "calls", "instr/call", "/no-guard", "/floor"
    );
    for (i, m) in rows.iter().enumerate() {
        println!(
            "{:<32} {:>8} {:>14.0} {:>10} {:>8.3}",
            m.name,
            m.calls,
            m.per_call,
            if i >= 2 {
                format!("{:.3}", nog / m.per_call)
            } else {
                "-".into()
            },
            floor / m.per_call
        );
    }
    let gw = gw_alone;
    println!(
        "{:<32} {:>8} {:>14.0} {:>10} {:>8.3}",
        personal.name,
        personal.calls,
        personal.per_call,
        format!("{:.3}", nog / personal.per_call),
        floor / personal.per_call
    );
    println!(
        "\na person's own upstream token costs the gateway {:+.0} instr/call ({:+.1}%)",
        personal.per_call - gw,
        (personal.per_call / gw - 1.0) * 100.0
    );
    println!(
        "\ngateway path (gateway + the upstream it calls): {:.0} instr/call; direct to the upstream: {nog:.0};\n\
         CPU-bound throughput through the gateway over direct, both on one core: {:.3}",
        gw + nog,
        nog / (gw + nog)
    );
    println!(
        "\n(/no-guard and /floor are throughput ratios: baseline instructions per call over the cell's.\n\
         SHA-256 runs without its CPU extensions under valgrind, which inflates the introspection cell.)"
    );
    // BENCH_KEEP_PROFILES=1 keeps the callgrind profiles (`cg.<pid>`, one per server)
    // for `callgrind_annotate`.
    if std::env::var_os("BENCH_KEEP_PROFILES").is_some() {
        println!("profiles kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
