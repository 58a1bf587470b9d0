//! Running example binaries as child processes.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The path of example `name` of package `package`, built for the profile of the running
/// test binary.
///
/// `cargo test` builds a package's examples next to its test binaries
/// (`target/<profile>/examples/`). When the binary is missing, or older than a source file
/// of the workspace's crates (for example because only one test target was built), it is
/// built with `cargo build --example` first.
pub fn example_binary(package: &str, name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test binary>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary inside target/<profile>/deps");
    let path = profile_dir.join("examples").join(name);
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let built = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
    let stale = match built {
        None => true,
        Some(built) => newest_source(&workspace.join("crates")).is_some_and(|t| t > built),
    };
    if stale {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let target_dir = profile_dir.parent().expect("target dir");
        let mut cmd = std::process::Command::new(cargo);
        cmd.current_dir(&workspace)
            .args(["build", "-p", package, "--example", name, "--target-dir"])
            .arg(target_dir);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "cargo build --example {name} failed");
    }
    assert!(path.exists(), "example binary {} not found", path.display());
    path
}

/// The latest modification time of a `.rs` or `Cargo.toml` file under `dir`.
fn newest_source(dir: &Path) -> Option<std::time::SystemTime> {
    let mut newest = None;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let p = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "rs")
                || p.file_name().is_some_and(|n| n == "Cargo.toml")
            {
                if let Ok(t) = meta.modified() {
                    newest = newest.max(Some(t));
                }
            }
        }
    }
    newest
}

/// A running service process that printed `listening on ADDR`. Killed on drop.
pub struct ServiceProcess {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<VecDeque<String>>>,
}

impl ServiceProcess {
    /// Starts `binary` with `args` and waits (up to 60 s) for its `listening on ADDR` line.
    pub async fn spawn(binary: &Path, args: &[&str]) -> Self {
        Self::spawn_with_env(binary, args, &[]).await
    }

    /// Like [`ServiceProcess::spawn`], with these environment variables set too.
    pub async fn spawn_with_env(binary: &Path, args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut child = Command::new(binary)
            .args(args)
            .envs(envs.iter().copied())
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn service process");
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let err_pipe = child.stderr.take().expect("stderr pipe");
        let sink = Arc::clone(&stderr);
        tokio::spawn(async move {
            let mut lines = BufReader::new(err_pipe).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut s = sink.lock().unwrap();
                if s.len() == 200 {
                    s.pop_front();
                }
                s.push_back(line);
            }
        });
        let out = child.stdout.take().expect("stdout pipe");
        let mut lines = BufReader::new(out).lines();
        let found = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    return addr.trim().parse::<SocketAddr>().ok();
                }
            }
            None
        })
        .await;
        let Ok(Some(addr)) = found else {
            let _ = child.start_kill();
            let _ = child.wait().await;
            let log = stderr
                .lock()
                .unwrap()
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join("\n");
            panic!("{} did not start:\n{log}", binary.display());
        };
        // Keep draining stdout so that the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        ServiceProcess {
            child,
            addr,
            stderr,
        }
    }

    /// The address the service listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The last lines the process wrote to stderr (its logs).
    pub fn logs(&self) -> Vec<String> {
        self.stderr.lock().unwrap().iter().cloned().collect()
    }

    /// Kills the process at once (SIGKILL on Unix: no shutdown code runs) and waits for it.
    pub async fn kill(mut self) -> std::process::ExitStatus {
        self.child.start_kill().expect("kill the service process");
        tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("process exits after SIGKILL")
            .expect("wait")
    }

    /// Sends SIGTERM (on Unix; kills elsewhere) and waits for the exit status.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        #[cfg(unix)]
        {
            if let Some(pid) = self.child.id() {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
        }
        #[cfg(not(unix))]
        let _ = self.child.start_kill();
        tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("process exits after SIGTERM")
            .expect("wait")
    }
}
