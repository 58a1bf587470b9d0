//! `loadgen oidc`: an OpenID Connect provider's code exchange, refresh and userinfo under
//! load, through the standard wire protocol, so that the same run measures Wristband and
//! another provider (bench/oidc.sh runs it against panva's oidc-provider).
//!
//! The endpoints come from the provider's discovery document. One confidential client
//! (`client_secret_basic`) with one redirect URI, which is never contacted: a redirect to
//! it ends a flow, and the code is read from its query.
//!
//! 1. **Codes, untimed.** C workers, each with a cookie jar (a browser session), send
//!    authorization requests (PKCE S256, `state`, `nonce`) and follow the redirects until
//!    the redirect URI carries a code. The session: for Wristband, one sign-in through the
//!    hosted login form (`POST /login`), copied into every jar; for oidc-provider, one per
//!    worker (see [`run`]), made by its interaction handler, which a worker's first
//!    authorization request reaches and which signs the fixed account in.
//!    Unless `--codes` is given, a calibration first mints and exchanges a few codes per
//!    connection, twice (untimed; the first pass warms the provider up), and sizes the
//!    batch from the rates of the second: enough codes for the window, and few enough that the first of them is
//!    still valid at its end (`--code-lifetime`, with a fifth of it to spare). Codes are
//!    exchanged in the order they were minted.
//! 2. **Code exchange** (`authorization_code` grant with the verifier) at C connections
//!    for `--duration` seconds, or until the codes run out (`codes_exhausted` in the line).
//! 3. **Refresh:** each connection refreshes a chain of its own (started from a refresh
//!    token of the exchange), always with the newest refresh token. A failed refresh
//!    breaks its chain and ends that connection (`broken_chains`).
//! 4. **Userinfo** (`GET` with a bearer token), round-robin over the access tokens of the
//!    exchange.
//!
//! Refresh and userinfo each run `--warmup` seconds untimed first. One JSON line per
//! timed phase (`phase`: `code-exchange`, `refresh`, `userinfo`), with the CPU time the
//! load generator and (given `--server-pid`) the provider spent per request, from
//! `/proc/PID/task/*/schedstat`; the minting and the calibration are reported on stderr.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use bytes::Bytes;
use clap::{Args, ValueEnum};
use http::{header, Request};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use url::Url;

use crate::{percentile, HttpClient};

/// Which provider is measured: it decides the sign-in step (and `prompt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Provider {
    /// Wristband: `POST /login` (the hosted login form) makes the session.
    Wristband,
    /// panva's oidc-provider with bench/oidc/provider.js: its interaction handler signs the
    /// account in; requests carry `prompt=consent`, without which oidc-provider drops
    /// `offline_access` (and so issues no refresh token).
    OidcProvider,
}

impl Provider {
    fn name(self) -> &'static str {
        match self {
            Provider::Wristband => "wristband",
            Provider::OidcProvider => "oidc-provider",
        }
    }
}

/// Flags of `loadgen oidc`.
#[derive(Debug, Clone, Args)]
pub(crate) struct OidcArgs {
    /// The provider's issuer (base URL): its discovery document is read from
    /// `ISSUER/.well-known/openid-configuration`.
    #[arg(long)]
    issuer: String,
    /// The provider's kind (its sign-in step).
    #[arg(long, value_enum)]
    provider: Provider,
    /// The client's id.
    #[arg(long, env = "OIDC_CLIENT_ID")]
    client_id: String,
    /// The client's secret (sent with HTTP Basic).
    #[arg(long, env = "OIDC_CLIENT_SECRET", hide_env_values = true)]
    client_secret: String,
    /// The client's registered redirect URI.
    #[arg(long)]
    redirect_uri: String,
    /// The scopes to request.
    #[arg(long, default_value = "openid offline_access")]
    scope: String,
    /// Username for Wristband's login form.
    #[arg(long, default_value = "bench")]
    user: String,
    /// Password for Wristband's login form (benchmark accounts only).
    #[arg(
        long,
        env = "WRISTBAND_BENCH_PASSWORD",
        hide_env_values = true,
        default_value = ""
    )]
    password: String,
    /// Codes to mint for the exchange window; default: sized by a calibration.
    #[arg(long)]
    codes: Option<usize>,
    /// The provider's code lifetime in seconds: the batch is sized so that its first code
    /// is used within four fifths of it.
    #[arg(long, default_value_t = 60)]
    code_lifetime: u64,
    /// Untimed seconds before the refresh and the userinfo windows.
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// The provider's process id (on this machine): each line then has the CPU time its
    /// threads spent per request and the cores it kept busy on average.
    #[arg(long)]
    server_pid: Option<u32>,
}

/// CPU nanoseconds spent by every thread of a process so far (`/proc/PID/task/*/schedstat`),
/// `None` when it cannot be read.
fn cpu_ns(pid: &str) -> Option<u64> {
    let mut sum = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        sum += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(sum)
}

/// CPU counters at the start of a timed phase: the provider's and the load generator's.
struct CpuMark {
    server: Option<u64>,
    own: Option<u64>,
}

impl CpuMark {
    fn now(ctx: &Ctx) -> CpuMark {
        CpuMark {
            server: ctx.args.server_pid.and_then(|p| cpu_ns(&p.to_string())),
            own: cpu_ns("self"),
        }
    }

    /// The phase's CPU fields: microseconds per request, and average cores busy.
    fn fields(&self, ctx: &Ctx, requests: usize, elapsed: Duration) -> Value {
        let end = CpuMark::now(ctx);
        #[allow(clippy::cast_precision_loss)]
        let per = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) if requests > 0 => {
                let ns = b.saturating_sub(a) as f64;
                (
                    json!((ns / 1000.0 / requests as f64 * 10.0).round() / 10.0),
                    json!((ns / 1e9 / elapsed.as_secs_f64() * 100.0).round() / 100.0),
                )
            }
            _ => (Value::Null, Value::Null),
        };
        let (server_us, server_cores) = per(self.server, end.server);
        let (own_us, _) = per(self.own, end.own);
        json!({
            "server_cpu_us_per_req": server_us,
            "server_cores": server_cores,
            "loadgen_cpu_us_per_req": own_us,
        })
    }
}

/// The endpoints, from discovery.
struct Endpoints {
    authorize: Url,
    token: String,
    userinfo: String,
}

/// Everything a worker needs, shared.
struct Ctx {
    client: HttpClient,
    args: OidcArgs,
    ep: Endpoints,
    basic: String,
    rng: SystemRandom,
}

/// A code and its PKCE verifier.
struct Code {
    code: String,
    verifier: String,
}

/// Tokens from one token response.
struct Tokens {
    access: String,
    refresh: Option<String>,
}

/// A browser's cookies (name to value; paths and lifetimes are not needed here).
#[derive(Clone, Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn take(&mut self, headers: &http::HeaderMap) {
        for v in headers.get_all(header::SET_COOKIE) {
            let Ok(v) = v.to_str() else { continue };
            let pair = v.split(';').next().unwrap_or("");
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let lower = v.to_ascii_lowercase();
            let cleared = value.is_empty()
                || lower.contains("max-age=0")
                || lower.contains("expires=thu, 01 jan 1970");
            if cleared {
                self.0.remove(name.trim());
            } else {
                self.0
                    .insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
    }
}

/// One timed phase's requests.
#[derive(Default)]
struct Window {
    latencies_us: Vec<u32>,
    errors: u64,
}

impl Window {
    fn record(&mut self, start: Instant, ok: bool) {
        self.latencies_us
            .push(u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX));
        if !ok {
            self.errors += 1;
        }
    }

    fn merge(&mut self, other: Window) {
        self.latencies_us.extend(other.latencies_us);
        self.errors += other.errors;
    }

    /// The phase's JSON line.
    fn line(mut self, ctx: &Ctx, label: &str, phase: &str, elapsed: Duration) -> Value {
        self.latencies_us.sort_unstable();
        let secs = elapsed.as_secs_f64();
        #[allow(clippy::cast_precision_loss)]
        let rps = self.latencies_us.len() as f64 / secs;
        json!({
            "label": label,
            "provider": ctx.args.provider.name(),
            "phase": phase,
            "connections": 0,
            "seconds": (secs * 100.0).round() / 100.0,
            "requests": self.latencies_us.len(),
            "errors": self.errors,
            "rps": rps.round(),
            "p50_ms": percentile(&self.latencies_us, 0.50),
            "p99_ms": percentile(&self.latencies_us, 0.99),
            "max_ms": percentile(&self.latencies_us, 1.0),
        })
    }
}

fn random_b64(rng: &SystemRandom, n: usize) -> Result<String> {
    let mut b = vec![0u8; n];
    rng.fill(&mut b)
        .map_err(|_| anyhow::anyhow!("no randomness"))?;
    Ok(URL_SAFE_NO_PAD.encode(b))
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// `URL` with the origin of `base` (a provider behind a listener on port 0 may name
/// another address in its documents).
fn on_base(base: &Url, raw: &str) -> Result<Url> {
    let mut u = Url::parse(raw).with_context(|| format!("bad endpoint {raw}"))?;
    if u.origin() != base.origin() {
        u.set_scheme(base.scheme())
            .map_err(|()| anyhow::anyhow!("scheme"))?;
        u.set_host(base.host_str())?;
        u.set_port(base.port())
            .map_err(|()| anyhow::anyhow!("port"))?;
    }
    Ok(u)
}

async fn request(
    client: &HttpClient,
    req: http::request::Builder,
    body: String,
) -> Result<(u16, http::HeaderMap, Bytes)> {
    let res = client
        .request(req.body(Full::new(Bytes::from(body)))?)
        .await?;
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await?.to_bytes();
    Ok((status, headers, bytes))
}

async fn discover(client: &HttpClient, issuer: &str) -> Result<Endpoints> {
    let base = Url::parse(issuer).context("bad --issuer")?;
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let (status, _, body) = request(client, Request::get(&url), String::new()).await?;
    if status != 200 {
        bail!("discovery answered {status}");
    }
    let doc: Value = serde_json::from_slice(&body)?;
    let get = |name: &str| -> Result<Url> {
        on_base(
            &base,
            doc[name]
                .as_str()
                .with_context(|| format!("discovery has no {name}"))?,
        )
    };
    Ok(Endpoints {
        authorize: get("authorization_endpoint")?,
        token: get("token_endpoint")?.to_string(),
        userinfo: get("userinfo_endpoint")?.to_string(),
    })
}

/// Wristband's sign-in: the hosted login form, as a browser posts it.
async fn sign_in_form(ctx: &Ctx, jar: &mut Jar) -> Result<()> {
    let base = ctx.args.issuer.trim_end_matches('/');
    let req = Request::post(format!("{base}/login"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ORIGIN, base);
    let body = form(&[
        ("username", &ctx.args.user),
        ("password", &ctx.args.password),
    ]);
    let (status, headers, _) = request(&ctx.client, req, body).await?;
    if !(300..400).contains(&status) {
        bail!("the login form answered {status}");
    }
    jar.take(&headers);
    if jar.0.is_empty() {
        bail!("the login form set no cookie");
    }
    Ok(())
}

/// One authorization request, its redirects followed until the redirect URI: a code.
async fn mint(ctx: &Ctx, jar: &mut Jar) -> Result<Code> {
    let verifier = random_b64(&ctx.rng, 32)?;
    let challenge = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()));
    let state = random_b64(&ctx.rng, 16)?;
    let nonce = random_b64(&ctx.rng, 16)?;
    let mut url = ctx.ep.authorize.clone();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &ctx.args.client_id)
            .append_pair("redirect_uri", &ctx.args.redirect_uri)
            .append_pair("scope", &ctx.args.scope)
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        if ctx.args.provider == Provider::OidcProvider {
            q.append_pair("prompt", "consent");
        }
    }
    for _ in 0..10 {
        let req = Request::get(url.as_str()).header(header::COOKIE, jar.header());
        let (status, headers, body) = request(&ctx.client, req, String::new()).await?;
        jar.take(&headers);
        if !(300..400).contains(&status) {
            bail!(
                "{url} answered {status} instead of a redirect: {}",
                snippet(&body)
            );
        }
        let location = headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .context("a redirect without Location")?;
        let next = url.join(location)?;
        if next.as_str().starts_with(&ctx.args.redirect_uri) {
            let q: BTreeMap<_, _> = next.query_pairs().into_owned().collect();
            if let Some(e) = q.get("error") {
                bail!(
                    "authorization error {e}: {}",
                    q.get("error_description").map_or("", String::as_str)
                );
            }
            if q.get("state") != Some(&state) {
                bail!("state mismatch in {next}");
            }
            let code = q.get("code").context("no code in the redirect")?.clone();
            return Ok(Code { code, verifier });
        }
        url = next;
    }
    bail!("too many redirects")
}

/// How many codes one oidc-provider session makes before its worker starts a new one.
const CODES_PER_OIDC_PROVIDER_SESSION: usize = 100;

/// `n` codes from one worker per jar, in the order they came; the jars come back with the
/// cookies of the last responses.
async fn mint_batch(ctx: &Arc<Ctx>, jars: &mut Vec<Jar>, n: usize) -> Result<Vec<Code>> {
    let left = Arc::new(AtomicUsize::new(n));
    let mut tasks = Vec::new();
    for mut jar in jars.drain(..) {
        let (ctx, left) = (ctx.clone(), left.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            while left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| l.checked_sub(1))
                .is_ok()
            {
                let made = out.len();
                if ctx.args.provider == Provider::OidcProvider
                    && made > 0
                    && made % CODES_PER_OIDC_PROVIDER_SESSION == 0
                {
                    jar = Jar::default();
                }
                out.push((Instant::now(), mint(&ctx, &mut jar).await?));
            }
            anyhow::Ok((out, jar))
        }));
    }
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        let (out, jar) = t.await??;
        all.extend(out);
        jars.push(jar);
    }
    all.sort_by_key(|(at, _)| *at);
    Ok(all.into_iter().map(|(_, code)| code).collect())
}

async fn token_call(ctx: &Ctx, pairs: &[(&str, &str)]) -> Result<(u16, Bytes)> {
    let req = Request::post(&ctx.ep.token)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::AUTHORIZATION, &ctx.basic);
    let (status, _, body) = request(&ctx.client, req, form(pairs)).await?;
    Ok((status, body))
}

fn tokens(body: &Bytes) -> Result<Tokens> {
    let v: Value = serde_json::from_slice(body)?;
    Ok(Tokens {
        access: v["access_token"]
            .as_str()
            .context("no access_token")?
            .to_owned(),
        refresh: v["refresh_token"].as_str().map(str::to_owned),
    })
}

/// The start of a response body for a message: its text without HTML tags, styles or
/// scripts, in one line.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let (mut out, mut in_tag, mut skip) = (String::new(), false, false);
    let mut rest = text.as_ref();
    while let Some(ch) = rest.chars().next() {
        let lower = rest.get(..7).unwrap_or("").to_ascii_lowercase();
        if lower.starts_with("<style") || lower.starts_with("<script") {
            skip = true;
        } else if lower.starts_with("</style") || lower.starts_with("</scrip") {
            skip = false;
        }
        match ch {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag && !skip => out.push(ch),
            _ => {}
        }
        rest = &rest[ch.len_utf8()..];
    }
    let words: Vec<&str> = out.split_whitespace().collect();
    words.join(" ").chars().take(400).collect()
}

fn report_first_error(phase: &str, status: u16, body: &Bytes, reported: &mut bool) {
    if !*reported {
        *reported = true;
        eprintln!("{phase}: first failure: {status} {}", snippet(body));
    }
}

/// Exchanges `codes` in order at `c` connections until `deadline` or the last code.
async fn exchange(
    ctx: &Arc<Ctx>,
    codes: Arc<Vec<Code>>,
    c: usize,
    deadline: Instant,
) -> Result<(Window, Vec<Vec<Tokens>>, bool)> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..c {
        let (ctx, codes, next) = (ctx.clone(), codes.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let (mut w, mut got, mut exhausted, mut reported) =
                (Window::default(), Vec::new(), false, false);
            while Instant::now() < deadline {
                let Some(code) = codes.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    exhausted = true;
                    break;
                };
                let start = Instant::now();
                let (status, body) = token_call(
                    &ctx,
                    &[
                        ("grant_type", "authorization_code"),
                        ("code", &code.code),
                        ("redirect_uri", &ctx.args.redirect_uri),
                        ("code_verifier", &code.verifier),
                    ],
                )
                .await?;
                let ok = status == 200;
                w.record(start, ok);
                if ok {
                    got.push(tokens(&body)?);
                } else {
                    report_first_error("code exchange", status, &body, &mut reported);
                }
            }
            anyhow::Ok((w, got, exhausted))
        }));
    }
    let (mut window, mut per_worker, mut exhausted) = (Window::default(), Vec::new(), false);
    for t in tasks {
        let (w, got, ex) = t.await??;
        window.merge(w);
        per_worker.push(got);
        exhausted |= ex;
    }
    Ok((window, per_worker, exhausted))
}

/// Each chain refreshed back to back until `deadline`; the chains come back with their
/// newest refresh tokens (`None`: broken).
async fn refresh(
    ctx: &Arc<Ctx>,
    chains: Vec<Option<String>>,
    deadline: Instant,
) -> Result<(Window, Vec<Option<String>>)> {
    let mut tasks = Vec::new();
    for chain in chains {
        let ctx = ctx.clone();
        tasks.push(tokio::spawn(async move {
            let (mut w, mut rt, mut reported) = (Window::default(), chain, false);
            while Instant::now() < deadline {
                let Some(current) = rt.take() else { break };
                let start = Instant::now();
                let (status, body) = token_call(
                    &ctx,
                    &[("grant_type", "refresh_token"), ("refresh_token", &current)],
                )
                .await?;
                let ok = status == 200;
                w.record(start, ok);
                if ok {
                    // A provider that does not rotate answers without a new one.
                    rt = Some(tokens(&body)?.refresh.unwrap_or(current));
                } else {
                    report_first_error("refresh", status, &body, &mut reported);
                }
            }
            anyhow::Ok((w, rt))
        }));
    }
    let (mut window, mut chains) = (Window::default(), Vec::new());
    for t in tasks {
        let (w, rt) = t.await??;
        window.merge(w);
        chains.push(rt);
    }
    Ok((window, chains))
}

/// Userinfo at `c` connections until `deadline`, round-robin over `access`.
async fn userinfo(
    ctx: &Arc<Ctx>,
    access: Arc<Vec<String>>,
    c: usize,
    deadline: Instant,
) -> Result<Window> {
    let mut tasks = Vec::new();
    for k in 0..c {
        let (ctx, access) = (ctx.clone(), access.clone());
        tasks.push(tokio::spawn(async move {
            let (mut w, mut i, mut reported) = (Window::default(), k, false);
            while Instant::now() < deadline {
                let token = &access[i % access.len()];
                i += c;
                let start = Instant::now();
                let req = Request::get(&ctx.ep.userinfo)
                    .header(header::AUTHORIZATION, format!("Bearer {token}"));
                let (status, _, body) = request(&ctx.client, req, String::new()).await?;
                let ok = status == 200;
                w.record(start, ok);
                if !ok {
                    report_first_error("userinfo", status, &body, &mut reported);
                }
            }
            anyhow::Ok(w)
        }));
    }
    let mut window = Window::default();
    for t in tasks {
        window.merge(t.await??);
    }
    Ok(window)
}

fn print_line(mut line: Value, c: usize, usage: Value, extra: Value) {
    line["connections"] = json!(c);
    if let Some(l) = line.as_object_mut() {
        for more in [usage, extra] {
            if let Value::Object(m) = more {
                l.extend(m);
            }
        }
    }
    println!("{line}");
}

/// Runs the scenario: the three timed phases, one JSON line each.
pub(crate) async fn run(
    client: HttpClient,
    args: OidcArgs,
    c: usize,
    duration: Duration,
    label: &str,
) -> Result<()> {
    let c = c.max(1);
    let ep = discover(&client, &args.issuer).await?;
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!(
            "{}:{}",
            enc(&args.client_id),
            enc(&args.client_secret)
        ))
    );
    let ctx = Arc::new(Ctx {
        client,
        args,
        ep,
        basic,
        rng: SystemRandom::new(),
    });

    // The sign-in: one cookie jar per minting worker.
    let mut jars = match ctx.args.provider {
        // One sign-in; every worker copies its session.
        Provider::Wristband => {
            let mut jar = Jar::default();
            sign_in_form(&ctx, &mut jar).await?;
            vec![jar; c]
        }
        // oidc-provider gives a session a new identifier at the end of every interaction
        // (and refuses an interaction that began under the old one), and with
        // `prompt=consent` every authorization request has one: one session per worker.
        // A worker's first request reaches the interaction handler without a session,
        // which signs the account in. Each worker also starts a new session every
        // `CODES_PER_OIDC_PROVIDER_SESSION` codes: oidc-provider keeps one grant per session
        // and client, and its in-memory adapter indexes every code and token of a grant in
        // one map that it walks on each write, so that thousands of sign-ins of one user
        // in one session would slow every write down (as many users' sign-ins would not).
        Provider::OidcProvider => vec![Jar::default(); c],
    };

    // How many codes: from the flag, or from a calibration (untimed: mint, then exchange).
    let lifetime = Duration::from_secs(ctx.args.code_lifetime);
    let n = match ctx.args.codes {
        Some(n) => n,
        None => {
            let cal = (25 * c).max(200);
            // A first pass warms the provider up (a JIT compiler, caches); the second is
            // measured.
            let codes = Arc::new(mint_batch(&ctx, &mut jars, cal).await?);
            exchange(&ctx, codes, c, Instant::now() + lifetime).await?;
            let t = Instant::now();
            let codes = Arc::new(mint_batch(&ctx, &mut jars, cal).await?);
            let mint_rate =
                f64::from(u32::try_from(cal).unwrap_or(u32::MAX)) / t.elapsed().as_secs_f64();
            let t = Instant::now();
            let (w, _, _) = exchange(&ctx, codes, c, t + lifetime).await?;
            let rate =
                f64::from(u32::try_from(cal).unwrap_or(u32::MAX)) / t.elapsed().as_secs_f64();
            if w.errors > 0 {
                bail!("calibration: {} of {cal} code exchanges failed", w.errors);
            }
            // Enough for the window with half as many to spare, and the first code still
            // valid at the end: minting time + window <= 4/5 of the lifetime.
            let want = rate * duration.as_secs_f64() * 1.5;
            let room = mint_rate * (lifetime.as_secs_f64() * 0.8 - duration.as_secs_f64());
            eprintln!(
                "{}: calibration: minting {mint_rate:.0}/s, exchange {rate:.0}/s; \
                 {want:.0} codes wanted, room for {room:.0}",
                ctx.args.provider.name()
            );
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let n = want.min(room).max(f64::from(u32::try_from(c).unwrap_or(1))) as usize;
            n
        }
    };

    // 1. Codes, untimed.
    let t = Instant::now();
    let codes = Arc::new(mint_batch(&ctx, &mut jars, n).await?);
    let mint_s = t.elapsed().as_secs_f64();
    eprintln!(
        "{}: minted {n} codes in {mint_s:.1} s",
        ctx.args.provider.name()
    );

    // 2. Code exchange.
    let (cpu, started) = (CpuMark::now(&ctx), Instant::now());
    let (w, per_worker, exhausted) = exchange(&ctx, codes, c, started + duration).await?;
    let elapsed = started.elapsed();
    let usage = cpu.fields(&ctx, w.latencies_us.len(), elapsed);
    print_line(
        w.line(&ctx, label, "code-exchange", elapsed),
        c,
        usage,
        json!({"codes": n, "codes_exhausted": exhausted, "mint_seconds": (mint_s * 10.0).round() / 10.0}),
    );

    // The chains: one refresh token per connection, each from another exchange.
    let mut chains: Vec<Option<String>> = per_worker
        .iter()
        .flat_map(|got| got.iter().rev().filter_map(|t| t.refresh.clone()))
        .take(c)
        .map(Some)
        .collect();
    if chains.len() < c {
        bail!(
            "{} refresh tokens from the exchange, {c} needed (was offline_access granted?)",
            chains.len()
        );
    }
    let access: Arc<Vec<String>> =
        Arc::new(per_worker.into_iter().flatten().map(|t| t.access).collect());

    // 3. Refresh.
    let warm = Duration::from_secs(ctx.args.warmup);
    if !warm.is_zero() {
        chains = refresh(&ctx, chains, Instant::now() + warm).await?.1;
    }
    let (cpu, started) = (CpuMark::now(&ctx), Instant::now());
    let (w, chains) = refresh(&ctx, chains, started + duration).await?;
    let elapsed = started.elapsed();
    let usage = cpu.fields(&ctx, w.latencies_us.len(), elapsed);
    let broken = chains.iter().filter(|r| r.is_none()).count();
    print_line(
        w.line(&ctx, label, "refresh", elapsed),
        c,
        usage,
        json!({"broken_chains": broken}),
    );

    // 4. Userinfo.
    if !warm.is_zero() {
        userinfo(&ctx, access.clone(), c, Instant::now() + warm).await?;
    }
    let (cpu, started) = (CpuMark::now(&ctx), Instant::now());
    let w = userinfo(&ctx, access.clone(), c, started + duration).await?;
    let elapsed = started.elapsed();
    let usage = cpu.fields(&ctx, w.latencies_us.len(), elapsed);
    print_line(
        w.line(&ctx, label, "userinfo", elapsed),
        c,
        usage,
        json!({"tokens": access.len()}),
    );
    Ok(())
}
