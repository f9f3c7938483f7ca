//! One stdio server process: spawned with the upstream's command, environment and
//! working directory; JSON-RPC messages one per line on stdin and stdout (MCP
//! transport, "stdio": no embedded newlines); stderr into mcpgate's log under the
//! upstream's name. Dropping the process closes its stdin and kills it.

use std::os::fd::OwnedFd;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::pipe;
use tokio_util::sync::CancellationToken;

use crate::config::UpstreamConfig;

/// Longest line read from a server's stdout; a longer one is dropped, logged.
pub const MAX_LINE_BYTES: usize = 32 * 1024 * 1024;
/// Longest stderr line logged (the rest is cut).
const MAX_LOG_LINE: usize = 4096;

/// What a stdio server inherits of mcpgate's environment: what a program needs to run
/// (search path, home, user, locale, time zone, temporary directory, terminal), never
/// the rest. mcpgate's own secrets (the key-encryption key, the database URL, client
/// secrets) may be in its environment, and a third-party server must not read them.
/// The upstream's `env` table adds what it needs.
const INHERITED: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM",
];

fn inherited(name: &str) -> bool {
    INHERITED.contains(&name) || name.starts_with("LC_")
}

pub struct Process {
    child: Mutex<Option<Child>>,
    stdin: tokio::sync::Mutex<pipe::Sender>,
    /// Cancelled when stdout ends: the process exited or closed it.
    pub dead: CancellationToken,
    pub pid: u32,
    /// Set when mcpgate itself ends the process: an end it did not ask for is a
    /// failure the operator must hear about (a command that cannot start, a crash).
    stopping: Arc<std::sync::atomic::AtomicBool>,
}

impl Process {
    /// Spawns the server; `on_line` receives each stdout line, `on_exit` runs once
    /// stdout ends.
    pub fn spawn(
        cfg: &UpstreamConfig,
        on_line: impl Fn(Bytes) + Send + 'static,
        on_exit: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<Arc<Self>> {
        let command = cfg.command.as_deref().unwrap_or_default();
        let mut cmd = Command::new("sh");
        // `exec`: the server replaces the shell, so signals reach it.
        cmd.arg("-c")
            .arg(format!("exec {command}"))
            .env_clear()
            .envs(std::env::vars_os().filter(|(k, _)| k.to_str().is_some_and(inherited)))
            .envs(&cfg.env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(dir) = &cfg.cwd {
            cmd.current_dir(dir);
        }
        let mut child = cmd.spawn()?;
        let pid = child.id();
        let take = |o: Option<OwnedFd>| o.ok_or_else(|| std::io::Error::other("no pipe"));
        let stdin = pipe::Sender::from_owned_fd(take(child.stdin.take().map(OwnedFd::from))?)?;
        let stdout = pipe::Receiver::from_owned_fd(take(child.stdout.take().map(OwnedFd::from))?)?;
        let stderr = pipe::Receiver::from_owned_fd(take(child.stderr.take().map(OwnedFd::from))?)?;
        let dead = CancellationToken::new();
        tracing::info!(upstream = cfg.name, pid, "started stdio upstream");
        let name = cfg.name.clone();
        tokio::spawn(log_stderr(name.clone(), stderr));
        let gone = dead.clone();
        let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let asked = stopping.clone();
        tokio::spawn(async move {
            read_lines(&name, stdout, on_line).await;
            if asked.load(std::sync::atomic::Ordering::Relaxed) {
                tracing::info!(upstream = name, pid, "stdio upstream stopped");
            } else {
                tracing::warn!(
                    upstream = name,
                    pid,
                    "stdio upstream exited or closed its output on its own (its stderr, logged \
                     above, may say why); its open requests fail, and the next one restarts it"
                );
            }
            gone.cancel();
            on_exit();
        });
        Ok(Arc::new(Self {
            child: Mutex::new(Some(child)),
            stdin: tokio::sync::Mutex::new(stdin),
            dead,
            pid,
            stopping,
        }))
    }

    /// Writes one message as one line. `msg` must hold no newline.
    pub async fn send(&self, msg: &[u8]) -> std::io::Result<()> {
        if self.dead.is_cancelled() {
            return Err(std::io::ErrorKind::BrokenPipe.into());
        }
        let mut w = self.stdin.lock().await;
        w.write_all(msg).await?;
        w.write_all(b"\n").await
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(mut child) = self.child.lock().unwrap_or_else(|e| e.into_inner()).take() {
            // Reaped off the runtime: `wait` blocks.
            std::thread::spawn(move || {
                let _ = child.kill();
                let _ = child.wait();
            });
        }
    }
}

async fn read_lines(name: &str, stdout: pipe::Receiver, on_line: impl Fn(Bytes)) {
    let mut r = BufReader::with_capacity(64 * 1024, stdout);
    let mut line = Vec::new();
    let mut oversized = false;
    loop {
        let buf = match r.fill_buf().await {
            Ok([]) | Err(_) => return,
            Ok(b) => b,
        };
        let (chunk, done) = match memchr(buf) {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        if !oversized {
            if line.len() + chunk.len() > MAX_LINE_BYTES {
                oversized = true;
                line.clear();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let used = done.unwrap_or(buf.len());
        r.consume(used);
        if done.is_some() {
            if oversized {
                tracing::warn!(
                    upstream = name,
                    "dropped an over-long line from a stdio upstream"
                );
            } else if !line.iter().all(u8::is_ascii_whitespace) {
                on_line(Bytes::from(std::mem::take(&mut line)));
            }
            line.clear();
            oversized = false;
        }
    }
}

fn memchr(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

async fn log_stderr(name: String, stderr: pipe::Receiver) {
    let mut lines = BufReader::new(stderr).split(b'\n');
    while let Ok(Some(line)) = lines.next_segment().await {
        let text = String::from_utf8_lossy(&line[..line.len().min(MAX_LOG_LINE)]);
        tracing::info!(target: "mcpgate::upstream", upstream = name, "{}", text.trim_end());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// `cargo test` runs tests with `CARGO_*` variables set: stand-ins for the secrets
    /// an operator puts in mcpgate's environment.
    #[tokio::test]
    async fn a_stdio_server_gets_only_the_inherited_variables_and_its_own() {
        assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
        let mut cfg = UpstreamConfig::from_flag("env-test", None, Some("env".into()));
        cfg.env.insert("UPSTREAM_OWN".into(), "yes".into());
        let lines = Arc::new(Mutex::new(Vec::new()));
        let seen = lines.clone();
        let (done, exited) = tokio::sync::oneshot::channel();
        let _p = Process::spawn(
            &cfg,
            move |l| {
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&l).into_owned())
            },
            move || {
                let _ = done.send(());
            },
        )
        .unwrap();
        exited.await.unwrap();
        let names: Vec<String> = lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| l.split_once('=').map(|(k, _)| k.to_owned()))
            .collect();
        assert!(names.iter().any(|n| n == "PATH"), "{names:?}");
        assert!(names.iter().any(|n| n == "UPSTREAM_OWN"), "{names:?}");
        for n in &names {
            assert!(
                inherited(n) || n == "UPSTREAM_OWN" || n == "PWD" || n == "SHLVL" || n == "_",
                "{n} leaked to the upstream"
            );
        }
    }
}
