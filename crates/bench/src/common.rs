//! What every benchmark shares: latency summaries, child processes, servers on loopback.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Latencies of one path, sorted.
pub struct Timings {
    pub name: String,
    sorted: Vec<Duration>,
}

impl Timings {
    pub fn new(name: impl Into<String>, mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Self {
            name: name.into(),
            sorted: samples,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    pub fn quantile(&self, q: f64) -> Duration {
        let rank = ((self.sorted.len() as f64 * q).ceil() as usize).saturating_sub(1);
        self.sorted.get(rank).copied().unwrap_or_default()
    }

    pub fn median(&self) -> Duration {
        self.quantile(0.5)
    }
}

pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs a command to completion and returns its standard output, or its standard error as the
/// reason it failed.
pub fn run_command(command: &mut std::process::Command, what: &str) -> Result<String, String> {
    let output = command
        .output()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A server process on loopback, killed when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
}

impl Server {
    /// Starts `command` and waits for the line `{banner}ADDRESS` on its standard output.
    pub async fn start(mut command: Command, banner: &str) -> Result<Self, String> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {command:?}: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let line = lines
                .next_line()
                .await
                .map_err(|e| e.to_string())?
                .ok_or("the server exited before listening")?;
            if let Some(address) = line.strip_prefix(banner) {
                break address.trim().to_owned();
            }
        };
        // Keep draining its output so a chatty server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self { child, base })
    }

    /// Waits until `GET {path}` answers 200 (the server has loaded what it serves from).
    pub async fn wait_until_ready(&self, path: &str) -> Result<(), String> {
        let address = self.address()?;
        let started = std::time::Instant::now();
        loop {
            if crate::load::get_status(address, path).await == Some(200) {
                return Ok(());
            }
            if started.elapsed() > std::time::Duration::from_secs(300) {
                return Err(format!("{} never became ready", self.base));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// The socket address behind `base`.
    pub fn address(&self) -> Result<std::net::SocketAddr, String> {
        let authority = self.base.trim_start_matches("http://");
        authority
            .trim_end_matches('/')
            .parse()
            .map_err(|e| format!("{}: {e}", self.base))
    }

    /// Peak resident memory so far (`VmHWM`), in MiB, where /proc has it.
    pub fn peak_rss_mib(&self) -> Option<f64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }

    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}
