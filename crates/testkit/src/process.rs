//! Running example binaries as child processes.
//!
//! The binaries are the ones cargo already built for the test run ([`example_binary`]).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The path of example `name` of the package under test, as cargo built it.
///
/// Test binaries never run `cargo build` themselves. `cargo test` builds every example of
/// the package it tests before running that package's test binaries, into
/// `target/<profile>/examples/` next to `target/<profile>/deps/` that holds the test
/// binary; this function only finds it there. That holds for `cargo test -p PACKAGE` and
/// for `cargo test --workspace`, but not for `cargo test --test NAME`, which builds no
/// example: the panic message then says what to run.
///
/// - wristband-verify's tests run its own example `api_service`;
/// - the CLI package (`wristband`) declares the same source as its example
///   `cli_api_service`, so that `cargo test -p wristband` builds it too.
pub fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test binary>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary inside target/<profile>/deps");
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "example binary {} not found: cargo builds a package's examples when it tests the \
         whole package (`cargo test -p PACKAGE`, without `--test`); or build it with \
         `cargo build --example {name}` first",
        path.display()
    );
    path
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

/// Runs `binary` with `args` to completion, writing `stdin` (plus a newline) to its input
/// when given, and returns its stdout. Panics, with its stderr, when it fails.
pub async fn run_to_completion(binary: &Path, args: &[&str], stdin: Option<&str>) -> String {
    use tokio::io::AsyncWriteExt;
    let mut child = Command::new(binary)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", binary.display()));
    let mut input = child.stdin.take().expect("piped stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.expect("write stdin");
        input.write_all(b"\n").await.expect("write stdin");
    }
    drop(input);
    let out = child
        .wait_with_output()
        .await
        .expect("wait for the process");
    assert!(
        out.status.success(),
        "{} {args:?}: {}",
        binary.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("stdout is UTF-8")
}
