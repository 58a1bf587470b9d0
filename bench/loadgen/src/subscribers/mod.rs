//! `loadgen subscribers`: thousands of revocation-stream subscribers in one process, and a
//! revoker, to measure what the auth service's fan-out costs and how fast it delivers.
//!
//! 1. Gets an access token for a resource-server client (client credentials), which every
//!    subscriber uses, and mints the access tokens to revoke (one login per chain, then
//!    refreshes), before anything is measured. Each token's `jti` is what its revocation
//!    record carries as `value`.
//! 2. Reads the feed's current cursor from `GET /v1/revocations` pages, then opens N
//!    streams (`GET /v1/revocations/stream`, `Last-Event-ID` = that cursor), each on its own
//!    connection.
//! 3. Idle window: nothing is revoked for `--idle-seconds`; the auth service's CPU (from
//!    `/proc/PID/stat`) over it is the idle cost of N open streams.
//! 4. One window per `--rates` entry: the revoker sends RFC 7009 `POST /oauth2/revoke` calls
//!    for the pre-minted tokens at R per second for `--window` seconds (open loop: a slow
//!    call does not delay the next one) and notes when each call was sent. The window ends
//!    when every subscriber has every record (or `--drain-seconds` after the last call).
//!
//! Every subscriber checks that each record arrives exactly once and with a strictly
//! increasing id, and notes when it arrived (one instant per chunk read). The delivery delay
//! of a (subscriber, record) pair is its arrival minus the send instant of the revoke call.
//!
//! Prints one JSON line per rate: delivery percentiles over all pairs, missing, duplicate
//! and out-of-order counts, the auth service's CPU per revocation and idle CPU, and per
//! revocation the delta of each `--counter` (a shell command printing a number, such as a
//! store-read counter from `/metrics` or `pg_stat_user_tables`). Exits non-zero if any
//! record was missing, duplicated or out of order, or a stream ended early, and also if a
//! revoke call failed (an overloaded auth service answers 503); the records of failed
//! calls are left out of the delivery figures and of `missing`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use base64::Engine;
use bytes::Bytes;
use clap::Args;
use http::{Method, Request};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch, Semaphore};

use crate::{field, percentile, send, HttpClient};

mod sse;
use sse::{SseParser, Tally};

/// Flags of `loadgen subscribers`.
#[derive(Debug, Clone, Args)]
pub(crate) struct SubscribersArgs {
    /// Auth service base URL.
    #[arg(long)]
    auth: String,
    /// The resource-server client whose token every subscriber uses.
    #[arg(long, env = "WRISTBAND_CLIENT_ID")]
    client_id: String,
    /// Its secret.
    #[arg(long, env = "WRISTBAND_CLIENT_SECRET", hide_env_values = true)]
    client_secret: String,
    /// The user whose access tokens are minted and revoked.
    #[arg(long)]
    user: String,
    /// Their password (benchmark accounts only).
    #[arg(long, env = "WRISTBAND_BENCH_PASSWORD", hide_env_values = true)]
    password: String,
    /// Number of stream subscribers.
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    /// Revocations per second, one window each, in this order.
    #[arg(long, value_delimiter = ',', default_value = "10,100")]
    rates: Vec<u32>,
    /// Seconds of revocations per window.
    #[arg(long, default_value_t = 10)]
    window: u64,
    /// Seconds of the idle window (subscribers connected, nothing revoked).
    #[arg(long, default_value_t = 10)]
    idle_seconds: u64,
    /// A window ends at the latest this many seconds after its last revoke call.
    #[arg(long, default_value_t = 30)]
    drain_seconds: u64,
    /// The auth service's process id, for its CPU time (same host).
    #[arg(long)]
    auth_pid: Option<u32>,
    /// `NAME=SHELL COMMAND` printing a number (a counter) before and after each window;
    /// reported as NAME per revocation, and NAME per second in the idle window. Repeatable.
    #[arg(long = "counter")]
    counters: Vec<String>,
    /// Streams being opened at once.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    /// Login-and-refresh chains that mint the tokens in parallel.
    #[arg(long, default_value_t = 4)]
    mint_chains: usize,
    /// Clock ticks per second of `/proc/PID/stat` (`getconf CLK_TCK`).
    #[arg(long, default_value_t = 100)]
    clk_tck: u64,
}

/// An instant not set yet, in the microsecond arrays.
const UNSET: u32 = u32::MAX;

/// Microseconds since `base`, saturating.
fn since(base: Instant, at: Instant) -> u32 {
    u32::try_from(at.saturating_duration_since(base).as_micros()).unwrap_or(UNSET - 1)
}

/// A token to revoke and the `jti` its revocation record will carry.
struct Minted {
    token: String,
    jti: String,
}

/// The `jti` claim of a JWT, read without verification (the benchmark's own tokens).
fn jti_of(token: &str) -> Result<String> {
    let payload = token.split('.').nth(1).context("not a JWT")?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .context("JWT payload is not base64url")?;
    let claims: Value = serde_json::from_slice(&raw)?;
    claims["jti"]
        .as_str()
        .map(str::to_owned)
        .context("the access token has no jti")
}

/// One login, then refreshes: `n` distinct access tokens.
async fn mint_chain(client: HttpClient, a: Arc<SubscribersArgs>, n: usize) -> Result<Vec<Minted>> {
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return Ok(out);
    }
    let (status, body) = send(
        &client,
        Method::POST,
        &format!("{}/v1/login", a.auth),
        None,
        Some(&json!({"username": a.user, "password": a.password})),
    )
    .await?;
    ensure!(status == 200, "login answered {status}");
    let mut access = field(&body, "access_token")?;
    let mut refresh = field(&body, "refresh_token")?;
    loop {
        out.push(Minted {
            jti: jti_of(&access)?,
            token: access,
        });
        if out.len() == n {
            return Ok(out);
        }
        let (status, body) = send(
            &client,
            Method::POST,
            &format!("{}/v1/refresh", a.auth),
            None,
            Some(&json!({ "refresh_token": refresh })),
        )
        .await?;
        ensure!(status == 200, "refresh answered {status}");
        access = field(&body, "access_token")?;
        refresh = field(&body, "refresh_token")?;
    }
}

/// The resource-server client's access token (client credentials, `client_secret_post`).
async fn reader_token(client: &HttpClient, a: &SubscribersArgs) -> Result<String> {
    let body = url_form(&[
        ("grant_type", "client_credentials"),
        ("scope", "revocations:read"),
        ("client_id", &a.client_id),
        ("client_secret", &a.client_secret),
    ]);
    let (status, body) = post_form(client, &format!("{}/oauth2/token", a.auth), body).await?;
    ensure!(
        status == 200,
        "client credentials answered {status}: {}",
        String::from_utf8_lossy(&body)
    );
    field(&body, "access_token")
}

/// `application/x-www-form-urlencoded` of `pairs` (percent-encodes everything but
/// unreserved characters).
fn url_form(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

async fn post_form(client: &HttpClient, url: &str, body: String) -> Result<(u16, Bytes)> {
    let req = Request::builder()
        .method(Method::POST)
        .uri(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(http_body_util::Full::new(Bytes::from(body)))?;
    let res = client.request(req).await?;
    let status = res.status().as_u16();
    Ok((status, res.into_body().collect().await?.to_bytes()))
}

/// The feed's current cursor, from its pages.
async fn current_cursor(client: &HttpClient, a: &SubscribersArgs, bearer: &str) -> Result<i64> {
    let mut cursor = 0;
    loop {
        let (status, body) = send(
            client,
            Method::GET,
            &format!("{}/v1/revocations?after={cursor}", a.auth),
            Some(bearer),
            None,
        )
        .await?;
        ensure!(status == 200, "GET /v1/revocations answered {status}");
        let page: Value = serde_json::from_slice(&body)?;
        cursor = page["cursor"].as_i64().context("a page without a cursor")?;
        if page["has_more"] != Value::Bool(true) {
            return Ok(cursor);
        }
    }
}

/// Opens one stream: the response's body, once the status is 200.
async fn open_stream(a: &SubscribersArgs, bearer: &str, cursor: i64) -> Result<Incoming> {
    let uri: http::Uri = format!("{}/v1/revocations/stream", a.auth).parse()?;
    let authority = uri.authority().context("no host in --auth")?.clone();
    let tcp = tokio::net::TcpStream::connect(authority.as_str()).await?;
    tcp.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(conn);
    let req = Request::builder()
        .method(Method::GET)
        .uri(uri.path())
        .header("host", authority.as_str())
        .header("accept", "text/event-stream")
        .header("authorization", format!("Bearer {bearer}"))
        .header("last-event-id", cursor.to_string())
        .body(Empty::<Bytes>::new())?;
    let res = sender.send_request(req).await?;
    let status = res.status();
    if status != http::StatusCode::OK {
        let body = res.into_body().collect().await?.to_bytes();
        bail!(
            "the stream answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(res.into_body())
}

/// Everything a subscriber task shares with the others.
struct Shared {
    args: Arc<SubscribersArgs>,
    bearer: String,
    cursor: i64,
    base: Instant,
    index: Arc<HashMap<String, u32>>,
    records: usize,
    /// First arrivals of minted records, over all subscribers.
    delivered: Arc<AtomicU64>,
    connect: Arc<Semaphore>,
}

async fn subscriber(
    s: Arc<Shared>,
    connected: mpsc::Sender<Result<()>>,
    mut stop: watch::Receiver<bool>,
) -> Tally {
    let mut t = Tally::new(s.records);
    let opened = {
        let _permit = s.connect.acquire().await;
        open_stream(&s.args, &s.bearer, s.cursor).await
    };
    let mut body = match opened {
        Ok(b) => {
            let _ = connected.send(Ok(())).await;
            b
        }
        Err(e) => {
            t.ended = Some(format!("{e:#}"));
            let _ = connected.send(Err(e)).await;
            return t;
        }
    };
    drop(connected);
    let mut parser = SseParser::new(s.cursor);
    loop {
        let frame = tokio::select! {
            f = body.frame() => f,
            _ = stop.changed() => return t,
        };
        let at = since(s.base, Instant::now());
        match frame {
            Some(Ok(f)) => {
                if let Some(data) = f.data_ref() {
                    let known = t.first_arrivals();
                    parser.feed(data, at, &s.index, &mut t);
                    let fresh = t.first_arrivals() - known;
                    if fresh > 0 {
                        s.delivered.fetch_add(fresh, Ordering::Relaxed);
                    }
                }
            }
            Some(Err(e)) => {
                t.ended = Some(format!("stream error: {e}"));
                return t;
            }
            None => {
                t.ended = Some("the stream ended".into());
                return t;
            }
        }
    }
}

/// CPU ticks of a process in user and in system mode, from `/proc/PID/stat`.
pub(crate) fn cpu_ticks(pid: &str) -> Result<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces: fields are counted after its closing parenthesis.
    let rest = stat.rsplit_once(')').context("unexpected /proc stat")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the whole line are 12 and 13 after the name (state is 1).
    Ok((
        f.get(11).context("short stat")?.parse()?,
        f.get(12).context("short stat")?.parse()?,
    ))
}

/// Resident memory of a process in KiB, from `/proc/PID/status`.
fn rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// A named counter read by a shell command.
struct Counter {
    name: String,
    command: String,
}

impl Counter {
    fn parse(spec: &str) -> Result<Counter> {
        let (name, command) = spec
            .split_once('=')
            .context("a --counter is NAME=SHELL COMMAND")?;
        Ok(Counter {
            name: name.trim().to_owned(),
            command: command.to_owned(),
        })
    }

    async fn read(&self) -> Result<f64> {
        let command = self.command.clone();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new("sh")
                .arg("-c")
                .arg(command)
                .output()
        })
        .await??;
        ensure!(out.status.success(), "counter {} failed", self.name);
        let text = String::from_utf8_lossy(&out.stdout);
        text.trim()
            .parse()
            .with_context(|| format!("counter {} printed {text:?}", self.name))
    }
}

/// CPU and counters at one instant.
struct Snapshot {
    at: Instant,
    auth_ticks: Option<(u64, u64)>,
    /// The auth service's resident memory, KiB.
    auth_rss_kib: Option<u64>,
    own_ticks: Option<(u64, u64)>,
    counters: Vec<Option<f64>>,
}

async fn snapshot(a: &SubscribersArgs, counters: &[Counter]) -> Snapshot {
    let mut values = Vec::with_capacity(counters.len());
    for c in counters {
        match c.read().await {
            Ok(v) => values.push(Some(v)),
            Err(e) => {
                eprintln!("{e:#}");
                values.push(None);
            }
        }
    }
    Snapshot {
        at: Instant::now(),
        auth_ticks: a.auth_pid.and_then(|p| cpu_ticks(&p.to_string()).ok()),
        auth_rss_kib: a.auth_pid.and_then(|p| rss_kib(&p.to_string())),
        own_ticks: cpu_ticks("self").ok(),
        counters: values,
    }
}

/// What a window cost: CPU milliseconds of the auth service and of this process, wall
/// seconds, and each counter's delta.
struct Cost {
    seconds: f64,
    auth_cpu_ms: Option<f64>,
    /// The part of it in system mode (on loopback, the kernel's TCP work for both ends).
    auth_sys_ms: Option<f64>,
    own_cpu_ms: Option<f64>,
    counters: Vec<Option<f64>>,
    /// The auth service's resident memory at the end, KiB.
    auth_rss_kib: Option<u64>,
}

#[allow(clippy::cast_precision_loss)]
fn cost(a: &SubscribersArgs, from: &Snapshot, to: &Snapshot) -> Cost {
    let ms = |x: Option<u64>, y: Option<u64>| {
        Some(y?.saturating_sub(x?) as f64 * 1000.0 / a.clk_tck as f64)
    };
    Cost {
        seconds: to.at.duration_since(from.at).as_secs_f64(),
        auth_cpu_ms: ms(
            from.auth_ticks.map(|(u, s)| u + s),
            to.auth_ticks.map(|(u, s)| u + s),
        ),
        auth_sys_ms: ms(from.auth_ticks.map(|t| t.1), to.auth_ticks.map(|t| t.1)),
        own_cpu_ms: ms(
            from.own_ticks.map(|(u, s)| u + s),
            to.own_ticks.map(|(u, s)| u + s),
        ),
        auth_rss_kib: to.auth_rss_kib,
        counters: from
            .counters
            .iter()
            .zip(&to.counters)
            .map(|(x, y)| Some(y.as_ref()? - x.as_ref()?))
            .collect(),
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// One revocation window: sends the revoke calls for `tokens` (record indices from
/// `first`) at `rate` per second, noting each send instant in `sent`. Returns the calls'
/// latencies in µs and, per token, whether its call failed (its record may not exist).
async fn revoke_window(
    client: &HttpClient,
    a: &SubscribersArgs,
    tokens: &[Minted],
    first: usize,
    rate: u32,
    base: Instant,
    sent: &Arc<Vec<AtomicU32>>,
) -> (Vec<u32>, Vec<bool>) {
    let start = tokio::time::Instant::now();
    let interval = Duration::from_secs(1) / rate.max(1);
    let mut calls = Vec::with_capacity(tokens.len());
    for (k, m) in tokens.iter().enumerate() {
        tokio::time::sleep_until(start + interval * u32::try_from(k).unwrap_or(u32::MAX)).await;
        let (client, sent) = (client.clone(), sent.clone());
        let url = format!("{}/oauth2/revoke", a.auth);
        // Tokens are base64url and dots: nothing to escape.
        let body = format!(
            "token={}&token_type_hint=access_token&client_id=wristband",
            m.token
        );
        calls.push(tokio::spawn(async move {
            let t0 = Instant::now();
            sent[first + k].store(since(base, t0), Ordering::Relaxed);
            let status = post_form(&client, &url, body).await.map(|(s, _)| s);
            (crate::fanout::micros(t0.elapsed()), status)
        }));
    }
    let mut latencies = Vec::with_capacity(calls.len());
    let mut failed = vec![false; calls.len()];
    for (c, failed) in calls.into_iter().zip(&mut failed) {
        match c.await {
            Ok((us, Ok(200))) => latencies.push(us),
            Ok((_, Ok(status))) => {
                eprintln!("a revoke call answered {status}");
                *failed = true;
            }
            Ok((_, Err(e))) => {
                eprintln!("a revoke call failed: {e:#}");
                *failed = true;
            }
            Err(e) => {
                eprintln!("a revoke task failed: {e}");
                *failed = true;
            }
        }
    }
    (latencies, failed)
}

/// A finished window, for the report.
struct Window {
    rate: u32,
    first: usize,
    records: usize,
    cost: Cost,
    revoke_calls: Vec<u32>,
    /// Per record of the window: its revoke call failed (answered other than 200).
    revoke_failed: Vec<bool>,
    /// Whether every subscriber had every record before the drain deadline.
    complete: bool,
    load1: String,
}

fn load1() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default()
}

/// Runs the simulation and prints one JSON line per rate.
pub(crate) async fn run(client: HttpClient, a: SubscribersArgs, label: &str) -> Result<()> {
    let files = wristband_serve::raise_fd_limit().context("raising the open-file limit")?;
    ensure!(
        files > a.subscribers as u64 + 64,
        "{} subscribers need more open files than the limit of {files}",
        a.subscribers
    );
    ensure!(
        a.rates.iter().all(|&r| r > 0),
        "every rate must be positive"
    );
    let counters: Vec<Counter> = a
        .counters
        .iter()
        .map(|c| Counter::parse(c))
        .collect::<Result<_>>()?;
    let a = Arc::new(a);
    let per_window: Vec<usize> = a
        .rates
        .iter()
        .map(|&r| usize::try_from(u64::from(r) * a.window).unwrap_or(usize::MAX))
        .collect();
    let records: usize = per_window.iter().sum();

    // Before anything is measured: the reader's token, the tokens to revoke, the cursor.
    let bearer = reader_token(&client, &a).await?;
    let chains = a.mint_chains.max(1);
    let mut minting = Vec::new();
    for c in 0..chains {
        let n = records / chains + usize::from(c < records % chains);
        minting.push(tokio::spawn(mint_chain(client.clone(), a.clone(), n)));
    }
    let mut minted = Vec::with_capacity(records);
    for m in minting {
        minted.extend(m.await??);
    }
    let index: HashMap<String, u32> = minted
        .iter()
        .enumerate()
        .map(|(i, m)| (m.jti.clone(), u32::try_from(i).unwrap_or(UNSET)))
        .collect();
    ensure!(
        index.len() == records,
        "the minted tokens' jti are not distinct"
    );
    let cursor = current_cursor(&client, &a, &bearer).await?;

    let base = Instant::now();
    let delivered = Arc::new(AtomicU64::new(0));
    let shared = Arc::new(Shared {
        args: a.clone(),
        bearer,
        cursor,
        base,
        index: Arc::new(index),
        records,
        delivered: delivered.clone(),
        connect: Arc::new(Semaphore::new(a.connect_concurrency.max(1))),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let (conn_tx, mut conn_rx) = mpsc::channel(a.subscribers.max(1));
    let connecting = Instant::now();
    let tasks: Vec<_> = (0..a.subscribers)
        .map(|_| tokio::spawn(subscriber(shared.clone(), conn_tx.clone(), stop_rx.clone())))
        .collect();
    drop(conn_tx);
    let mut opened = 0;
    while let Some(r) = conn_rx.recv().await {
        r.context("opening a stream")?;
        opened += 1;
    }
    ensure!(opened == a.subscribers, "only {opened} streams opened");
    let connect_seconds = connecting.elapsed().as_secs_f64();
    eprintln!(
        "{} streams open in {connect_seconds:.1} s; {records} tokens minted",
        a.subscribers
    );

    // Idle window.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let s0 = snapshot(&a, &counters).await;
    tokio::time::sleep(Duration::from_secs(a.idle_seconds)).await;
    let s1 = snapshot(&a, &counters).await;
    let idle = cost(&a, &s0, &s1);

    // Revocation windows.
    let sent: Arc<Vec<AtomicU32>> = Arc::new((0..records).map(|_| AtomicU32::new(UNSET)).collect());
    let mut windows = Vec::with_capacity(a.rates.len());
    let mut first = 0;
    let subs = a.subscribers as u64;
    for (&rate, &n) in a.rates.iter().zip(&per_window) {
        let before = snapshot(&a, &counters).await;
        let (revoke_calls, revoke_failed) = revoke_window(
            &client,
            &a,
            &minted[first..first + n],
            first,
            rate,
            base,
            &sent,
        )
        .await;
        let last_sent = Instant::now();
        let want = subs * (first + n) as u64;
        let deadline = last_sent + Duration::from_secs(a.drain_seconds);
        let mut complete = true;
        while delivered.load(Ordering::Relaxed) < want {
            if Instant::now() >= deadline {
                complete = false;
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let after = snapshot(&a, &counters).await;
        windows.push(Window {
            rate,
            first,
            records: n,
            cost: cost(&a, &before, &after),
            revoke_calls,
            revoke_failed,
            complete,
            load1: load1(),
        });
        first += n;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    stop_tx.send_replace(true);
    let mut tallies = Vec::with_capacity(tasks.len());
    for t in tasks {
        tallies.push(t.await?);
    }
    let failed = report(
        &a,
        label,
        &counters,
        &idle,
        &windows,
        &tallies,
        &sent,
        connect_seconds,
    );
    if failed {
        bail!(
            "records were missing, duplicated or out of order, streams ended early, or revoke calls failed"
        );
    }
    Ok(())
}

/// Prints the JSON lines; true if anything was wrong.
#[allow(clippy::cast_precision_loss, clippy::too_many_arguments)]
fn report(
    a: &SubscribersArgs,
    label: &str,
    counters: &[Counter],
    idle: &Cost,
    windows: &[Window],
    tallies: &[Tally],
    sent: &[AtomicU32],
    connect_seconds: f64,
) -> bool {
    let duplicates: u64 = tallies.iter().map(|t| t.duplicates).sum();
    let out_of_order: u64 = tallies.iter().map(|t| t.out_of_order).sum();
    let foreign: u64 = tallies.iter().map(|t| t.foreign).sum();
    let events: u64 = tallies.iter().map(|t| t.events).sum();
    let event_bytes: u64 = tallies.iter().map(|t| t.event_bytes).sum();
    let ended: Vec<&str> = tallies.iter().filter_map(|t| t.ended.as_deref()).collect();
    let mut failed = duplicates > 0 || out_of_order > 0 || !ended.is_empty();
    if let Some(why) = ended.first() {
        eprintln!("{} streams ended early, e.g.: {why}", ended.len());
    }
    let idle_counters: serde_json::Map<String, Value> = counters
        .iter()
        .zip(&idle.counters)
        .map(|(c, d)| {
            (
                format!("idle_{}_per_s", c.name),
                json!(d.map(|d| round3(d / idle.seconds))),
            )
        })
        .collect();
    for w in windows {
        let mut delays = Vec::with_capacity(tallies.len() * w.records);
        let mut missing = 0u64;
        for t in tallies {
            let range = w.first..w.first + w.records;
            let calls = sent[range.clone()].iter().zip(&w.revoke_failed);
            for ((s, &call_failed), &arrival) in calls.zip(&t.arrivals[range]) {
                let s = s.load(Ordering::Relaxed);
                match arrival {
                    // A failed call need not have made a record: not a delivery failure.
                    _ if call_failed => {}
                    UNSET => missing += 1,
                    at if s != UNSET => delays.push(at.saturating_sub(s)),
                    _ => {}
                }
            }
        }
        let sends: Vec<u32> = sent[w.first..w.first + w.records]
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .filter(|&s| s != UNSET)
            .collect();
        let achieved = match (sends.iter().min(), sends.iter().max()) {
            (Some(&lo), Some(&hi)) if hi > lo => {
                json!(round3((sends.len() - 1) as f64 * 1e6 / f64::from(hi - lo)))
            }
            _ => Value::Null,
        };
        // The window's CPU less what the idle streams alone would have cost over it.
        let over_idle = match (w.cost.auth_cpu_ms, idle.auth_cpu_ms) {
            (Some(busy), Some(quiet)) => Some(busy - quiet / idle.seconds * w.cost.seconds),
            _ => None,
        };
        let revoke_failed = w.revoke_failed.iter().filter(|&&f| f).count();
        failed |= missing > 0 || revoke_failed > 0;
        delays.sort_unstable();
        let mut calls = w.revoke_calls.clone();
        calls.sort_unstable();
        let per_rev = |v: Option<f64>| v.map(|v| round3(v / w.records as f64));
        // No pairs (no subscribers): no delivery figures.
        let delay = |p: f64| (!delays.is_empty()).then(|| percentile(&delays, p));
        let mut line = json!({
            "label": label,
            "subscribers": a.subscribers,
            "rate": w.rate,
            "records": w.records,
            "achieved_rate": achieved,
            "pairs": delays.len(),
            "delivery_p50_ms": delay(0.50),
            "delivery_p99_ms": delay(0.99),
            "delivery_max_ms": delay(1.0),
            "missing": missing,
            "duplicates": duplicates,
            "out_of_order": out_of_order,
            "foreign": foreign,
            "ended_early": ended.len(),
            "complete": w.complete,
            "window_s": round3(w.cost.seconds),
            "auth_cpu_ms_per_revocation": per_rev(w.cost.auth_cpu_ms),
            "auth_sys_cpu_ms_per_revocation": per_rev(w.cost.auth_sys_ms),
            "auth_cpu_ms_per_revocation_over_idle": per_rev(over_idle),
            "auth_cpu_pct": w.cost.auth_cpu_ms.map(|ms| round3(ms / 10.0 / w.cost.seconds)),
            "idle_auth_cpu_pct": idle.auth_cpu_ms.map(|ms| round3(ms / 10.0 / idle.seconds)),
            "idle_auth_rss_kib": idle.auth_rss_kib,
            "own_cpu_pct": w.cost.own_cpu_ms.map(|ms| round3(ms / 10.0 / w.cost.seconds)),
            "event_bytes": if events > 0 { json!(round3(event_bytes as f64 / events as f64)) } else { Value::Null },
            "revoke_call_p50_ms": percentile(&calls, 0.50),
            "revoke_call_p99_ms": percentile(&calls, 0.99),
            "revoke_failed": revoke_failed,
            "connect_s": round3(connect_seconds),
            "load1": w.load1,
        });
        if let Some(o) = line.as_object_mut() {
            for (c, d) in counters.iter().zip(&w.cost.counters) {
                o.insert(format!("{}_per_revocation", c.name), json!(per_rev(*d)));
            }
            o.extend(idle_counters.clone());
        }
        println!("{line}");
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_escapes_reserved_characters() {
        assert_eq!(url_form(&[("a b", "x&y=z/~")]), "a%20b=x%26y%3Dz%2F~");
    }

    #[test]
    fn the_jti_is_read_from_the_payload() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"jti":"j-1"}"#);
        assert_eq!(jti_of(&format!("h.{payload}.s")).unwrap(), "j-1");
        assert!(jti_of("opaque").is_err());
    }
}
