//! Key rotation scenarios.
//!
//! - `loadgen rotating`: C connections send `GET /resource` round-robin over several API
//!   services with a bearer token that a background task keeps fresh by refreshing one
//!   session every `--refresh-ms`; every `--old-every`-th request uses an older token from
//!   earlier in the run instead (a client that has not refreshed), so tokens of retired keys
//!   keep being verified. Prints the usual JSON line plus the requests per signing `kid`.
//!   Any answer other than 200 (or a failed request) is an error; the first few are printed
//!   to stderr. Rotate keys from outside (`wristband keys rotate`) while it runs.
//! - `loadgen kid-revoke`: the time from an emergency key revocation (`wristband keys
//!   revoke KID`, run as the given command) until every API service refuses a token signed
//!   by that key. For each revocation: log in until the token is signed by a key not yet
//!   revoked, check that every API service accepts (and caches) it, then spawn the command
//!   with the token's `kid` appended and poll every API service concurrently until each
//!   answers 401. Each revocation revokes the current key, so a new one takes over and the
//!   next token is issued under it.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use http::Method;
use serde_json::{json, Value};

use crate::fanout::{micros, status_at};
use crate::{field, percentile, send, HttpClient};

/// How many failed requests are printed to stderr.
const PRINTED_ERRORS: usize = 5;

/// Flags of `loadgen rotating`.
#[derive(Debug, Clone, Args)]
pub(crate) struct RotatingArgs {
    /// Auth service base URL.
    #[arg(long)]
    auth: String,
    /// Username.
    #[arg(long)]
    user: String,
    /// Password (benchmark accounts only).
    #[arg(long)]
    password: String,
    /// An API service base URL; repeat for each process.
    #[arg(long = "api", required = true)]
    apis: Vec<String>,
    /// Milliseconds between two refreshes of the token source's session.
    #[arg(long, default_value_t = 200)]
    refresh_ms: u64,
    /// Every this-many-th request of a connection uses an older token (0: never).
    #[arg(long, default_value_t = 4)]
    old_every: u64,
}

/// Flags of `loadgen kid-revoke`.
#[derive(Debug, Clone, Args)]
pub(crate) struct KidRevokeArgs {
    /// Auth service base URL.
    #[arg(long)]
    auth: String,
    /// Username.
    #[arg(long)]
    user: String,
    /// Password (benchmark accounts only).
    #[arg(long)]
    password: String,
    /// An API service base URL; repeat for each process.
    #[arg(long = "api", required = true)]
    apis: Vec<String>,
    /// Number of revocations.
    #[arg(long, default_value_t = 5)]
    revocations: usize,
    /// Milliseconds between two polls of one API service.
    #[arg(long, default_value_t = 5)]
    poll_ms: u64,
    /// A service that has not refused the token after this many milliseconds counts as a
    /// miss (recorded at the timeout).
    #[arg(long, default_value_t = 15_000)]
    timeout_ms: u64,
    /// The revoke command, after `--`; the `kid` is appended as its last argument, e.g.
    /// `-- wristband keys revoke --data-dir DIR`.
    #[arg(last = true, required = true)]
    revoke_cmd: Vec<String>,
}

/// The `kid` in a JWT's protected header.
pub(crate) fn kid_of(token: &str) -> Result<String> {
    let header = token.split('.').next().context("empty token")?;
    let bytes = b64url_decode(header)?;
    let v: Value = serde_json::from_slice(&bytes)?;
    v["kid"]
        .as_str()
        .map(str::to_owned)
        .context("no kid in the token header")
}

/// Unpadded base64url (RFC 4648 §5), enough for a JWT header.
fn b64url_decode(s: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => bail!("not base64url"),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff)?);
        }
    }
    Ok(out)
}

/// The first 12 characters of a `kid`, for the output.
fn short(kid: &str) -> String {
    kid.chars().take(12).collect()
}

/// A token the source handed out, with its signing key and when it was issued.
struct Issued {
    token: String,
    kid: Arc<str>,
    at: Instant,
}

type History = Arc<RwLock<Vec<Arc<Issued>>>>;

async fn login(
    client: &HttpClient,
    auth: &str,
    user: &str,
    password: &str,
) -> Result<(String, String)> {
    let (status, body) = send(
        client,
        Method::POST,
        &format!("{auth}/v1/login"),
        None,
        Some(&json!({"username": user, "password": password})),
    )
    .await?;
    if status != 200 {
        bail!("login failed with {status}");
    }
    Ok((
        field(&body, "access_token")?,
        field(&body, "refresh_token")?,
    ))
}

/// Counts of the token source.
#[derive(Default)]
struct SourceStats {
    refreshes: u64,
    failures: u64,
}

/// Refreshes one session every `every` until `stop`, appending each access token to
/// `history`. A failed refresh is counted and printed, and the source logs in again.
async fn token_source(
    client: HttpClient,
    a: RotatingArgs,
    history: History,
    mut refresh: String,
    stop: Arc<AtomicBool>,
) -> SourceStats {
    let mut stats = SourceStats::default();
    let every = Duration::from_millis(a.refresh_ms);
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(every).await;
        let sent = Instant::now();
        let res = send(
            &client,
            Method::POST,
            &format!("{}/v1/refresh", a.auth),
            None,
            Some(&json!({"refresh_token": refresh})),
        )
        .await;
        let pair = match res {
            Ok((200, body)) => {
                field(&body, "access_token").and_then(|at| Ok((at, field(&body, "refresh_token")?)))
            }
            Ok((status, body)) => Err(anyhow::anyhow!(
                "refresh answered {status}: {}",
                String::from_utf8_lossy(&body)
            )),
            Err(e) => Err(e),
        };
        let pair = match pair {
            Ok(p) => p,
            Err(e) => {
                stats.failures += 1;
                eprintln!("token source: {e:#}; logging in again");
                match login(&client, &a.auth, &a.user, &a.password).await {
                    Ok(p) => p,
                    Err(e) => {
                        eprintln!("token source: {e:#}");
                        continue;
                    }
                }
            }
        };
        stats.refreshes += 1;
        let (access, next) = pair;
        refresh = next;
        match kid_of(&access) {
            Ok(kid) => history
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(Arc::new(Issued {
                    token: access,
                    kid: kid.into(),
                    at: sent,
                })),
            Err(e) => {
                stats.failures += 1;
                eprintln!("token source: unreadable token header: {e:#}");
            }
        }
    }
    stats
}

/// What one connection saw.
#[derive(Default)]
struct Seen {
    latencies_us: Vec<u32>,
    errors: u64,
    old_requests: u64,
    old_errors: u64,
    per_kid: BTreeMap<Arc<str>, u64>,
    errors_per_kid: BTreeMap<Arc<str>, u64>,
}

#[allow(clippy::too_many_arguments)]
async fn connection(
    client: HttpClient,
    apis: Arc<Vec<String>>,
    history: History,
    old_every: u64,
    deadline: Instant,
    seed: u64,
    printed: Arc<AtomicUsize>,
    started: Instant,
) -> Seen {
    let mut seen = Seen {
        latencies_us: Vec::with_capacity(100_000),
        ..Seen::default()
    };
    let mut n = seed;
    // A small LCG picks the older tokens; each connection has its own sequence.
    let mut rng = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    while Instant::now() < deadline {
        n += 1;
        let old = old_every > 0 && n.is_multiple_of(old_every);
        let issued = {
            let h = history
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let i = if old {
                rng = rng
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                usize::try_from(rng >> 33).unwrap_or(0) % h.len().max(1)
            } else {
                h.len().saturating_sub(1)
            };
            // The history starts with the login token, so it is never empty.
            let Some(issued) = h.get(i).map(Arc::clone) else {
                break;
            };
            issued
        };
        let api = &apis[usize::try_from(n).unwrap_or(0) % apis.len()];
        let start = Instant::now();
        let res = send(
            &client,
            Method::GET,
            &format!("{api}/resource"),
            Some(&issued.token),
            None,
        )
        .await;
        let us = u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX);
        seen.latencies_us.push(us);
        if old {
            seen.old_requests += 1;
        }
        let failure = match res {
            Ok((200, _)) => None,
            Ok((status, body)) => Some(format!(
                "{status} {}",
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(200)
                    .collect::<String>()
            )),
            Err(e) => Some(format!("request failed: {e:#}")),
        };
        *seen.per_kid.entry(Arc::clone(&issued.kid)).or_default() += 1;
        if let Some(what) = failure {
            seen.errors += 1;
            if old {
                seen.old_errors += 1;
            }
            *seen
                .errors_per_kid
                .entry(Arc::clone(&issued.kid))
                .or_default() += 1;
            if printed.fetch_add(1, Ordering::Relaxed) < PRINTED_ERRORS {
                eprintln!(
                    "error at {:.3} s: {api}/resource with a{} token of kid {} issued {:.3} s before: {what}",
                    started.elapsed().as_secs_f64(),
                    if old { "n older" } else { " current" },
                    short(&issued.kid),
                    issued.at.elapsed().as_secs_f64(),
                );
            }
        }
    }
    seen
}

impl Seen {
    /// Adds what one connection saw.
    fn add(&mut self, s: Seen) {
        self.latencies_us.extend(s.latencies_us);
        self.errors += s.errors;
        self.old_requests += s.old_requests;
        self.old_errors += s.old_errors;
        for (k, v) in s.per_kid {
            *self.per_kid.entry(k).or_default() += v;
        }
        for (k, v) in s.errors_per_kid {
            *self.errors_per_kid.entry(k).or_default() += v;
        }
    }
}

/// Per signing key, in the order the keys appeared: when it first signed a token of the
/// source, and the requests and errors with its tokens.
fn per_key(history: &History, started: Instant, total: &Seen) -> Vec<Value> {
    let mut first_signed: Vec<(Arc<str>, f64)> = Vec::new();
    for i in history
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
    {
        if !first_signed.iter().any(|(k, _)| *k == i.kid) {
            first_signed.push((
                Arc::clone(&i.kid),
                i.at.saturating_duration_since(started).as_secs_f64(),
            ));
        }
    }
    first_signed
        .iter()
        .map(|(kid, at)| {
            json!({
                "kid": short(kid),
                "first_signed_s": (at * 100.0).round() / 100.0,
                "requests": total.per_kid.get(kid).copied().unwrap_or(0),
                "errors": total.errors_per_kid.get(kid).copied().unwrap_or(0),
            })
        })
        .collect()
}

/// Runs `loadgen rotating` and prints one JSON line.
pub(crate) async fn run_rotating(
    client: HttpClient,
    a: RotatingArgs,
    connections: usize,
    duration: Duration,
    label: &str,
) -> Result<()> {
    let (access, refresh) = login(&client, &a.auth, &a.user, &a.password).await?;
    let started = Instant::now();
    let history: History = Arc::new(RwLock::new(vec![Arc::new(Issued {
        kid: kid_of(&access)?.into(),
        token: access,
        at: started,
    })]));
    let stop = Arc::new(AtomicBool::new(false));
    let source = tokio::spawn(token_source(
        client.clone(),
        a.clone(),
        Arc::clone(&history),
        refresh,
        Arc::clone(&stop),
    ));
    let deadline = started + duration;
    let apis = Arc::new(a.apis.clone());
    let printed = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..connections)
        .map(|c| {
            tokio::spawn(connection(
                client.clone(),
                Arc::clone(&apis),
                Arc::clone(&history),
                a.old_every,
                deadline,
                u64::try_from(c).unwrap_or(0),
                Arc::clone(&printed),
                started,
            ))
        })
        .collect();
    let mut total = Seen::default();
    for t in tasks {
        total.add(t.await?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let stats = source.await?;
    let kids = per_key(&history, started, &total);

    let mut latencies = total.latencies_us;
    latencies.sort_unstable();
    #[allow(clippy::cast_precision_loss)]
    let rps = latencies.len() as f64 / elapsed;
    let line = json!({
        "label": label,
        "connections": connections,
        "apis": a.apis.len(),
        "seconds": (elapsed * 100.0).round() / 100.0,
        "requests": latencies.len(),
        "errors": total.errors,
        "rps": rps.round(),
        "p50_ms": percentile(&latencies, 0.50),
        "p99_ms": percentile(&latencies, 0.99),
        "max_ms": percentile(&latencies, 1.0),
        "older_token_requests": total.old_requests,
        "older_token_errors": total.old_errors,
        "refreshes": stats.refreshes,
        "refresh_failures": stats.failures,
        "distinct_kids": total.per_kid.len(),
        "kids": kids,
    });
    println!("{line}");
    if total.errors > 0 {
        eprintln!("{} requests did not answer 200", total.errors);
    }
    Ok(())
}

/// Polls `api` from `start` until it refuses `token`: microseconds since `start` to the
/// first 401, or `None` at the timeout.
async fn until_refused(
    client: HttpClient,
    api: String,
    token: String,
    start: Instant,
    every: Duration,
    timeout: Duration,
) -> Result<Option<u32>> {
    loop {
        match status_at(&client, &api, &token).await? {
            401 => return Ok(Some(micros(start.elapsed()))),
            200 => {}
            other => bail!("{api} answered {other} while polling"),
        }
        if start.elapsed() >= timeout {
            return Ok(None);
        }
        tokio::time::sleep(every).await;
    }
}

/// Logs in until the token is signed by a key that has not been revoked (the auth service
/// picks up the key that took over a moment after the revocation).
async fn fresh_token(
    client: &HttpClient,
    a: &KidRevokeArgs,
    revoked: &HashSet<String>,
) -> Result<(String, String)> {
    let start = Instant::now();
    loop {
        let (access, _) = login(client, &a.auth, &a.user, &a.password).await?;
        let kid = kid_of(&access)?;
        if !revoked.contains(&kid) {
            return Ok((access, kid));
        }
        if start.elapsed() > Duration::from_secs(30) {
            bail!("the auth service still signs with revoked key {kid} after 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `api` accepts `token` (a verifier meeting a new key refetches the JWKS,
/// at most once per refetch cool-down).
async fn until_accepted(client: &HttpClient, api: &str, token: &str) -> Result<()> {
    let start = Instant::now();
    loop {
        let status = status_at(client, api, token).await?;
        if status == 200 {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(30) {
            bail!("{api} still refuses a fresh token after 30 s ({status})");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn summary(sorted: &[u32]) -> Value {
    json!({
        "samples": sorted.len(),
        "p50_ms": percentile(sorted, 0.50),
        "max_ms": percentile(sorted, 1.0),
    })
}

/// Runs `loadgen kid-revoke` and prints one JSON line.
pub(crate) async fn run_kid_revoke(
    client: HttpClient,
    a: KidRevokeArgs,
    label: &str,
) -> Result<()> {
    let every = Duration::from_millis(a.poll_ms);
    let timeout = Duration::from_millis(a.timeout_ms);
    let mut revoked = HashSet::new();
    let mut per_api: Vec<Vec<u32>> = vec![Vec::new(); a.apis.len()];
    let mut everywhere = Vec::new();
    let mut command = Vec::new();
    let mut after_command = Vec::new();
    let mut missed = 0usize;

    for i in 0..a.revocations {
        let (token, kid) = fresh_token(&client, &a, &revoked).await?;
        for api in &a.apis {
            until_accepted(&client, api, &token)
                .await
                .with_context(|| format!("revocation {i}"))?;
        }

        let start = Instant::now();
        let pollers: Vec<_> = a
            .apis
            .iter()
            .map(|api| {
                tokio::spawn(until_refused(
                    client.clone(),
                    api.clone(),
                    token.clone(),
                    start,
                    every,
                    timeout,
                ))
            })
            .collect();
        let (program, args) = a.revoke_cmd.split_first().context("empty revoke command")?;
        let mut cmd = std::process::Command::new(program);
        cmd.args(args).arg(&kid);
        let out = tokio::task::spawn_blocking(move || cmd.output()).await??;
        let done = start.elapsed();
        if !out.status.success() {
            bail!(
                "revocation {i}: the revoke command failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        revoked.insert(kid);
        command.push(micros(done));
        let mut worst = 0;
        for (k, p) in pollers.into_iter().enumerate() {
            let us = match p.await?? {
                Some(us) => us,
                None => {
                    missed += 1;
                    micros(timeout)
                }
            };
            per_api[k].push(us);
            worst = worst.max(us);
        }
        everywhere.push(worst);
        after_command.push(worst.saturating_sub(micros(done)));
    }

    let mut all: Vec<u32> = per_api.iter().flatten().copied().collect();
    all.sort_unstable();
    everywhere.sort_unstable();
    command.sort_unstable();
    after_command.sort_unstable();
    let per_api: Vec<Value> = per_api
        .iter_mut()
        .map(|v| {
            v.sort_unstable();
            json!([percentile(v, 0.5), percentile(v, 1.0)])
        })
        .collect();
    let line = json!({
        "label": label,
        "apis": a.apis.len(),
        "revocations": a.revocations,
        "poll_ms": a.poll_ms,
        "missed": missed,
        "revoke_to_rejected_per_service": summary(&all),
        "revoke_to_rejected_everywhere": summary(&everywhere),
        "revoke_command": summary(&command),
        "command_exit_to_rejected_everywhere": summary(&after_command),
        "per_service_p50_max_ms": per_api,
    });
    println!("{line}");
    if missed > 0 {
        eprintln!("{missed} rejections not seen within {timeout:?}");
    }
    Ok(())
}
