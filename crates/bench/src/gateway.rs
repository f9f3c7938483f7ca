//! The gateway's figures: throughput through `mcpgate serve --upstream` over the
//! upstream's direct throughput and the latency it adds (from the cells' table), and
//! the memory an idle stdio session costs (gateway and child process together).
//!
//! `mcpgate-bench stdio-server` is the stdio upstream: a minimal MCP server speaking
//! the `initialize` revisions on stdin/stdout with the calculator's `add`, so that the
//! memory measured is the gateway's and a small process's, not an interpreter's.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};

use crate::{flow, procs, serve_args, start_first_run};

/// How many idle stdio sessions are opened to measure their memory.
pub const IDLE_SESSIONS: usize = 24;

/// `mcpgate-bench stdio-server`: answers `initialize`, `tools/list`, `tools/call`
/// (`calculator` adds `a` and `b`) and `ping`, one JSON-RPC message per line.
pub fn stdio_server() -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let line = line?;
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let Some(id) = msg.get("id").filter(|_| msg.get("method").is_some()) else {
            continue; // notifications and responses
        };
        let result = match msg["method"].as_str().unwrap_or_default() {
            "initialize" => json!({
                "protocolVersion": msg["params"]["protocolVersion"].as_str().unwrap_or("2025-11-25"),
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "bench-stdio", "version": "1"}
            }),
            "tools/list" => {
                json!({"tools": [{"name": "calculator", "inputSchema": {"type": "object"}}]})
            }
            "tools/call" => {
                let a = &msg["params"]["arguments"];
                let sum = a["a"].as_f64().unwrap_or(0.0) + a["b"].as_f64().unwrap_or(0.0);
                json!({"content": [{"type": "text", "text": sum.to_string()}],
                       "structuredContent": {"result": sum}, "isError": false})
            }
            "ping" => json!({}),
            _ => {
                let e = json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "Method not found"}});
                writeln!(out, "{e}")?;
                out.flush()?;
                continue;
            }
        };
        writeln!(
            out,
            "{}",
            json!({"jsonrpc": "2.0", "id": id, "result": result})
        )?;
        out.flush()?;
    }
    Ok(())
}

/// Resident memory of `pid` and of its child processes, in kB.
fn rss_kb_with_children(pid: u32) -> (f64, f64, usize) {
    let rss = |p: u32| {
        std::fs::read_to_string(format!("/proc/{p}/status"))
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let mut children = 0.0;
    let mut n = 0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(") ")
            .and_then(|(_, r)| r.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u32>().ok());
        if ppid == Some(pid) {
            children += rss(child);
            n += 1;
        }
    }
    (rss(pid), children, n)
}

/// A gateway in front of `upstream` (an MCP endpoint URL) whose upstream takes each
/// person's own token (`credentials = "per_person_token"`), with the admin's token
/// connected: its calls cost the vault's lookup and the person's `Authorization`.
pub async fn start_personal_gateway(
    bin: &std::path::Path,
    port: u16,
    upstream: &str,
    data_dir: std::path::PathBuf,
    core: Option<usize>,
) -> anyhow::Result<(procs::Server, String, Vec<String>)> {
    std::fs::create_dir_all(&data_dir)?;
    let config = data_dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "[[upstream]]\nname = \"calc\"\nurl = \"{upstream}\"\ncredentials = \"per_person_token\"\n\
             scopes = [{{ name = \"calc\", description = \"Use the calculator\" }}]\n\
             tools = [{{ name = \"*\", scope = \"calc\" }}]\n"
        ),
    )?;
    let mut args = serve_args(port, &data_dir, &[]);
    args.extend(["--config".to_owned(), config.display().to_string()]);
    let (server, password) = start_first_run(bin, &args, port, core).await?;
    let base = format!("http://127.0.0.1:{port}");
    let mut session = flow::Session::new(&base);
    session.login("admin", &password).await?;
    session
        .connect("calc", "the-admins-own-upstream-token")
        .await?;
    let t = session.tokens(&format!("{base}/mcp/calc")).await?;
    Ok((
        server,
        t["access_token"]
            .as_str()
            .context("access_token")?
            .to_owned(),
        args,
    ))
}

/// A gateway in front of `mcpgate-bench stdio-server`, with a token for it.
pub struct StdioGateway {
    pub server: procs::Server,
    pub addr: SocketAddr,
    pub token: String,
    pub data_dir: std::path::PathBuf,
}

pub async fn start_stdio_gateway(
    bin: &std::path::Path,
    me: &std::path::Path,
    port: u16,
    data_dir: std::path::PathBuf,
    core: Option<usize>,
) -> anyhow::Result<StdioGateway> {
    let mut args = serve_args(port, &data_dir, &[]);
    args.extend([
        "--upstream-command".to_owned(),
        format!("'{}' stdio-server", me.display()),
    ]);
    let (server, password) = start_first_run(bin, &args, port, core).await?;
    let base = format!("http://127.0.0.1:{port}");
    let mut session = flow::Session::new(&base);
    session.login("admin", &password).await?;
    let t = session.tokens(&format!("{base}/mcp")).await?;
    Ok(StdioGateway {
        server,
        addr: ([127, 0, 0, 1], port).into(),
        token: t["access_token"]
            .as_str()
            .context("access_token")?
            .to_owned(),
        data_dir,
    })
}

/// Opens [`IDLE_SESSIONS`] stdio sessions through `gw` (each a process of its own)
/// and prints what each costs in resident memory, gateway and child together.
pub async fn idle_session_rss(gw: &StdioGateway) -> anyhow::Result<()> {
    let http = reqwest::Client::builder().no_proxy().build()?;
    let url = format!("http://{}/mcp", gw.addr);
    let post = |body: Value, sid: Option<&str>| {
        let mut r = http
            .post(&url)
            .bearer_auth(&gw.token)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .body(body.to_string());
        if let Some(s) = sid {
            r = r.header("mcp-session-id", s);
        }
        r.send()
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (gw0, kids0, n0) = rss_kb_with_children(gw.server.pid());
    let mut sessions = Vec::new();
    for i in 0..IDLE_SESSIONS {
        let init = json!({"jsonrpc": "2.0", "id": i, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "bench", "version": "1"}}});
        let r = post(init, None).await?;
        let sid = r
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .context("no session id from the stdio gateway")?;
        r.bytes().await?;
        let done = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        post(done, Some(&sid)).await?;
        sessions.push(sid);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (gw1, kids1, n1) = rss_kb_with_children(gw.server.pid());
    let n = sessions.len() as f64;
    println!(
        "\nidle stdio sessions through the gateway ({} sessions, upstream `mcpgate-bench stdio-server`, {} → {} child processes):",
        sessions.len(),
        n0,
        n1
    );
    println!(
        "  RSS per idle session: {:.2} MB in all = gateway {:.3} MB + its stdio process {:.2} MB",
        (gw1 + kids1 - gw0 - kids0) / 1024.0 / n,
        (gw1 - gw0) / 1024.0 / n,
        (kids1 - kids0) / 1024.0 / n
    );
    println!(
        "  (a real server's process weighs what its runtime does: a Node or Python server is tens of MB)"
    );
    for sid in &sessions {
        let _ = http
            .delete(&url)
            .bearer_auth(&gw.token)
            .header("mcp-session-id", sid)
            .send()
            .await;
    }
    Ok(())
}

/// The gateway against the upstream it fronts, per connection count: `stats` holds
/// (connections, p50 ms, p99 ms, throughput ratio text) of the gateway and of the
/// direct cell.
pub fn summary(rows: &[(usize, [f64; 2], [f64; 2], String)]) {
    println!(
        "\ngateway (JWT guard) vs the same upstream called directly, same run:\n{:>6} {:>22} {:>13} {:>13}",
        "conns", "throughput gw/direct", "added p50 ms", "added p99 ms"
    );
    for (conns, gw, direct, ratio) in rows {
        println!(
            "{conns:>6} {ratio:>22} {:>13.3} {:>13.3}",
            gw[0] - direct[0],
            gw[1] - direct[1]
        );
    }
    println!(
        "(servers share core 0: through the gateway, the gateway and the upstream split one core, so the\n\
         ratio is bounded by upstream CPU / (upstream + gateway CPU) per call; see the cpu µs column)"
    );
}
