//! `cargo run --release -p wristband-loadgen -- --help`
//!
//! A closed-loop HTTP load generator for the benchmarks in `BENCHMARKS.md`: C connections
//! each send requests back to back for a fixed time (or count), and the tool prints
//! requests/s and latency percentiles as one JSON line. Scenarios:
//!
//! - `get`: `GET URL`, optionally with a bearer token or a cookie.
//! - `refresh`: each connection logs in once, then refreshes in a chain.
//! - `login`: repeated logins with one user's correct password.
//! - `oidc`: an OpenID Connect provider's code exchange, refresh and userinfo, one line each
//!   (see [`oidc`]; `--requests` does not apply).
//! - `fanout`: the time from a revoke call until every API service refuses the token (see
//!   [`fanout`]; `--connections`, `--duration` and `--requests` do not apply).
//! - `rotating`: `GET /resource` round-robin over several API services with tokens that a
//!   background session refresh keeps fresh, while keys rotate (see [`rotation`];
//!   `--requests` does not apply).
//! - `kid-revoke`: the time from an emergency key revocation until every API service
//!   refuses the key's tokens (see [`rotation`]; only `--label` applies).
//! - `subscribers`: thousands of revocation-stream subscribers in one process while a
//!   revoker sends revocations at a fixed rate: delivery delay to every subscriber, exactly
//!   once and in order, and the auth service's CPU (see [`subscribers`]; only `--label`
//!   applies).
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::{Parser, Subcommand};
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

mod fanout;
mod floor;
mod rotation;
mod subscribers;

mod oidc;

#[derive(Parser)]
#[command(about = "Closed-loop HTTP load generator for Wristband benchmarks")]
struct Args {
    /// Concurrent connections.
    #[arg(long, short = 'c', default_value_t = 16)]
    connections: usize,
    /// How long to run, in seconds.
    #[arg(long, short = 'd', default_value_t = 10)]
    duration: u64,
    /// Stop after this many requests in total (whichever comes first).
    #[arg(long)]
    requests: Option<u64>,
    /// A label for the output line.
    #[arg(long, default_value = "")]
    label: String,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand, Clone)]
enum Scenario {
    /// GET a URL.
    Get {
        /// The URL.
        url: String,
        /// Bearer token to send.
        #[arg(long)]
        bearer: Option<String>,
        /// A `NAME=VALUE` cookie to send (a browser's session cookie).
        #[arg(long)]
        cookie: Option<String>,
    },
    /// Log in once per connection, then refresh in a chain.
    Refresh {
        /// Auth service base URL; repeat it to spread the connections round-robin over
        /// several instances.
        #[arg(long, required = true)]
        auth: Vec<String>,
        /// Username.
        #[arg(long)]
        user: String,
        /// Password (benchmark accounts only).
        #[arg(long)]
        password: String,
    },
    /// Log in repeatedly.
    Login {
        /// Auth service base URL; repeat it to spread the connections round-robin over
        /// several instances.
        #[arg(long, required = true)]
        auth: Vec<String>,
        /// Username.
        #[arg(long)]
        user: String,
        /// Password (benchmark accounts only).
        #[arg(long)]
        password: String,
    },
    /// An OpenID Connect provider's code exchange, refresh and userinfo.
    Oidc(oidc::OidcArgs),
    /// Time from revocation to rejection at every API service.
    Fanout(fanout::FanoutArgs),
    /// GET /resource over several API services while keys rotate.
    Rotating(rotation::RotatingArgs),
    /// Time from an emergency key revocation to rejection at every API service.
    KidRevoke(rotation::KidRevokeArgs),
    /// Thousands of revocation-stream subscribers and a revoker at a fixed rate.
    Subscribers(subscribers::SubscribersArgs),
    /// The floor under any fan-out: one thread writing each record to N loopback sockets.
    SocketFloor(floor::FloorArgs),
    /// The other ends of `socket-floor`'s sockets (started by it).
    SocketSink,
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

async fn send(
    client: &HttpClient,
    method: Method,
    url: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
) -> Result<(u16, Bytes)> {
    let mut req = Request::builder().method(method).uri(url);
    if let Some(t) = bearer {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let body = match body {
        Some(v) => {
            req = req.header("content-type", "application/json");
            Bytes::from(v.to_string())
        }
        None => Bytes::new(),
    };
    let res = client.request(req.body(Full::new(body))?).await?;
    let status = res.status().as_u16();
    let bytes = res.into_body().collect().await?.to_bytes();
    Ok((status, bytes))
}

/// `GET URL` with one cookie; the status.
async fn get_with_cookie(client: &HttpClient, url: &str, cookie: &str) -> Result<u16> {
    let req = Request::builder()
        .method(Method::GET)
        .uri(url)
        .header("cookie", cookie)
        .body(Full::new(Bytes::new()))?;
    let res = client.request(req).await?;
    let status = res.status().as_u16();
    res.into_body().collect().await?;
    Ok(status)
}

fn field(body: &Bytes, name: &str) -> Result<String> {
    let v: Value = serde_json::from_slice(body)?;
    v[name]
        .as_str()
        .map(str::to_owned)
        .context("missing field in response")
}

struct Outcome {
    latencies_us: Vec<u32>,
    errors: u64,
}

/// The auth instance that connection `conn` talks to (round-robin).
fn instance(auth: &[String], conn: usize) -> &str {
    &auth[conn % auth.len()]
}

async fn worker(
    conn: usize,
    client: HttpClient,
    scenario: Scenario,
    deadline: Instant,
    budget: Arc<std::sync::atomic::AtomicI64>,
) -> Result<Outcome> {
    let mut out = Outcome {
        latencies_us: Vec::with_capacity(100_000),
        errors: 0,
    };
    let mut refresh_token = match &scenario {
        Scenario::Refresh {
            auth,
            user,
            password,
        } => {
            let (status, body) = send(
                &client,
                Method::POST,
                &format!("{}/v1/login", instance(auth, conn)),
                None,
                Some(&json!({"username": user, "password": password})),
            )
            .await?;
            if status != 200 {
                bail!("login for the refresh scenario failed with {status}");
            }
            Some(field(&body, "refresh_token")?)
        }
        _ => None,
    };
    while Instant::now() < deadline && budget.fetch_sub(1, std::sync::atomic::Ordering::Relaxed) > 0
    {
        let start = Instant::now();
        let ok = match &scenario {
            Scenario::Get {
                url,
                bearer,
                cookie: None,
            } => send(&client, Method::GET, url, bearer.as_deref(), None)
                .await
                .map(|(s, _)| s == 200)?,
            Scenario::Get {
                url,
                cookie: Some(cookie),
                ..
            } => get_with_cookie(&client, url, cookie).await? == 200,
            Scenario::Login {
                auth,
                user,
                password,
            } => send(
                &client,
                Method::POST,
                &format!("{}/v1/login", instance(auth, conn)),
                None,
                Some(&json!({"username": user, "password": password})),
            )
            .await
            .map(|(s, _)| s == 200)?,
            Scenario::Refresh { auth, .. } => {
                let rt = refresh_token.take().context("refresh chain broken")?;
                let (status, body) = send(
                    &client,
                    Method::POST,
                    &format!("{}/v1/refresh", instance(auth, conn)),
                    None,
                    Some(&json!({"refresh_token": rt})),
                )
                .await?;
                if status != 200 {
                    bail!("refresh failed with {status}");
                }
                refresh_token = Some(field(&body, "refresh_token")?);
                true
            }
            Scenario::Oidc(_)
            | Scenario::Fanout(_)
            | Scenario::Rotating(_)
            | Scenario::KidRevoke(_)
            | Scenario::Subscribers(_)
            | Scenario::SocketFloor(_)
            | Scenario::SocketSink => {
                bail!("not a scenario of the generic loop")
            }
        };
        let us = u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX);
        out.latencies_us.push(us);
        if !ok {
            out.errors += 1;
        }
    }
    Ok(out)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[idx]) / 1000.0
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(args.connections)
        .build_http();
    if let Scenario::Fanout(a) = args.scenario {
        return fanout::run(client, a, &args.label).await;
    }
    if let Scenario::Oidc(a) = args.scenario {
        let duration = Duration::from_secs(args.duration);
        return oidc::run(client, a, args.connections, duration, &args.label).await;
    }
    if let Scenario::Rotating(a) = args.scenario {
        let duration = Duration::from_secs(args.duration);
        return rotation::run_rotating(client, a, args.connections, duration, &args.label).await;
    }
    if let Scenario::KidRevoke(a) = args.scenario {
        return rotation::run_kid_revoke(client, a, &args.label).await;
    }
    if let Scenario::SocketFloor(a) = &args.scenario {
        let (a, label) = (a.clone(), args.label.clone());
        return tokio::task::spawn_blocking(move || floor::run(&a, &label)).await?;
    }
    if let Scenario::SocketSink = args.scenario {
        return floor::sink().await;
    }
    if let Scenario::Subscribers(a) = args.scenario {
        return subscribers::run(client, a, &args.label).await;
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration);
    let budget = Arc::new(std::sync::atomic::AtomicI64::new(
        args.requests
            .map_or(i64::MAX, |r| i64::try_from(r).unwrap_or(i64::MAX)),
    ));
    let mut tasks = Vec::new();
    for conn in 0..args.connections {
        tasks.push(tokio::spawn(worker(
            conn,
            client.clone(),
            args.scenario.clone(),
            deadline,
            budget.clone(),
        )));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let o = t.await??;
        latencies.extend(o.latencies_us);
        errors += o.errors;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    #[allow(clippy::cast_precision_loss)]
    let rps = latencies.len() as f64 / elapsed;
    let line = json!({
        "label": args.label,
        "connections": args.connections,
        "seconds": (elapsed * 100.0).round() / 100.0,
        "requests": latencies.len(),
        "errors": errors,
        "rps": rps.round(),
        "p50_ms": percentile(&latencies, 0.50),
        "p99_ms": percentile(&latencies, 0.99),
        "max_ms": percentile(&latencies, 1.0),
    });
    println!("{line}");
    if errors > 0 {
        eprintln!("{errors} requests did not answer 200");
    }
    Ok(())
}
