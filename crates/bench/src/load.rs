//! The load generator: N keep-alive HTTP/1.1 connections, each sending requests back
//! to back for a fixed time, checking every response.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

/// What to send and what a correct answer contains.
pub struct Target {
    pub addr: SocketAddr,
    pub path: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Builds the body of request number `seq` on connection `conn`.
    pub body: Box<dyn Fn(usize, u64) -> Bytes + Send + Sync>,
    /// A correct response is 2xx and contains these bytes.
    pub expect: Vec<u8>,
}

#[derive(Default, Clone)]
pub struct Round {
    pub ok: u64,
    pub errors: u64,
    pub latencies_us: Vec<u32>,
    pub elapsed: Duration,
}

impl Round {
    pub fn merge(&mut self, o: Round) {
        self.ok += o.ok;
        self.errors += o.errors;
        self.latencies_us.extend(o.latencies_us);
        self.elapsed += o.elapsed;
    }
    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
    pub fn percentile_ms(&mut self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        self.latencies_us.sort_unstable();
        let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[i] as f64 / 1000.0
    }
}

/// Runs `conns` connections against `target` for `dur`.
pub async fn run(target: Arc<Target>, conns: usize, dur: Duration) -> Round {
    let start = Instant::now();
    let deadline = start + dur;
    let mut tasks = Vec::new();
    for c in 0..conns {
        let t = target.clone();
        tasks.push(tokio::spawn(
            async move { connection(t, c, deadline).await },
        ));
    }
    let mut total = Round::default();
    for t in tasks {
        if let Ok(r) = t.await {
            total.ok += r.ok;
            total.errors += r.errors;
            total.latencies_us.extend(r.latencies_us);
        }
    }
    total.elapsed = start.elapsed();
    total
}

async fn connection(t: Arc<Target>, conn: usize, deadline: Instant) -> Round {
    let mut r = Round::default();
    let mut seq = 0u64;
    'reconnect: while Instant::now() < deadline {
        let Ok(stream) = tokio::net::TcpStream::connect(t.addr).await else {
            r.errors += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let Ok((mut sender, driver)) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
        else {
            r.errors += 1;
            continue;
        };
        tokio::spawn(driver);
        while Instant::now() < deadline {
            let sent = Instant::now();
            let Ok(good) = send(&t, &mut sender, conn, seq).await else {
                r.errors += 1;
                continue 'reconnect;
            };
            seq += 1;
            r.latencies_us
                .push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
            if good {
                r.ok += 1;
            } else {
                r.errors += 1;
            }
        }
    }
    r
}

/// Sends one request on `sender`; `Ok(true)` when it succeeded with the expected body,
/// `Err` when the connection failed.
async fn send(
    t: &Target,
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    conn: usize,
    seq: u64,
) -> Result<bool, ()> {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(&t.path)
        .header(http::header::HOST, t.addr.to_string());
    for (k, v) in &t.headers {
        req = req.header(k, v);
    }
    let req = req.body(Full::new((t.body)(conn, seq))).expect("request");
    let resp = sender.send_request(req).await.map_err(|_| ())?;
    let status = resp.status();
    let body = resp.into_body().collect().await.map_err(|_| ())?.to_bytes();
    Ok(status.is_success() && contains(&body, &t.expect))
}

/// One request on a new connection, answered however long it takes: `true` when it
/// succeeded. Refused connections return at once (no back-off), for measuring startup.
pub async fn once(t: &Target) -> bool {
    let Ok(stream) = tokio::net::TcpStream::connect(t.addr).await else {
        return false;
    };
    let _ = stream.set_nodelay(true);
    let Ok((mut sender, driver)) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    else {
        return false;
    };
    tokio::spawn(driver);
    send(t, &mut sender, 0, 0).await.unwrap_or(false)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}
