//! Server processes: spawned pinned to one core when the machine has two, and
//! measured through /proc (CPU time, resident memory).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub struct Server {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
    pub name: &'static str,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// True when `taskset` exists and there are at least two cores.
pub fn can_pin() -> bool {
    // `nproc --all`: this process may itself be pinned to one core already, so its
    // own available parallelism says nothing about the machine.
    let cores = Command::new("nproc")
        .arg("--all")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(1);
    cores >= 2
        && Command::new("taskset")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
}

/// Spawns `bin args…` (on core `core` when pinning), stdout lines readable from `lines`.
pub fn spawn(
    name: &'static str,
    bin: &Path,
    args: &[String],
    core: Option<usize>,
) -> anyhow::Result<Server> {
    spawn_logging(name, bin, args, core, None)
}

/// [`spawn`], and with `log` set, logging JSON lines at that `RUST_LOG` filter to
/// stderr, whose lines also arrive in `lines`.
pub fn spawn_logging(
    name: &'static str,
    bin: &Path,
    args: &[String],
    core: Option<usize>,
    log: Option<&str>,
) -> anyhow::Result<Server> {
    let mut cmd = match core {
        Some(c) => {
            let mut cmd = Command::new("taskset");
            cmd.arg("-c").arg(c.to_string()).arg(bin);
            cmd
        }
        None => Command::new(bin),
    };
    cmd.args(args).stdout(Stdio::piped());
    match log {
        Some(filter) => cmd
            .env("RUST_LOG", filter)
            .env("MCPGATE_LOG_FORMAT", "json")
            .stderr(Stdio::piped()),
        None => cmd.env("RUST_LOG", "warn").stderr(Stdio::null()),
    };
    let mut child = cmd.spawn()?;
    let (tx, rx) = mpsc::channel();
    let forward = |out: Box<dyn std::io::Read + Send>, tx: mpsc::Sender<String>| {
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    };
    forward(Box::new(child.stdout.take().expect("piped")), tx.clone());
    if let Some(err) = child.stderr.take() {
        forward(Box::new(err), tx);
    }
    Ok(Server {
        child,
        lines: rx,
        name,
    })
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a stdout line containing `needle`; returns it.
    pub fn wait_line(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = std::time::Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return Some(l),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
        None
    }

    /// Open file descriptors now.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// CPU seconds used so far (user + system).
    pub fn cpu_secs(&self) -> f64 {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())) else {
            return 0.0;
        };
        // Fields after the command name (which may contain spaces) start after ") ".
        let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        // utime and stime are fields 14 and 15 of the line: 12 and 13 after the name.
        (ticks(11) + ticks(12)) / clock_ticks()
    }

    /// Resident set size now, and its peak, in MB.
    pub fn rss_mb(&self) -> (f64, f64) {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let kb = |key: &str| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (kb("VmRSS:") / 1024.0, kb("VmHWM:") / 1024.0)
    }
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The machine's CPU time so far, as (all, stolen) seconds from `/proc/stat`: steal
/// is time a virtual machine's CPUs waited for the host, which no server can help.
pub fn machine_cpu_secs() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return (0.0, 0.0);
    };
    let f: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    let steal = f.get(7).copied().unwrap_or(0.0);
    (f.iter().sum::<f64>() / clock_ticks(), steal / clock_ticks())
}
