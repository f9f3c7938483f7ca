//! Starting and reaching the servers the benchmark measures: ports, arguments, the
//! first run of an authorization server, health checks, the calculator call itself,
//! and the floor (HTTP alone).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, header};
use serde_json::json;

use crate::load::{self, Target};
use crate::procs;

const FLOOR_BODY: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"resultType":"complete","content":[{"type":"text","text":"13"}],"structuredContent":{"result":13.0},"isError":false}}"#;

/// The floor: HTTP alone, answering a fixed, valid tools/call result.
pub fn floor(addr: SocketAddr) -> anyhow::Result<()> {
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

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub fn calc_target(addr: SocketAddr, token: Option<&str>) -> Target {
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
pub fn serve_args(port: u16, data_dir: &std::path::Path, resources: &[String]) -> Vec<String> {
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
pub fn no_guard_args(port: u16) -> Vec<String> {
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
pub fn introspection_args(
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
pub async fn start_first_run(
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
pub fn introspection_credentials(
    bin: &std::path::Path,
    data_dir: &std::path::Path,
) -> anyhow::Result<(String, String)> {
    client_add(bin, data_dir, &["--name", "bench RS", "--introspection"])
}

/// An app the operator registered with the CLI (confidential): the kind of client
/// whose repeated requests skip the consent page.
pub fn operator_app(
    bin: &std::path::Path,
    data_dir: &std::path::Path,
) -> anyhow::Result<(String, String)> {
    let redirect = crate::flow::REDIRECT;
    let args = [
        "--name",
        "bench app",
        "--confidential",
        "--redirect-uri",
        redirect,
    ];
    client_add(bin, data_dir, &args)
}

/// `mcpgate client add ARGS --json`: the client's id and secret.
fn client_add(
    bin: &std::path::Path,
    data_dir: &std::path::Path,
    args: &[&str],
) -> anyhow::Result<(String, String)> {
    let out = std::process::Command::new(bin)
        .args(["client", "add"])
        .args(args)
        .arg("--json")
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
pub async fn wait_healthy_within(addr: SocketAddr, timeout: Duration) -> anyhow::Result<()> {
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

pub async fn wait_healthy(addr: SocketAddr) -> anyhow::Result<()> {
    wait_healthy_within(addr, Duration::from_secs(10)).await
}

/// Polls until a tools/call succeeds; returns how long it took from now.
pub async fn first_call(addr: SocketAddr, token: Option<&str>) -> anyhow::Result<Duration> {
    let t = calc_target(addr, token);
    let start = Instant::now();
    // Polled about every millisecond (the timer's resolution), each call awaited to
    // its answer: the load loop's back-off after a refused connection (10 ms) made
    // this figure step by 12 ms.
    let limit = Duration::from_secs(10);
    while let Some(left) = limit.checked_sub(start.elapsed()) {
        if tokio::time::timeout(left, load::once(&t)).await == Ok(true) {
            return Ok(start.elapsed());
        }
        tokio::time::sleep(Duration::from_micros(250)).await;
    }
    anyhow::bail!("no successful call to {addr}")
}
