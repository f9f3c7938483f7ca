//! One stdio server process: spawned with the upstream's command, environment and
//! working directory; JSON-RPC messages one per line on stdin and stdout (MCP
//! transport, "stdio": no embedded newlines); stderr into mcpgate's log under the
//! upstream's name. Dropping the process closes its stdin and kills it.
//!
//! A third-party server is kept away from mcpgate's secrets: it inherits only the
//! environment a program needs (never mcpgate's own variables), runs in an empty
//! working directory of its own unless the operator names one (never one that holds
//! the data directory or the key: [`crate::config::UpstreamConfig::check_isolation`]),
//! and, with `run_as`, as another user, who cannot read files that only mcpgate's
//! user can (the key-encryption key, the SQLite database: both 0600 in a 0700
//! directory).

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

/// The user a process runs as (`run_as`), resolved once from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
    /// The account's name and home, when it has an entry in `/etc/passwd`.
    pub name: Option<String>,
}

impl RunAs {
    /// `uid`, `uid:gid`, or a user name looked up in `/etc/passwd` (its primary group).
    pub fn resolve(spec: &str) -> std::io::Result<Self> {
        let bad = || std::io::Error::other(format!("run_as {spec:?}: no such user"));
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let entry = |pred: &dyn Fn(&[&str]) -> bool| {
            passwd
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() >= 4 && pred(f))
        };
        let (uid, gid) = match spec.split_once(':') {
            Some((u, g)) => (u.parse().map_err(|_| bad())?, g.parse().map_err(|_| bad())?),
            None => match spec.parse::<u32>() {
                Ok(uid) => {
                    let gid = entry(&|f| f[2] == spec)
                        .and_then(|f| f[3].parse().ok())
                        .unwrap_or(uid);
                    (uid, gid)
                }
                Err(_) => {
                    let f = entry(&|f| f[0] == spec).ok_or_else(bad)?;
                    (
                        f[2].parse().map_err(|_| bad())?,
                        f[3].parse().map_err(|_| bad())?,
                    )
                }
            },
        };
        if uid == 0 {
            return Err(std::io::Error::other(format!(
                "run_as {spec:?}: root would read mcpgate's secrets; name an unprivileged user"
            )));
        }
        let name = entry(&|f| f[2].parse() == Ok(uid)).map(|f| f[0].to_owned());
        Ok(Self { uid, gid, name })
    }
}

/// A working directory made for one process: empty, private to the process's user,
/// removed when the process ends.
struct Workdir(std::path::PathBuf);

impl Workdir {
    fn create(upstream: &str, owner: Option<&RunAs>) -> std::io::Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!(
            "mcpgate-upstream-{upstream}-{}",
            mcpgate_core::secret::random_id()
        ));
        std::fs::create_dir(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        if let Some(u) = owner {
            std::os::unix::fs::chown(&dir, Some(u.uid), Some(u.gid))?;
        }
        Ok(Self(dir))
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub struct Process {
    child: Mutex<Option<Child>>,
    /// The process's own working directory, when mcpgate made it.
    _workdir: Option<Workdir>,
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
        Self::spawn_with(cfg, &[], on_line, on_exit)
    }

    /// [`spawn`](Self::spawn), with `extra` variables in the environment (a person's
    /// own secrets, for a process that serves that person alone).
    pub fn spawn_with(
        cfg: &UpstreamConfig,
        extra: &[(String, String)],
        on_line: impl Fn(Bytes) + Send + 'static,
        on_exit: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<Arc<Self>> {
        let command = cfg.command.as_deref().unwrap_or_default();
        let run_as = cfg.run_as.as_deref().map(RunAs::resolve).transpose()?;
        let mut cmd = Command::new("sh");
        // `exec`: the server replaces the shell, so signals reach it.
        cmd.arg("-c")
            .arg(format!("exec {command}"))
            .env_clear()
            .envs(std::env::vars_os().filter(|(k, _)| k.to_str().is_some_and(inherited)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let workdir = match &cfg.cwd {
            Some(dir) => {
                cmd.current_dir(dir);
                None
            }
            None => {
                let w = Workdir::create(&cfg.name, run_as.as_ref())?;
                cmd.current_dir(&w.0);
                Some(w)
            }
        };
        if let Some(u) = &run_as {
            use std::os::unix::process::CommandExt;
            // As root, std also drops the supplementary groups (setgroups(0)).
            cmd.uid(u.uid).gid(u.gid);
            // Not root's home: the process's own directory (npm and pip keep caches
            // there).
            if let Some(w) = &workdir {
                cmd.env("HOME", &w.0);
            }
            if let Some(name) = &u.name {
                cmd.env("USER", name).env("LOGNAME", name);
            }
        }
        cmd.envs(&cfg.env).envs(extra.iter().map(|(k, v)| (k, v)));
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
            _workdir: workdir,
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

    /// Runs the shell script `script` as the upstream `cfg` would run a server, and
    /// returns what it printed.
    async fn output_of(mut cfg: UpstreamConfig, script: &str) -> Vec<String> {
        cfg.command = Some(format!("sh -c '{script}'"));
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
        tokio::time::timeout(std::time::Duration::from_secs(30), exited)
            .await
            .expect("the command ends")
            .unwrap();
        lines.lock().unwrap().clone()
    }

    /// Before, a child ran in mcpgate's own working directory, where `mcpgate-data/`
    /// (and its key) is by default.
    #[tokio::test]
    async fn a_stdio_server_runs_in_an_empty_directory_of_its_own() {
        let cfg = UpstreamConfig::from_flag("cwd-test", None, None);
        let out = output_of(cfg, "pwd; ls -A | wc -l; stat -c %a .").await;
        let here = std::env::current_dir().unwrap();
        assert_ne!(
            out[0],
            here.display().to_string(),
            "not mcpgate's directory"
        );
        assert!(out[0].contains("mcpgate-upstream-cwd-test-"), "{out:?}");
        assert_eq!(out[1].trim(), "0", "empty");
        assert_eq!(out[2], "700", "private");
        assert!(
            !std::path::Path::new(&out[0]).exists(),
            "removed when the process ends"
        );
    }

    #[test]
    fn a_working_directory_holding_the_secrets_is_refused() {
        let data = std::env::temp_dir().join(format!("mcpgate-data-{}", random()));
        std::fs::create_dir_all(&data).unwrap();
        let key = data.join("key-encryption.key");
        let mut cfg = UpstreamConfig::from_flag("x", None, Some("true".into()));
        for bad in [
            data.parent().unwrap().to_path_buf(),
            data.clone(),
            data.join("sub"),
        ] {
            cfg.cwd = Some(bad.clone());
            assert!(
                cfg.check_isolation(&[data.clone(), key.clone()]).is_err(),
                "{bad:?}"
            );
        }
        cfg.cwd = Some(std::env::temp_dir().join(format!("elsewhere-{}", random())));
        assert!(cfg.check_isolation(&[data.clone(), key]).is_ok());
        let _ = std::fs::remove_dir_all(&data);
    }

    fn random() -> String {
        mcpgate_core::secret::random_id()
    }

    /// A file only mcpgate's user may read (as the key-encryption key is) stays
    /// unreadable to a server run as another user. Needs root to change user: skipped,
    /// saying so, otherwise.
    #[tokio::test]
    async fn a_server_run_as_another_user_cannot_read_mcpgates_files() {
        use std::os::unix::fs::PermissionsExt;
        if std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
            !s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        }) {
            eprintln!("SKIPPED: run_as needs root to change user");
            return;
        }
        let secret = std::env::temp_dir().join(format!("mcpgate-secret-{}", random()));
        std::fs::write(&secret, "key\n").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut cfg = UpstreamConfig::from_flag("run-as-test", None, None);
        let read = format!(
            "id -u; cat {} 2>/dev/null || echo refused",
            secret.display()
        );
        assert_eq!(
            output_of(cfg.clone(), &read).await[1],
            "key",
            "mcpgate's user reads it"
        );
        cfg.run_as = Some("nobody".into());
        let out = output_of(cfg, &read).await;
        assert_eq!(out[0], "65534");
        assert_eq!(out[1], "refused");
        let _ = std::fs::remove_file(&secret);
        assert!(RunAs::resolve("root").is_err(), "never root");
        assert!(RunAs::resolve("0:0").is_err());
        assert!(RunAs::resolve("no-such-user-here").is_err());
        assert_eq!(RunAs::resolve("65534:65534").unwrap().uid, 65534);
    }
}
