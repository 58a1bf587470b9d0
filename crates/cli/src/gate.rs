//! `wristband gate`: the forward-auth decision service for nginx, Traefik, Caddy, HAProxy
//! and Envoy (crate `wristband-gate`), and its two subcommands, `gate check-policy` and
//! `gate explain`.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use http::header::{HeaderValue, AUTHORIZATION};
use http::{HeaderMap, Method};
use wristband_gate::{
    router, Decision, Denial, Gate, GateOptions, Original, Policy, PolicyHandle, Verdict,
};
use wristband_serve::{shutdown_signal, ServeLimits, TrustedProxies};
use wristband_verify::{AuthErrorKind, CookieSource, StalenessPolicy, Verifier, VerifierBuilder};

use crate::args::{parse_timeout, read_token};
use crate::settings::{current_thread_runtime, init_logging, runtime_with_threads};
use crate::Outcome;

/// Arguments of `wristband gate`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct GateArgs {
    #[command(subcommand)]
    command: Option<GateCommand>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum GateCommand {
    /// Check a policy file: exit 0 and "policy ok: N rules", or 1 naming the error.
    CheckPolicy {
        /// The policy file (TOML).
        file: PathBuf,
    },
    /// Print the decision the gate would make for a URL and a token, and the rule that
    /// made it (exit 0 when allowed, 1 when denied).
    Explain(ExplainArgs),
}

/// Where the keys come from, for the gate and for `explain`.
#[derive(Debug, Args)]
struct KeyArgs {
    /// The auth service: the expected `iss` of tokens, and where keys are discovered
    /// without --jwks.
    #[arg(long, value_name = "URL")]
    issuer: Option<String>,
    /// The audience tokens must be meant for.
    #[arg(long, default_value = "wristband")]
    audience: String,
    /// JWKS URL (http:// or https://) or JWKS file, instead of discovery.
    #[arg(long, value_name = "URL|FILE")]
    jwks: Option<String>,
    /// PEM file with the CA certificate(s) to trust for https instead of the system's
    /// root certificates (for an auth service behind a private CA).
    #[arg(long, value_name = "FILE")]
    cacert: Option<PathBuf>,
    /// Fewest seconds between two JWKS refetches caused by tokens naming an unknown key.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    refetch_cooldown: u64,
}

impl KeyArgs {
    fn issuer(&self) -> anyhow::Result<&str> {
        self.issuer
            .as_deref()
            .context("--issuer is required: the URL of the auth service")
    }

    /// A verifier builder for these keys; cookies (`__Host-wb_at`) are always accepted.
    fn builder(&self) -> anyhow::Result<VerifierBuilder> {
        let mut builder = Verifier::builder(self.issuer()?, &self.audience)
            .access_cookie(CookieSource::default())
            .refetch_cooldown(std::time::Duration::from_secs(self.refetch_cooldown));
        if let Some(path) = &self.cacert {
            let pem = std::fs::read(path)
                .with_context(|| format!("reading --cacert {}", path.display()))?;
            builder = builder.ca_certificates(pem);
        }
        Ok(match &self.jwks {
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                builder.jwks_url(url)
            }
            Some(file) => builder.jwks_file(file),
            None => builder.discover(),
        })
    }
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Address to listen on (port 0 picks a free port), or `unix:PATH` for a Unix socket
    /// (a peer on it counts as 127.0.0.1 for --trusted-proxy).
    #[arg(long, default_value = "127.0.0.1:8181")]
    listen: String,
    /// Worker threads; 0: one per CPU. On a host shared with the proxy, 1 or 2 spend less
    /// CPU per decision (fewer cross-thread wake-ups): see docs/GATE.md.
    #[arg(long, env = "WRISTBAND_GATE_THREADS", default_value_t = 0)]
    threads: usize,
    #[command(flatten)]
    keys: KeyArgs,
    /// A resource-server client id: with its secret, the revocation feed is followed.
    #[arg(long, env = "WRISTBAND_CLIENT_ID")]
    client_id: Option<String>,
    /// That client's secret.
    #[arg(long, env = "WRISTBAND_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// While the revocation view is out of sync longer than --max-staleness: keep
    /// verifying (`fail-open`) or refuse tokens issued before the last sync
    /// (`fail-closed`).
    #[arg(long, default_value = "fail-open")]
    staleness_policy: StalenessPolicy,
    /// Seconds the revocation view may be out of sync before the policy applies.
    #[arg(long, default_value_t = 60)]
    max_staleness: u64,
    /// Follow the revocation feed at this URL (another relay's `.../v1/revocations`)
    /// instead of the auth service's. The client's token still comes from the auth
    /// service.
    #[arg(long, value_name = "URL")]
    feed_url: Option<String>,
    /// Do not re-serve the followed revocation feed (`/v1/revocations` and
    /// `/v1/revocations/stream`) to downstream verifiers. By default a gate that follows
    /// the feed is a relay of it.
    #[arg(long)]
    no_serve_feed: bool,
    /// The policy file (TOML), checked for changes about once a second. Without it every
    /// path requires a valid token.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// A network whose `X-Original-*` and `X-Forwarded-*` headers are believed
    /// (repeatable). Default: 127.0.0.1/32 and ::1/128.
    #[arg(long = "trusted-proxy", value_name = "NET")]
    trusted_proxies: Vec<String>,
    /// Where a browser without a session is sent, with `return_to`. Default:
    /// {issuer}/v1/session/resume.
    #[arg(long, value_name = "URL")]
    login_url: Option<String>,
    /// Also send the access token upstream (`X-Auth-Request-Access-Token`).
    #[arg(long)]
    forward_token: bool,
    /// Close a connection that has not sent a complete request header this long after
    /// it was accepted or began its next request (`10s`, `1m`, or seconds).
    #[arg(long, env = "WRISTBAND_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_timeout)]
    header_read_timeout: Duration,
    /// Close a keep-alive connection idle this long.
    #[arg(long, env = "WRISTBAND_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_timeout)]
    idle_timeout: Duration,
    /// Answer 408 and close when a request body has not arrived this long after its
    /// header (the gate reads no body; this bounds what a client may send).
    #[arg(long, env = "WRISTBAND_REQUEST_BODY_TIMEOUT", default_value = "30s", value_parser = parse_timeout)]
    request_body_timeout: Duration,
    /// Most connections open at once; 0: from the open-file limit.
    #[arg(long, env = "WRISTBAND_MAX_CONNECTIONS", default_value_t = 0)]
    max_connections: usize,
}

#[derive(Debug, Args)]
struct ExplainArgs {
    /// The original URL (absolute), as the proxy would describe it.
    url: String,
    /// The access token; `-` reads it from standard input. Without it: no credential.
    #[arg(long)]
    token: Option<String>,
    /// The original method.
    #[arg(long, default_value = "GET")]
    method: String,
    /// The policy file; without it every path requires a valid token.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    #[command(flatten)]
    keys: KeyArgs,
}

/// Runs `wristband gate` or one of its subcommands.
pub(crate) fn run(args: &GateArgs, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    match &args.command {
        Some(GateCommand::CheckPolicy { file }) => check_policy(file, out),
        Some(GateCommand::Explain(explain_args)) => explain(explain_args, out),
        None => serve(&args.run, out),
    }
}

fn check_policy(file: &Path, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    match Policy::read(file) {
        Ok(policy) => {
            let n = policy.rules().len();
            writeln!(out, "policy ok: {n} rule{}", if n == 1 { "" } else { "s" })?;
            Ok(Outcome::Success)
        }
        Err(e) => {
            writeln!(io::stderr(), "policy invalid: {}: {e}", file.display())?;
            Ok(Outcome::Rejected)
        }
    }
}

/// The policy in `path` and its text (to notice changes), or the default policy.
fn load_policy(path: Option<&Path>) -> anyhow::Result<(Policy, Vec<u8>)> {
    let Some(path) = path else {
        return Ok((Policy::authenticated_everywhere(), Vec::new()));
    };
    let bytes =
        std::fs::read(path).with_context(|| format!("reading --policy {}", path.display()))?;
    let text = std::str::from_utf8(&bytes)
        .with_context(|| format!("--policy {}: not UTF-8", path.display()))?;
    let policy = Policy::parse(text).with_context(|| format!("--policy {}", path.display()))?;
    Ok((policy, bytes))
}

fn explain(args: &ExplainArgs, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let token = args
        .token
        .as_deref()
        .map(|t| read_token(Some(t)))
        .transpose()?;
    let method = Method::from_bytes(args.method.as_bytes())
        .with_context(|| format!("--method {:?} is not a method", args.method))?;
    let original = Original::from_url(method, &args.url)
        .with_context(|| format!("{:?} is not an absolute http(s) URL", args.url))?;
    let (policy, _) = load_policy(args.policy.as_deref())?;
    let mut headers = HeaderMap::new();
    if let Some(token) = &token {
        let value = HeaderValue::try_from(format!("Bearer {token}"))
            .context("the token cannot be sent in a header")?;
        headers.insert(AUTHORIZATION, value);
    }
    let issuer = args.keys.issuer()?.to_owned();
    let builder = args.keys.builder()?;
    let decision = current_thread_runtime()?.block_on(async {
        let verifier = builder
            .build()
            .await
            .context("loading the verification keys")?;
        let gate = Gate::new(
            verifier,
            PolicyHandle::new(policy),
            GateOptions::for_issuer(&issuer),
        );
        anyhow::Ok(gate.decide(&original, &headers).await)
    })?;
    report(&decision, out)?;
    Ok(if decision.is_allow() {
        Outcome::Success
    } else {
        Outcome::Rejected
    })
}

/// Prints a decision: the verdict with its status, the rule, and the identity.
fn report(decision: &Decision, out: &mut dyn Write) -> anyhow::Result<()> {
    let (status, what) = match &decision.verdict {
        Verdict::Allow(Some(_)) => (200, "allow".to_owned()),
        Verdict::Allow(None) => (200, "allow (anonymous)".to_owned()),
        Verdict::Deny(Denial::NoRule) => (403, "deny: no rule matches (default deny)".to_owned()),
        Verdict::Deny(Denial::Path(e)) => (403, format!("deny: {e}")),
        Verdict::Deny(Denial::Original(e)) => (403, format!("deny: {e:?}")),
        Verdict::Deny(Denial::Insufficient(_)) => (
            403,
            "deny: the token does not meet the rule's requirement".to_owned(),
        ),
        Verdict::Deny(Denial::Credential(e)) => {
            let why = match e.kind() {
                AuthErrorKind::MissingToken => "no token".to_owned(),
                AuthErrorKind::InvalidToken(v) => format!("token refused ({})", v.kind().code()),
                _ => e.to_string(),
            };
            (e.status().as_u16(), format!("deny: {why}"))
        }
        Verdict::Deny(d) => (403, format!("deny: {d:?}")),
    };
    writeln!(out, "decision: {what} ({status})")?;
    match (decision.rule(), decision.rule_index()) {
        (Some(rule), Some(i)) => writeln!(
            out,
            "rule:     #{} {:?} (require {})",
            i + 1,
            rule.name(),
            rule.require()
        )?,
        _ => writeln!(out, "rule:     none")?,
    }
    if let Verdict::Allow(Some(verified)) = &decision.verdict {
        let mut headers = HeaderMap::new();
        decision
            .policy()
            .headers()
            .decision_headers(verified.claims(), None, &mut headers);
        let mut lines: Vec<String> = headers
            .iter()
            .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("?")))
            .collect();
        lines.sort();
        for line in lines {
            writeln!(out, "header:   {line}")?;
        }
    }
    Ok(())
}

fn serve(args: &RunArgs, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let issuer = args.keys.issuer()?.to_owned();
    let mut builder = args.keys.builder()?;
    match (&args.client_id, &args.client_secret) {
        (Some(id), Some(secret)) => {
            builder = builder
                .client_credentials(id, secret)
                .revocation_feed()
                .staleness_policy(args.staleness_policy)
                .max_staleness(Duration::from_secs(args.max_staleness));
            if let Some(url) = &args.feed_url {
                builder = builder.revocation_feed_url(url);
            }
        }
        (None, None) if args.feed_url.is_some() => {
            anyhow::bail!("--feed-url needs --client-id and --client-secret")
        }
        (None, None) => {}
        _ => anyhow::bail!("--client-id and --client-secret go together"),
    }
    let trusted_proxies = if args.trusted_proxies.is_empty() {
        wristband_gate::default_trusted_proxies()
    } else {
        TrustedProxies::parse(&args.trusted_proxies).map_err(|bad| {
            anyhow::anyhow!("--trusted-proxy {bad:?} is not an address or network")
        })?
    };
    let mut options = GateOptions::for_issuer(&issuer);
    options.trusted_proxies = trusted_proxies;
    options.forward_token = args.forward_token;
    options.serve_feed = !args.no_serve_feed;
    if let Some(url) = &args.login_url {
        options.login_url = url.clone();
    }
    let (policy, policy_text) = load_policy(args.policy.as_deref())?;
    let limits = ServeLimits {
        header_read_timeout: args.header_read_timeout,
        idle_timeout: args.idle_timeout,
        request_body_timeout: args.request_body_timeout,
        max_connections: (args.max_connections > 0).then_some(args.max_connections),
    };
    init_logging();
    let open_files = wristband_serve::raise_fd_limit().context("raising the open-file limit")?;
    runtime_with_threads(args.threads)?.block_on(async {
        let follows_feed = args.client_id.is_some();
        let verifier = builder.build().await.context(if follows_feed {
            "loading the verification keys and the revocation feed"
        } else {
            "loading the verification keys"
        })?;
        let rules = policy.rules().len();
        let gate = Gate::new(verifier, PolicyHandle::new(policy), options);
        if let Some(path) = &args.policy {
            gate.watch_policy_file(path.clone(), policy_text);
        }
        let listen = Listen::parse(&args.listen);
        let relay = gate.relay().cloned();
        tracing::info!(
            rules,
            revocation_feed = follows_feed,
            feed_url = args.feed_url.as_deref().unwrap_or("(the issuer's)"),
            serves_feed = relay.is_some(),
            max_connections = limits.connection_cap(open_files),
            login_url = %gate.options().login_url,
            "gate ready"
        );
        // Relay streams never end by themselves: end them at shutdown so that the
        // graceful shutdown does not wait for them.
        let shutdown = async move {
            shutdown_signal().await;
            if let Some(relay) = relay {
                relay.stop();
            }
        };
        listen.serve(router(gate), limits, shutdown, out).await?;
        tracing::info!("shut down");
        Ok(Outcome::Success)
    })
}

/// Where `wristband gate` listens: a TCP address, or `unix:PATH`.
enum Listen<'a> {
    Tcp(&'a str),
    #[cfg(unix)]
    Unix(&'a Path),
}

impl<'a> Listen<'a> {
    fn parse(listen: &'a str) -> Self {
        #[cfg(unix)]
        if let Some(path) = listen.strip_prefix("unix:") {
            return Listen::Unix(Path::new(path));
        }
        Listen::Tcp(listen)
    }

    /// Binds, prints "listening on ADDR", and serves until `shutdown` completes.
    async fn serve(
        self,
        app: axum::Router,
        limits: ServeLimits,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
        out: &mut dyn Write,
    ) -> anyhow::Result<()> {
        match self {
            Listen::Tcp(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr}"))?;
                writeln!(out, "listening on {}", listener.local_addr()?)?;
                out.flush()?;
                wristband_serve::serve(listener, app, limits, shutdown).await?;
            }
            #[cfg(unix)]
            Listen::Unix(path) => {
                use std::os::unix::fs::{FileTypeExt, PermissionsExt};
                // A socket left by an earlier run is replaced; any other file is not.
                if let Ok(meta) = std::fs::symlink_metadata(path) {
                    anyhow::ensure!(
                        meta.file_type().is_socket(),
                        "cannot listen on unix:{}: the file exists and is not a socket",
                        path.display()
                    );
                    std::fs::remove_file(path)
                        .with_context(|| format!("removing the old socket {}", path.display()))?;
                }
                let listener = tokio::net::UnixListener::bind(path)
                    .with_context(|| format!("cannot listen on unix:{}", path.display()))?;
                // Anyone on the host may connect, as to a loopback port: the directory's
                // permissions narrow it where wanted.
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
                    .with_context(|| format!("setting the mode of {}", path.display()))?;
                writeln!(out, "listening on unix:{}", path.display())?;
                out.flush()?;
                let served = wristband_serve::serve(listener, app, limits, shutdown).await;
                let _ = std::fs::remove_file(path);
                served?;
            }
        }
        Ok(())
    }
}
