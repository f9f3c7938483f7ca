//! Operating the real binary: the metrics listener is separate from the public one,
//! `/readyz` reports the database and keys, and SIGTERM stops accepting, lets the
//! request in flight finish, writes the audit and exits 0. (What the metrics and
//! traces contain is tested in `tests/telemetry.rs`, a process of its own.)

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mcpgate_core::ScopeSet;
use mcpgate_core::jwt::{AccessClaims, Audience, KeyRing};
use mcpgate_core::secret::random_id;
use mcpgate_domain::store::prelude::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::temp_dir;

/// A free port on loopback (bound, then released for the child to bind).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Served {
    child: Child,
    base: String,
    metrics: Option<String>,
    data_dir: std::path::PathBuf,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// Starts `mcpgate serve` on a fresh data directory and reads its banner.
fn serve(extra: &[&str]) -> Served {
    let data_dir = temp_dir();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcpgate"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--public-url",
            &base,
        ])
        .arg("--data-dir")
        .arg(&data_dir)
        .args(extra)
        .env_remove("MCPGATE_METRICS_LISTEN")
        .env_remove("MCPGATE_OTLP_ENDPOINT")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut metrics = None;
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in out.by_ref() {
        let line = line.unwrap();
        if let Some(url) = line.trim().strip_prefix("metrics (Prometheus):") {
            metrics = Some(url.trim().to_owned());
        }
        if line.contains("Connect a client") {
            break;
        }
    }
    // Keep reading, so that the server never writes to a closed pipe.
    std::thread::spawn(move || out.for_each(drop));
    Served {
        child,
        base,
        metrics,
        data_dir,
    }
}

/// An access token for the calculator, signed with the server's key from its store.
async fn token(s: &Served, scope: &str) -> String {
    // Opened as the binary opens it: its signing keys are sealed under the key in
    // the data directory.
    let store = mcpgate::config::Storage {
        url: None,
        dir: s.data_dir.clone(),
        kek: Default::default(),
    }
    .open()
    .await
    .unwrap();
    let now = chrono_now();
    let keys = mcpgate_server::flows::keys::load(&store, now)
        .await
        .unwrap();
    let ring = KeyRing::new(&keys);
    ring.sign(&AccessClaims {
        iss: s.base.clone(),
        sub: "user-1".into(),
        aud: Audience::One(format!("{}/mcp", s.base)),
        client_id: "client-1".into(),
        scope: ScopeSet::parse(scope).unwrap(),
        jti: random_id(),
        iat: now,
        exp: now + 300,
        nbf: None,
        username: Some("alice".into()),
        session_id: Some(random_id()),
        cnf: None,
    })
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn call_body(op: &str) -> String {
    json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "calculator", "arguments": {"operation": op, "a": 5, "b": 8},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": {}}}})
    .to_string()
}

fn http() -> reqwest::Client {
    crate::support::install_crypto();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn call(s: &Served, token: &str) -> reqwest::Response {
    http()
        .post(format!("{}/mcp", s.base))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "calculator")
        .body(call_body("add"))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn metrics_are_on_their_own_listener_and_off_unless_asked_for() {
    let s = serve(&["--metrics-listen", "127.0.0.1:0"]);
    let metrics = s.metrics.clone().expect("the banner names the metrics URL");
    let r = http().get(&metrics).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let r = http()
        .get(format!("{}/healthz", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = http()
        .get(&metrics)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"mcpgate_http_requests_total{route="/healthz",status="200"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("mcpgate_db_pool_connections{state=\"open\"}"),
        "{text}"
    );
    // Never on the public port.
    let r = http()
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    drop(s);

    // Without the flag: no metrics anywhere, and the banner names none.
    let s = serve(&[]);
    assert!(s.metrics.is_none());
    let r = http()
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn readyz_reports_the_database_and_the_keys() {
    let s = serve(&[]);
    let r = http()
        .get(format!("{}/readyz", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["database"], "ok");
    assert_eq!(body["keys"], "loaded");
}

/// SIGTERM while a request is in flight: the server stops accepting, the request
/// completes, the audit count of calls made before is written, and the process exits 0.
#[tokio::test]
async fn sigterm_lets_the_request_in_flight_finish_then_writes_the_audit_and_exits_0() {
    let mut s = serve(&["--audit-interval", "3600", "--shutdown-grace", "10"]);
    let token = token(&s, "op:add").await;
    // A call counted before the signal (the audit writes only every hour here).
    assert_eq!(call(&s, &token).await.status(), 200);

    // A request in flight: its body arrives in two halves, the second after SIGTERM.
    let addr = s.base.strip_prefix("http://").unwrap().to_owned();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let body = call_body("add");
    let (first, second) = body.split_at(body.len() / 2);
    let head = format!(
        "POST /mcp HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\naccept: application/json, text/event-stream\r\n\
         mcp-protocol-version: 2026-07-28\r\nmcp-method: tools/call\r\nmcp-name: calculator\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{first}",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let pid = s.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    // Longer than a server without the grace would wait before exiting.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // No new connection is accepted now.
    assert!(
        tokio::net::TcpStream::connect(&addr).await.is_err(),
        "the listener still accepts after SIGTERM"
    );
    assert!(
        s.child.try_wait().unwrap().is_none(),
        "exited with a request in flight"
    );

    conn.write_all(second.as_bytes()).await.unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("13"), "the sum is in the answer: {answer}");

    let status = tokio::task::spawn_blocking(move || {
        let status = s.child.wait().unwrap();
        (status, s)
    })
    .await
    .unwrap();
    let (status, s) = status;
    assert!(status.success(), "exit status {status}");

    // Opened as the binary opens it: its signing keys are sealed under the key in
    // the data directory.
    let store = mcpgate::config::Storage {
        url: None,
        dir: s.data_dir.clone(),
        kek: Default::default(),
    }
    .open()
    .await
    .unwrap();
    let counted: u64 = store
        .audit_events(100)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.event == "tool_calls")
        .map(|e| {
            let d: Value = serde_json::from_str(&e.detail).unwrap();
            assert_eq!(d["operation"], "add");
            d["count"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(
        counted, 2,
        "both calls are in the audit written at shutdown"
    );
}
