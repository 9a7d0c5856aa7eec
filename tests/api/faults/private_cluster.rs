//! A PostgreSQL cluster of the test's own, in a temporary directory on a free port, which the
//! test may stop hard and start again. The machine's shared server (the one
//! `VICINITY_TEST_POSTGRES_URL` names) is never touched: other tests use it meanwhile.
//!
//! The server binaries come from `/usr/lib/postgresql/<version>/bin` (Debian's layout).
//! `initdb` refuses to run as root, so as root everything runs as the `postgres` user, in a
//! directory it owns.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian installs each PostgreSQL version's server binaries.
const INSTALLS: &str = "/usr/lib/postgresql";

pub struct PrivateCluster {
    bin: PathBuf,
    /// Holds `data/`, the server's log and its socket; removed after the server stops.
    dir: tempfile::TempDir,
    port: u16,
    /// The user the server runs as when the test runs as root.
    run_as: Option<&'static str>,
}

impl PrivateCluster {
    /// Whether the server binaries a cluster needs are installed.
    pub fn installed() -> bool {
        server_binaries().is_some()
    }

    /// Creates a cluster and starts it. `Err` says why it could not be.
    pub fn start() -> Result<Self, String> {
        let bin = server_binaries().ok_or_else(|| {
            format!("no PostgreSQL server binaries in {INSTALLS}/*/bin (install `postgresql`)")
        })?;
        let root = std::fs::metadata("/proc/self")
            .map_err(|e| format!("cannot tell who runs the test: {e}"))?
            .uid()
            == 0;
        let run_as = root.then_some("postgres");
        let dir = tempfile::Builder::new()
            .prefix("vicinity-pg-")
            .tempdir()
            .map_err(|e| format!("cannot create a temp dir: {e}"))?;
        if let Some(user) = run_as {
            run(Command::new("chown")
                .arg(format!("{user}:"))
                .arg(dir.path()))?;
        }
        let mut cluster = PrivateCluster {
            bin,
            dir,
            port: 0,
            run_as,
        };
        let data = cluster.data();
        cluster.run_server_binary(
            "initdb",
            &[
                "-D",
                path_str(&data)?,
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        )?;
        // Another process may take the free port before the server binds it: try a few.
        let mut last_error = String::new();
        for _ in 0..3 {
            cluster.port = free_port()?;
            match cluster.resume() {
                Ok(()) => return Ok(cluster),
                Err(error) => last_error = error,
            }
        }
        Err(last_error)
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server in `pg_ctl`'s `mode`: `immediate` as a crash would (every backend
    /// killed at once, no checkpoint), `fast` as an operator's restart does (sessions ended
    /// with an error, then a checkpoint).
    pub fn stop(&self, mode: &str) -> Result<(), String> {
        let data = self.data();
        self.run_server_binary(
            "pg_ctl",
            &["stop", "-D", path_str(&data)?, "-m", mode, "-w"],
        )
    }

    /// Starts the server (again), on the same port, and waits until it accepts connections.
    pub fn resume(&self) -> Result<(), String> {
        let data = self.data();
        let log = self.dir.path().join("server.log");
        let options = format!(
            "-c port={} -c listen_addresses=127.0.0.1 -c unix_socket_directories={}",
            self.port,
            path_str(self.dir.path())?
        );
        self.run_server_binary(
            "pg_ctl",
            &[
                "start",
                "-D",
                path_str(&data)?,
                "-l",
                path_str(&log)?,
                "-o",
                &options,
                "-w",
                "-t",
                "60",
            ],
        )
        .map_err(|error| format!("{error}\nserver log:\n{}", self.log()))
    }

    /// The server's log so far, to explain a failure.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run_server_binary(&self, name: &str, args: &[&str]) -> Result<(), String> {
        let program = self.bin.join(name);
        let mut command = match self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(&program);
                command
            }
            None => Command::new(&program),
        };
        // The server's own working directory must be one it may read.
        command.args(args).current_dir(self.dir.path());
        run(&mut command)
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        // Already stopped is fine; the directory goes when `dir` drops, after this.
        if self.port != 0 {
            let _ = self.stop("immediate");
        }
    }
}

/// The `bin` directory of the newest PostgreSQL version installed, if any.
fn server_binaries() -> Option<PathBuf> {
    std::fs::read_dir(INSTALLS)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((version, bin))
        })
        .max()
        .map(|(_, bin)| bin)
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("cannot find a free port: {e}"))?;
    listener
        .local_addr()
        .map(|address| address.port())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

fn path_str(path: &Path) -> Result<&str, String> {
    path.to_str()
        .ok_or_else(|| format!("not UTF-8: {}", path.display()))
}

/// Runs `command` to its end; `Err` with its output unless it succeeded.
fn run(command: &mut Command) -> Result<(), String> {
    let output = command
        .output()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{command:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}
