//! Real reverse proxies for tests: nginx and Caddy started with the configurations that
//! ship in `deploy/`, and the Flask upstream of `examples/flask-upstream/`.
//!
//! The shipped files are the source: a test reads `deploy/nginx/…` or
//! `deploy/caddy/Caddyfile` and only replaces the four ports (the proxy's 8000, the gate's
//! 8181, the auth service's 8080 and the app's 5000) with the ones the test's processes
//! listen on; each replacement must happen, so a changed file cannot silently leave a test
//! pointing elsewhere.
//!
//! In CI every proxy test must run: when `CI` is set (non-empty) or
//! `WRISTBAND_REQUIRE_PROXIES=1`, a missing nginx, Caddy or Python with Flask fails the
//! test. Elsewhere the test says loudly on the terminal that it did not run, and returns.

use std::fmt;
use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::process::ServiceProcess;

/// Debian's nginx (`nginx-light`).
pub const NGINX: &str = "/usr/sbin/nginx";
/// Debian's Caddy.
pub const CADDY: &str = "/usr/bin/caddy";
/// The Python interpreter for the Flask upstream, looked up on `PATH`.
pub const PYTHON: &str = "python3";
/// The variable that makes a missing proxy a test failure outside CI too.
pub const REQUIRE_VAR: &str = "WRISTBAND_REQUIRE_PROXIES";

/// What a proxy test needs installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// nginx at [`NGINX`].
    Nginx,
    /// Caddy at [`CADDY`].
    Caddy,
    /// `python3` on `PATH` with Flask importable.
    Flask,
    /// `python3` on `PATH` with PyYAML importable (to parse the shipped YAML files).
    PyYaml,
}

impl fmt::Display for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tool::Nginx => NGINX,
            Tool::Caddy => CADDY,
            Tool::Flask => "python3 with Flask",
            Tool::PyYaml => "python3 with PyYAML",
        })
    }
}

impl Tool {
    fn present(self) -> bool {
        match self {
            Tool::Nginx => Path::new(NGINX).exists(),
            Tool::Caddy => Path::new(CADDY).exists(),
            Tool::Flask => python_has("flask"),
            Tool::PyYaml => python_has("yaml"),
        }
    }
}

/// `python3 -c "import MODULE"` succeeds.
fn python_has(module: &str) -> bool {
    Command::new(PYTHON)
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// True when proxy tests must not be left out: in CI (`CI` set and non-empty) or with
/// `WRISTBAND_REQUIRE_PROXIES=1`.
pub fn required() -> bool {
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    let forced = std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1");
    ci || forced
}

/// Whether `test` can run with `tools`. When one is missing: panics (failing the test)
/// when [`required`]; otherwise writes a `NOT RUN` warning straight to the terminal (past
/// the test harness's output capture) and returns false, and the caller returns.
pub fn available(test: &str, tools: &[Tool]) -> bool {
    let absent: Vec<String> = tools
        .iter()
        .filter(|t| !t.present())
        .map(ToString::to_string)
        .collect();
    if absent.is_empty() {
        return true;
    }
    let reason = format!("{} not installed", absent.join(" and "));
    if required() {
        panic!(
            "{test}: the proxies are required here (CI or {REQUIRE_VAR}=1) but {reason}; \
             run .ci/gate.sh to install them"
        );
    }
    static BANNER: Once = Once::new();
    let mut message = String::new();
    BANNER.call_once(|| {
        message = format!(
            "\n!!! WARNING: {reason}; proxy tests did NOT run.\n\
             !!! Run .ci/gate.sh (Debian: nginx-light, caddy; Flask from PyPI), or .ci/run, to run them.\n"
        );
    });
    message.push_str(&format!(
        "!!! NOT RUN: {test} ({reason}); run .ci/gate.sh to run it\n"
    ));
    let _ = std::io::stderr().write_all(message.as_bytes());
    false
}

/// A path in the repository, from its root (`deploy/nginx/wristband.conf`).
pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}

/// A free TCP port on the loopback interface (free when this returns).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// The ports of one deployment under test, in place of the shipped 8000, 8181, 8080 and
/// 5000.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    /// The proxy (8000 in the shipped files).
    pub proxy: u16,
    /// `wristband gate` (8181).
    pub gate: u16,
    /// `wristband serve` (8080).
    pub auth: u16,
    /// The app (5000).
    pub app: u16,
}

/// `shipped` with each `(from, to)` replaced everywhere; panics when a `from` does not
/// occur, so that a test never runs a configuration it did not mean to.
pub fn render(file: &str, shipped: &str, replacements: &[(&str, String)]) -> String {
    let mut text = shipped.to_owned();
    for (from, to) in replacements {
        assert!(
            text.contains(from),
            "{file}: `{from}` not found; the test replaces it with `{to}`"
        );
        text = text.replace(from, to);
    }
    text
}

/// `deploy/nginx/wristband.conf` for `ports`.
pub fn nginx_site(ports: &Ports) -> String {
    let file = "deploy/nginx/wristband.conf";
    let shipped = std::fs::read_to_string(repo_path(file)).expect("read the shipped nginx site");
    render(
        file,
        &shipped,
        &[
            ("listen 8000 ", format!("listen {} ", ports.proxy)),
            ("127.0.0.1:8181", format!("127.0.0.1:{}", ports.gate)),
            ("127.0.0.1:8080", format!("127.0.0.1:{}", ports.auth)),
            ("127.0.0.1:5000", format!("127.0.0.1:{}", ports.app)),
        ],
    )
}

/// `deploy/caddy/Caddyfile` for `ports`.
pub fn caddyfile(ports: &Ports) -> String {
    let file = "deploy/caddy/Caddyfile";
    let shipped = std::fs::read_to_string(repo_path(file)).expect("read the shipped Caddyfile");
    render(
        file,
        &shipped,
        &[
            ("http://:8000 ", format!("http://:{} ", ports.proxy)),
            ("127.0.0.1:8181", format!("127.0.0.1:{}", ports.gate)),
            ("127.0.0.1:8080", format!("127.0.0.1:{}", ports.auth)),
            ("127.0.0.1:5000", format!("127.0.0.1:{}", ports.app)),
        ],
    )
}

/// A running proxy (nginx or Caddy) in a temporary directory of its own, in a process
/// group of its own. Killed on drop, with nginx's workers.
pub struct Proxy {
    name: &'static str,
    child: Option<Child>,
    port: u16,
    dir: TempDir,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("name", &self.name)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Proxy {
    /// nginx with the shipped `deploy/nginx/nginx.conf` and `wristband.conf` (ports
    /// replaced), run as `nginx -p DIR -e stderr -c DIR/conf/nginx.conf -g 'daemon off;'`.
    pub async fn nginx(ports: &Ports) -> Proxy {
        let dir = proxy_dir();
        let conf = dir.path().join("conf");
        std::fs::create_dir(&conf).expect("create conf dir");
        let main = std::fs::read_to_string(repo_path("deploy/nginx/nginx.conf"))
            .expect("read the shipped nginx.conf");
        assert!(
            main.contains("include wristband.conf;"),
            "deploy/nginx/nginx.conf no longer includes wristband.conf"
        );
        std::fs::write(conf.join("nginx.conf"), main).expect("write nginx.conf");
        std::fs::write(conf.join("wristband.conf"), nginx_site(ports)).expect("write site");
        let mut cmd = Command::new(NGINX);
        cmd.arg("-p")
            .arg(dir.path())
            .args(["-e", "stderr", "-c"])
            .arg(conf.join("nginx.conf"))
            .args(["-g", "daemon off;"]);
        Proxy::spawn("nginx", cmd, dir, ports.proxy).await
    }

    /// nginx on `127.0.0.1:port` with one server made of `locations` (nginx `location`
    /// blocks), for tests of a single proxy rule rather than the shipped setup.
    pub async fn nginx_server(port: u16, locations: &str) -> Proxy {
        let dir = proxy_dir();
        let d = dir.path().display();
        let conf = format!(
            "pid {d}/nginx.pid;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n\
               access_log off;\n\
               client_body_temp_path {d}/body;\n\
               proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi;\n\
               uwsgi_temp_path {d}/uwsgi;\n\
               scgi_temp_path {d}/scgi;\n\
               server {{\n\
                 listen 127.0.0.1:{port};\n\
                 {locations}\n\
               }}\n\
             }}\n"
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf).expect("write nginx.conf");
        let mut cmd = Command::new(NGINX);
        cmd.arg("-p")
            .arg(dir.path())
            .args(["-e", "stderr", "-c"])
            .arg(&path)
            .args(["-g", "daemon off;"]);
        Proxy::spawn("nginx", cmd, dir, port).await
    }

    /// Caddy with the shipped `deploy/caddy/Caddyfile` (ports replaced), run as
    /// `caddy run --adapter caddyfile --config FILE`, with its data and config
    /// directories in the temporary directory.
    pub async fn caddy(ports: &Ports) -> Proxy {
        let dir = proxy_dir();
        let file = dir.path().join("Caddyfile");
        std::fs::write(&file, caddyfile(ports)).expect("write Caddyfile");
        let mut cmd = Command::new(CADDY);
        cmd.args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&file)
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .env("XDG_CONFIG_HOME", dir.path().join("config"));
        Proxy::spawn("caddy", cmd, dir, ports.proxy).await
    }

    async fn spawn(name: &'static str, mut cmd: Command, dir: TempDir, port: u16) -> Proxy {
        let log = std::fs::File::create(dir.path().join("proxy.log")).expect("create log");
        // A process group of its own, so that drop ends nginx's workers with their master.
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let mut proxy = Proxy {
            name,
            child: Some(child),
            port,
            dir,
        };
        proxy.wait_ready().await;
        proxy
    }

    /// Waits (up to 20 s) until the proxy accepts connections on its port.
    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, self.port))
                .await
                .is_ok()
            {
                return;
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                panic!(
                    "{} exited before listening ({status}):\n{}",
                    self.name,
                    self.logs()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} did not listen on port {} within 20 s:\n{}",
                self.name,
                self.port,
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The port the proxy listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// What the proxy wrote to stdout and stderr so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("proxy.log")).unwrap_or_default()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // The whole process group: nginx's master and its workers.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A temporary directory that nginx's unprivileged workers may enter.
fn proxy_dir() -> TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod temp dir");
    }
    dir
}

/// The Flask upstream of `examples/flask-upstream/` on a free loopback port (it prints
/// `listening on ADDR` once bound). Killed on drop.
pub async fn flask_upstream() -> ServiceProcess {
    let app = repo_path("examples/flask-upstream/app.py");
    let app = app.to_string_lossy();
    ServiceProcess::spawn(Path::new(PYTHON), &[app.as_ref(), "--port", "0"]).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const PORTS: Ports = Ports {
        proxy: 18000,
        gate: 18181,
        auth: 18080,
        app: 15000,
    };

    #[test]
    fn render_replaces_every_occurrence() {
        let out = render("f", "a 1 b 1 c 2", &[("1", "x".into()), ("2", "y".into())]);
        assert_eq!(out, "a x b x c y");
    }

    #[test]
    #[should_panic(expected = "`8000` not found")]
    fn render_refuses_a_pattern_that_is_not_there() {
        render("f", "listen 9000;", &[("8000", "18000".into())]);
    }

    #[test]
    fn the_shipped_files_point_only_at_the_test_ports() {
        for (name, text) in [("nginx", nginx_site(&PORTS)), ("caddy", caddyfile(&PORTS))] {
            for port in ["8000", "8181", "8080", "5000"] {
                let shipped = format!("127.0.0.1:{port}");
                assert!(!text.contains(&shipped), "{name}: {shipped} left");
            }
            for port in [PORTS.gate, PORTS.auth, PORTS.app] {
                assert!(
                    text.contains(&format!("127.0.0.1:{port}")),
                    "{name}: {port}"
                );
            }
            assert!(text.contains("18000 "), "{name}: the proxy's port");
        }
    }
}
