//! `loadgen fanout`: the time from a revoke call to rejection at every API service.
//!
//! For each of N revocations: log in (a fresh session), check that every API service
//! accepts the access token (which also puts it in their verification caches), then send
//! the revoke call and, at the same instant, start polling `GET /resource` at every API
//! service concurrently until each answers 401. A process's latency is the time from
//! sending the revoke call to the first 401 it answers; a revocation's latency is the
//! largest of those (the moment the token is refused everywhere).
//!
//! A poll sees a rejection up to one interval (plus a loopback request) after it takes
//! effect, so the figures are upper bounds. Lower bounds are reported too: the rejection took
//! effect after the last poll that was still accepted had been sent.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use http::Method;
use serde_json::json;

use crate::{field, percentile, send, HttpClient};

/// How each token is revoked.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Via {
    /// `POST /v1/logout` with the access token (session and token records).
    Logout,
    /// RFC 7009 `POST /oauth2/revoke` of the access token (a `jti` record).
    RevokeAccess,
    /// RFC 7009 `POST /oauth2/revoke` of the refresh token (a `sid` record).
    RevokeRefresh,
}

/// Flags of `loadgen fanout`.
#[derive(Debug, Clone, Args)]
pub(crate) struct FanoutArgs {
    /// Auth service base URL (logins, and revocations unless `--revoke-auth` is given).
    #[arg(long)]
    auth: String,
    /// Another instance's base URL to send the revoke calls to (same database), so that
    /// the revocation reaches the API services through the instances' coordination.
    #[arg(long)]
    revoke_auth: Option<String>,
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
    #[arg(long, default_value_t = 1000)]
    revocations: usize,
    /// How each token is revoked.
    #[arg(long, value_enum, default_value = "logout")]
    via: Via,
    /// Milliseconds between two polls of one API service.
    #[arg(long, default_value_t = 5)]
    poll_ms: u64,
    /// A process that has not refused the token after this many milliseconds counts as a
    /// miss (recorded at the timeout).
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
}

struct Session {
    access: String,
    refresh: String,
}

async fn login(client: &HttpClient, a: &FanoutArgs) -> Result<Session> {
    let (status, body) = send(
        client,
        Method::POST,
        &format!("{}/v1/login", a.auth),
        None,
        Some(&json!({"username": a.user, "password": a.password})),
    )
    .await?;
    if status != 200 {
        bail!("login failed with {status}");
    }
    Ok(Session {
        access: field(&body, "access_token")?,
        refresh: field(&body, "refresh_token")?,
    })
}

async fn revoke(client: &HttpClient, a: &FanoutArgs, s: &Session) -> Result<()> {
    let auth = a.revoke_auth.as_deref().unwrap_or(&a.auth);
    let (status, expected) = match a.via {
        Via::Logout => (
            send(
                client,
                Method::POST,
                &format!("{auth}/v1/logout"),
                Some(&s.access),
                None,
            )
            .await?
            .0,
            204,
        ),
        Via::RevokeAccess | Via::RevokeRefresh => {
            let (token, hint) = match a.via {
                Via::RevokeRefresh => (&s.refresh, "refresh_token"),
                _ => (&s.access, "access_token"),
            };
            // Tokens are base64url (and `.`): nothing to escape in a form body.
            let body = format!("token={token}&token_type_hint={hint}&client_id=wristband");
            let req = http::Request::builder()
                .method(Method::POST)
                .uri(format!("{auth}/oauth2/revoke"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(http_body_util::Full::new(bytes::Bytes::from(body)))?;
            (client.request(req).await?.status().as_u16(), 200)
        }
    };
    if status != expected {
        bail!("revoke call answered {status}");
    }
    Ok(())
}

pub(crate) async fn status_at(client: &HttpClient, api: &str, token: &str) -> Result<u16> {
    Ok(send(
        client,
        Method::GET,
        &format!("{api}/resource"),
        Some(token),
        None,
    )
    .await?
    .0)
}

pub(crate) fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// Polls `api` from `start` until it refuses `token`. Returns, in microseconds since
/// `start`, when the first refusal arrived and when the last accepted poll was sent, or
/// `None` at the timeout.
async fn until_refused(
    client: HttpClient,
    api: String,
    token: String,
    start: Instant,
    every: Duration,
    timeout: Duration,
) -> Result<Option<(u32, u32)>> {
    let mut last_accepted = 0;
    loop {
        let sent = start.elapsed();
        match status_at(&client, &api, &token).await? {
            401 => return Ok(Some((micros(start.elapsed()), last_accepted))),
            200 => last_accepted = micros(sent),
            other => bail!("{api} answered {other} while polling"),
        }
        if start.elapsed() >= timeout {
            return Ok(None);
        }
        tokio::time::sleep(every).await;
    }
}

fn summary(sorted: &[u32]) -> serde_json::Value {
    #[allow(clippy::cast_precision_loss)]
    let mean = if sorted.is_empty() {
        0.0
    } else {
        sorted.iter().map(|&v| f64::from(v)).sum::<f64>() / sorted.len() as f64 / 1000.0
    };
    json!({
        "samples": sorted.len(),
        "p50_ms": percentile(sorted, 0.50),
        "p90_ms": percentile(sorted, 0.90),
        "p99_ms": percentile(sorted, 0.99),
        "max_ms": percentile(sorted, 1.0),
        "mean_ms": (mean * 1000.0).round() / 1000.0,
    })
}

/// Checks that every API service accepts the fresh `token`.
async fn accepted_everywhere(client: &HttpClient, apis: &[String], token: &str) -> Result<()> {
    let checks = apis.iter().map(|api| {
        let (c, api, t) = (client.clone(), api.clone(), token.to_owned());
        tokio::spawn(async move { status_at(&c, &api, &t).await })
    });
    for (check, api) in futures_join(checks).await?.into_iter().zip(apis) {
        if check != 200 {
            bail!("{api} refused a fresh token with {check}");
        }
    }
    Ok(())
}

/// Runs the benchmark and prints JSON lines.
pub(crate) async fn run(client: HttpClient, a: FanoutArgs, label: &str) -> Result<()> {
    let every = Duration::from_millis(a.poll_ms);
    let timeout = Duration::from_millis(a.timeout_ms);
    let timeout_us = micros(timeout);
    let mut at_all = Vec::with_capacity(a.revocations);
    let mut at_all_lower = Vec::with_capacity(a.revocations);
    let mut per_api: Vec<Vec<u32>> = vec![Vec::with_capacity(a.revocations); a.apis.len()];
    let mut calls = Vec::with_capacity(a.revocations);
    let mut missed = 0usize;
    let started = Instant::now();

    for i in 0..a.revocations {
        let s = login(&client, &a).await?;
        accepted_everywhere(&client, &a.apis, &s.access)
            .await
            .with_context(|| format!("revocation {i}"))?;

        let start = Instant::now();
        let pollers: Vec<_> = a
            .apis
            .iter()
            .map(|api| {
                tokio::spawn(until_refused(
                    client.clone(),
                    api.clone(),
                    s.access.clone(),
                    start,
                    every,
                    timeout,
                ))
            })
            .collect();
        revoke(&client, &a, &s).await?;
        calls.push(micros(start.elapsed()));
        let (mut worst, mut worst_lower) = (0, 0);
        for (k, p) in pollers.into_iter().enumerate() {
            let (us, lower) = match p.await?? {
                Some(seen) => seen,
                None => {
                    missed += 1;
                    (timeout_us, timeout_us)
                }
            };
            per_api[k].push(us);
            worst = worst.max(us);
            worst_lower = worst_lower.max(lower);
        }
        at_all.push(worst);
        at_all_lower.push(worst_lower);
    }

    let seconds = started.elapsed().as_secs_f64();
    let mut all: Vec<u32> = per_api.iter().flatten().copied().collect();
    all.sort_unstable();
    at_all.sort_unstable();
    at_all_lower.sort_unstable();
    calls.sort_unstable();
    let per_api: Vec<serde_json::Value> = per_api
        .iter_mut()
        .map(|v| {
            v.sort_unstable();
            json!([percentile(v, 0.5), percentile(v, 0.99), percentile(v, 1.0)])
        })
        .collect();
    let common = json!({
        "label": label,
        "apis": a.apis.len(),
        "revocations": a.revocations,
        "via": a.via.to_possible_value().map(|v| v.get_name().to_owned()),
        "poll_ms": a.poll_ms,
    });
    let line = |metric: &str, extra: serde_json::Value| {
        let mut v = common.clone();
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.insert("metric".into(), json!(metric));
            o.extend(e.clone());
        }
        println!("{v}");
    };
    let mut worst = summary(&at_all);
    if let Some(o) = worst.as_object_mut() {
        o.insert("missed".into(), json!(missed));
        o.insert("seconds".into(), json!((seconds * 100.0).round() / 100.0));
        o.insert(
            "target_p99_under_1s".into(),
            json!(percentile(&at_all, 0.99) < 1000.0),
        );
    }
    line("revoke_to_rejected_everywhere", worst);
    line(
        "revoke_to_rejected_everywhere_lower_bound",
        summary(&at_all_lower),
    );
    line("revoke_to_rejected_per_process", summary(&all));
    line("revoke_call", summary(&calls));
    line(
        "per_process_p50_p99_max_ms",
        json!({ "per_process": per_api }),
    );
    if missed > 0 {
        eprintln!("{missed} rejections not seen within {timeout:?}");
    }
    Ok(())
}

/// Awaits spawned tasks in order.
async fn futures_join<T>(
    tasks: impl Iterator<Item = tokio::task::JoinHandle<Result<T>>>,
) -> Result<Vec<T>> {
    let handles: Vec<_> = tasks.collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await??);
    }
    Ok(out)
}
