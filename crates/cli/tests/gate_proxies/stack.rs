//! One deployment as docs/GATE.md describes it, on test ports: `wristband serve`, the
//! Flask upstream, `wristband gate` and a real proxy (nginx or Caddy) with the shipped
//! configuration.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use http::Method;
use serde_json::{json, Value};
use tempfile::TempDir;
use wristband_testkit::http::{Client, TestResponse};
use wristband_testkit::process::ServiceProcess;
use wristband_testkit::proxies::{self, Ports, Proxy, Tool};

pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// The policy of these tests: anonymous health and echo routes, an admin area, and
/// everything else for any signed-in user.
pub(crate) const POLICY: &str = r#"
[[rule]]
name = "health"
path = "/health"
methods = ["GET", "HEAD"]
require = "anonymous"

[[rule]]
name = "favicon"
path = "/favicon.ico"
methods = ["GET", "HEAD"]
require = "anonymous"

[[rule]]
name = "public echo"
path = "/headers/public"
require = "anonymous"

[[rule]]
name = "admin area"
path = "/admin"
require = "role:admin"

[[rule]]
name = "admin echo"
path = "/headers/admin"
require = "role:admin"

[[rule]]
name = "signed in"
path = "/"
require = "authenticated"
"#;

/// Which proxy fronts the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Front {
    Nginx,
    Caddy,
}

/// How to build a stack.
pub(crate) struct Options {
    pub(crate) front: Front,
    /// Top-level lines of the auth service's config file.
    pub(crate) settings: &'static str,
    /// Follow the revocation feed with a resource-server client.
    pub(crate) feed: bool,
    /// Run the auth service with the public URL `http://localhost:PROXY/auth`.
    pub(crate) public_url: bool,
    /// More flags for `wristband gate`.
    pub(crate) gate_flags: &'static [&'static str],
}

impl Options {
    pub(crate) fn new(front: Front) -> Self {
        Options {
            front,
            settings: "",
            feed: false,
            public_url: false,
            gate_flags: &[],
        }
    }
}

/// A user's login: access token, refresh token and subject.
pub(crate) struct Login {
    pub(crate) at: String,
    pub(crate) rt: String,
    pub(crate) sub: String,
}

pub(crate) struct Stack {
    pub(crate) dir: TempDir,
    pub(crate) config: String,
    pub(crate) data: PathBuf,
    pub(crate) policy: PathBuf,
    pub(crate) auth: Option<ServiceProcess>,
    pub(crate) gate: ServiceProcess,
    pub(crate) _app: ServiceProcess,
    pub(crate) proxy: Proxy,
    /// `http://localhost:PROXY`: the app's origin as a browser sees it.
    pub(crate) origin: String,
    pub(crate) http: Client,
}

/// The tools a stack with `front` needs; false (after a NOT RUN line) when one is missing
/// outside CI.
pub(crate) fn available(test: &str, front: Front) -> bool {
    let proxy = match front {
        Front::Nginx => Tool::Nginx,
        Front::Caddy => Tool::Caddy,
    };
    proxies::available(test, &[proxy, Tool::Flask])
}

/// At most two stacks start at once: each start creates a store, runs two CLI commands and
/// four processes, and the tests of this binary run in parallel on small machines.
static STARTING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

impl Stack {
    pub(crate) async fn start(opts: Options) -> Stack {
        let _starting = STARTING.acquire().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let proxy_port = proxies::free_port();
        let origin = format!("http://localhost:{proxy_port}");
        // The auth service's public URL (config `public_url`, as `--public-url`).
        let public_url = if opts.public_url {
            format!("public_url = \"{origin}/auth\"\n")
        } else {
            String::new()
        };
        let config = dir.path().join("wristband.toml");
        std::fs::write(
            &config,
            format!(
                "alg = \"ES256\"\n{public_url}{}\n[argon2]\nmemory_kib = 1024\niterations = 1\nparallelism = 1\n",
                opts.settings
            ),
        )
        .unwrap();
        let config = config.to_string_lossy().into_owned();
        let data = dir.path().join("data");
        let policy = dir.path().join("policy.toml");
        std::fs::write(&policy, POLICY).unwrap();

        let stack_cli = Cli {
            config: config.clone(),
            data: data.clone(),
        };
        stack_cli.add_user("alice", "user").await;
        stack_cli.add_user("root", "admin").await;

        let data_arg = data.to_string_lossy().into_owned();
        let serve_args = [
            "serve",
            "--config",
            &config,
            "--data-dir",
            &data_arg,
            "--listen",
            "127.0.0.1:0",
        ];
        let auth = ServiceProcess::spawn(wristband(), &serve_args).await;
        let issuer = auth.url("");

        let rs = if opts.feed {
            Some(stack_cli.add_client("gate", "resource-server").await)
        } else {
            None
        };
        let app = proxies::flask_upstream().await;

        let login_url = format!("{origin}/auth/v1/session/resume");
        let policy_arg = policy.to_string_lossy().into_owned();
        let mut gate_args = vec![
            "gate",
            "--listen",
            "127.0.0.1:0",
            "--issuer",
            &issuer,
            "--audience",
            "wristband",
            "--policy",
            &policy_arg,
            "--login-url",
            &login_url,
        ];
        if let Some((id, secret)) = &rs {
            gate_args.extend_from_slice(&["--client-id", id, "--client-secret", secret]);
        }
        gate_args.extend_from_slice(opts.gate_flags);
        let gate = ServiceProcess::spawn(wristband(), &gate_args).await;

        let ports = Ports {
            proxy: proxy_port,
            gate: gate.addr().port(),
            auth: auth.addr().port(),
            app: app.addr().port(),
        };
        let proxy = match opts.front {
            Front::Nginx => Proxy::nginx(&ports).await,
            Front::Caddy => Proxy::caddy(&ports).await,
        };
        Stack {
            dir,
            config,
            data,
            policy,
            auth: Some(auth),
            gate,
            _app: app,
            proxy,
            origin,
            http: Client::new(),
        }
    }

    /// The auth service (panics after [`Stack::stop_auth`]).
    pub(crate) fn auth(&self) -> &ServiceProcess {
        self.auth.as_ref().expect("the auth service runs")
    }

    /// Kills the auth service.
    pub(crate) async fn stop_auth(&mut self) {
        if let Some(auth) = self.auth.take() {
            auth.kill().await;
        }
    }

    /// The CLI on this stack's store.
    pub(crate) fn cli(&self) -> Cli {
        Cli {
            config: self.config.clone(),
            data: self.data.clone(),
        }
    }

    /// A password login through the auth service's JSON API.
    pub(crate) async fn login(&self, user: &str) -> Login {
        let r = self
            .post_json(
                &self.auth().url("/v1/login"),
                None,
                &json!({"username": user, "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status, 200, "login {user}: {}", r.text());
        let j = r.json();
        let at = j["access_token"].as_str().unwrap().to_owned();
        let sub = wristband_jose::dangerous::decode_without_verification(&at)
            .unwrap()
            .payload["sub"]
            .as_str()
            .unwrap()
            .to_owned();
        Login {
            at,
            rt: j["refresh_token"].as_str().unwrap().to_owned(),
            sub,
        }
    }

    pub(crate) async fn post_json(
        &self,
        url: &str,
        bearer: Option<&str>,
        body: &Value,
    ) -> TestResponse {
        let auth = bearer.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("authorization", a));
        }
        self.http
            .send(Method::POST, url, &headers, body.to_string().as_bytes())
            .await
    }

    /// A request through the proxy, with the Host a browser would send.
    pub(crate) async fn through(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        extra: &[(&str, &str)],
    ) -> TestResponse {
        let host = self.origin.trim_start_matches("http://").to_owned();
        let auth = bearer.map(|t| format!("Bearer {t}"));
        let mut headers: Vec<(&str, &str)> = vec![("host", &host)];
        if let Some(a) = &auth {
            headers.push(("authorization", a));
        }
        headers.extend_from_slice(extra);
        self.http
            .send(method, &self.proxy.url(path), &headers, b"")
            .await
    }

    /// `GET path` through the proxy.
    pub(crate) async fn get(&self, path: &str, bearer: Option<&str>) -> TestResponse {
        self.through(Method::GET, path, bearer, &[]).await
    }

    /// Replaces the policy file at once (a rename, so the gate never reads half a file).
    pub(crate) fn write_policy(&self, text: &str) {
        let tmp = self.dir.path().join("policy.toml.new");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &self.policy).unwrap();
    }

    /// Polls `GET path` through the proxy until its status is `want`, for at most
    /// `within`; returns how long it took.
    pub(crate) async fn until_status(
        &self,
        path: &str,
        bearer: Option<&str>,
        want: u16,
        within: Duration,
        what: &str,
    ) -> Duration {
        let start = Instant::now();
        loop {
            let r = self.get(path, bearer).await;
            if r.status == want {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < within,
                "{what}: still {} after {within:?}: {}\ngate logs:\n{}",
                r.status,
                r.text(),
                self.gate.logs().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The `wristband` binary.
pub(crate) fn wristband() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_wristband"))
}

/// `wristband` subcommands on a stack's store.
pub(crate) struct Cli {
    config: String,
    data: PathBuf,
}

impl Cli {
    /// `wristband GROUP --config .. --data-dir .. REST...`; returns stdout, panics on
    /// failure. GROUP may be several words (`keys rotate`).
    pub(crate) async fn run(&self, group: &str, rest: &[&str], stdin: Option<&str>) -> String {
        let data = self.data.to_string_lossy();
        let mut args: Vec<&str> = group.split(' ').collect();
        args.extend(["--config", &self.config, "--data-dir", &data]);
        args.extend(rest);
        wristband_testkit::process::run_to_completion(wristband(), &args, stdin).await
    }

    async fn add_user(&self, name: &str, role: &str) {
        let out = self
            .run(
                "user",
                &["add", name, "--role", role, "--password-stdin"],
                Some(PASSWORD),
            )
            .await;
        assert!(out.contains(&format!("added {name}")), "{out}");
    }

    /// A client's (id, secret).
    async fn add_client(&self, name: &str, kind: &str) -> (String, String) {
        let out = self
            .run("client", &["add", name, "--kind", kind, "--json"], None)
            .await;
        let v: Value = serde_json::from_str(out.trim()).unwrap();
        (
            v["client_id"].as_str().unwrap().to_owned(),
            v["client_secret"].as_str().unwrap().to_owned(),
        )
    }
}

/// The JSON echo of the Flask upstream's `/headers`: the values of header `name`.
pub(crate) fn echoed<'a>(echo: &'a Value, name: &str) -> Vec<&'a str> {
    echo["headers"][name]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}
