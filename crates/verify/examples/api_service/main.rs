//! Run: `cargo run -p wristband-verify --example api_service -- --listen 127.0.0.1:8081 --issuer http://127.0.0.1:8080 --audience api://orders`
//!
//! The API Service: an HTTP API that verifies every bearer token locally.
//!
//! - `GET /resource`: 200 with the verified `sub`, `role` and claims;
//! - `POST /resource`: the same check for a state-changing request (200 with the `sub`);
//! - `GET /admin`: 200 for the role `admin`, 403 otherwise; with `--admin-requires-mfa`,
//!   also only after a multi-factor sign-in (see below);
//! - `GET /health`: 200 without a token;
//! - `GET /metrics`: Prometheus text, with `wristband_verifier_revocation_staleness_seconds`
//!   when the revocation feed is followed.
//!
//! With `--client-id` and `--client-secret` (or `WRISTBAND_CLIENT_ID` and
//! `WRISTBAND_CLIENT_SECRET`), a resource-server client's credentials, the service follows
//! the revocation feed (unless `--revocations=false`) and accepts opaque `wbo_` tokens by
//! introspection:
//!
//! `cargo run -p wristband-verify --example api_service -- --issuer http://127.0.0.1:8080 --audience api://orders --client-id ID --client-secret SECRET --staleness-policy fail-closed --max-staleness 60`
//!
//! Keys come from `--jwks` (a URL or a JWKS file) when given, otherwise from the issuer's
//! RFC 8414 metadata. For an auth service whose certificate a private CA issued,
//! `--cacert FILE` (PEM) is the only trust anchor for `https`; without it the system's
//! root certificates are used (`SSL_CERT_FILE` names another bundle for them).
//!
//! In HS256 mode the service verifies with a shared secret instead:
//! `--hs256-secret-file PATH` (a `secret.jwk.json` written by
//! `wristband keys generate --alg HS256`, or a file holding the base64url secret), or the
//! base64url secret in the environment variable `WRISTBAND_HS256_SECRET`. A weak secret
//! (under 32 bytes, a well-known value, low entropy) stops the start-up with an error. The bound address is printed on stdout as `listening on ADDR`
//! (so `--listen 127.0.0.1:0` works); logs go to stderr (`RUST_LOG` sets the level),
//! coloured only when stderr is a terminal.
//! SIGINT and SIGTERM shut the service down gracefully.
//!
//! Connections are served by `wristband-serve`: a request header must arrive within
//! `--header-read-timeout` (default 10 s), an idle keep-alive connection is closed after
//! `--idle-timeout` (60 s), a stalled request body gets 408 after `--request-body-timeout`
//! (30 s), and at `--max-connections` (default: from the open-file limit, which is raised
//! to its hard limit at start) the connections waiting without a request make room for new
//! ones. The same settings may be given as `WRISTBAND_HEADER_READ_TIMEOUT`,
//! `WRISTBAND_IDLE_TIMEOUT`, `WRISTBAND_REQUEST_BODY_TIMEOUT` and
//! `WRISTBAND_MAX_CONNECTIONS`.
//!
//! With `--serve-feed` the service is also a relay of the revocation feed it follows
//! (`wristband_verify::relay`): it serves `GET /v1/revocations` and
//! `GET /v1/revocations/stream` to downstream verifiers, with the auth service's cursors
//! and authorization. `--feed-url URL` follows such a relay (`http://HOST:PORT/v1/revocations`)
//! instead of the auth service's feed; client credentials are still needed.
//!
//! With `--access-cookie` (for a service on the auth service's site, or behind a gateway
//! that forwards its cookies), a request without `Authorization: Bearer` may carry the
//! token in the `__Host-wb_at` cookie; a state-changing one then needs `X-CSRF-Token`
//! equal to the `__Host-wb_csrf` cookie and no cross-site `Sec-Fetch-Site`, or it is
//! refused with 403 `csrf_failed`.
//!
//! With `--admin-requires-mfa`, `GET /admin` asks for step-up authentication (RFC 9470):
//! a valid token whose sign-in was not multi-factor (its `acr` is not
//! `urn:wristband:acr:mfa` or `urn:wristband:acr:phr` and its `amr` holds no `mfa`) gets
//! 401 with `WWW-Authenticate: Bearer realm="wristband",
//! error="insufficient_user_authentication", error_description="A different
//! authentication level is required", acr_values="urn:wristband:acr:mfa
//! urn:wristband:acr:phr"`; the role `admin` is still required after that.

#![allow(clippy::print_stdout)]

mod router;

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use router::api_service_router_with;
use wristband_jose::{FixedClock, SecretString, UnixTime};
use wristband_serve::{shutdown_signal, ServeLimits};
use wristband_verify::relay::Relay;
use wristband_verify::{CookieSource, Hs256Secret, StalenessPolicy, Verifier};

/// The environment variable holding a base64url HS256 secret.
const HS256_SECRET_ENV: &str = "WRISTBAND_HS256_SECRET";

#[derive(Debug, Parser)]
#[command(about = "The Wristband example API service")]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: String,
    /// The expected `iss` of tokens, and where keys are discovered without `--jwks`.
    #[arg(long)]
    issuer: String,
    /// The audience tokens must be meant for.
    #[arg(long)]
    audience: String,
    /// JWKS URL (`http://` or `https://`) or JWKS file.
    #[arg(long, conflicts_with = "hs256_secret_file")]
    jwks: Option<String>,
    /// HS256 mode: the shared secret, as a private `oct` JWK (`secret.jwk.json`) or a file
    /// holding the base64url secret. Alternatively set WRISTBAND_HS256_SECRET.
    #[arg(long)]
    hs256_secret_file: Option<std::path::PathBuf>,
    /// PEM file with the CA certificate(s) to trust for https (metadata, JWKS, token,
    /// introspection and revocation endpoints), instead of the system's root
    /// certificates: for an auth service behind a private CA. Without it, SSL_CERT_FILE
    /// may name another root bundle.
    #[arg(long, value_name = "FILE")]
    cacert: Option<std::path::PathBuf>,
    /// Minimum seconds between JWKS refetches caused by unknown key ids.
    #[arg(long, default_value_t = 30)]
    refetch_cooldown: u64,
    /// A resource-server client id, to read the revocation feed and introspect tokens.
    #[arg(long, env = "WRISTBAND_CLIENT_ID")]
    client_id: Option<String>,
    /// That client's secret.
    #[arg(long, env = "WRISTBAND_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// Follow the revocation feed (`--revocations` or `--revocations=false`). Default: on
    /// when client credentials are given.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    revocations: Option<bool>,
    /// While out of sync longer than --max-staleness: keep verifying (`fail-open`) or
    /// refuse tokens issued before the last sync (`fail-closed`).
    #[arg(long, default_value = "fail-open")]
    staleness_policy: StalenessPolicy,
    /// Seconds the revocation view may be out of sync before the policy applies. The feed
    /// sends a heartbeat every 15 s, so values under 30 make a `fail-closed` service refuse
    /// tokens between heartbeats of a healthy feed; a warning is logged for them.
    #[arg(long, default_value_t = 60)]
    max_staleness: u64,
    /// Follow the revocation feed at this URL (a relay's `.../v1/revocations`) instead of
    /// the one the issuer advertises.
    #[arg(long, value_name = "URL")]
    feed_url: Option<String>,
    /// Re-serve the followed revocation feed (`/v1/revocations` and
    /// `/v1/revocations/stream`) to downstream verifiers.
    #[arg(long)]
    serve_feed: bool,
    /// Also accept the access token from the `__Host-wb_at` cookie when no bearer header is
    /// sent, with the CSRF rule (`X-CSRF-Token` equal to the `__Host-wb_csrf` cookie) on
    /// state-changing requests. Off by default: cookies are ignored.
    #[arg(long)]
    access_cookie: bool,
    /// Step-up on `GET /admin`: besides the role `admin`, require a multi-factor sign-in
    /// (`acr` mfa or phr, or `mfa` in `amr`); otherwise 401
    /// `insufficient_user_authentication` (RFC 9470).
    #[arg(long)]
    admin_requires_mfa: bool,
    /// Close a connection that has not sent a complete request header this long after it
    /// was accepted or began its next request (`10s`, `1m`, or seconds).
    #[arg(long, env = "WRISTBAND_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = duration)]
    header_read_timeout: Duration,
    /// Close a keep-alive connection idle this long.
    #[arg(long, env = "WRISTBAND_IDLE_TIMEOUT", default_value = "60s", value_parser = duration)]
    idle_timeout: Duration,
    /// Answer 408 and close when a request body has not arrived this long after its header.
    #[arg(long, env = "WRISTBAND_REQUEST_BODY_TIMEOUT", default_value = "30s", value_parser = duration)]
    request_body_timeout: Duration,
    /// Most connections open at once; 0: from the open-file limit, keeping a reserve. At
    /// the cap, connections waiting without a request in flight are closed to make room.
    #[arg(long, env = "WRISTBAND_MAX_CONNECTIONS", default_value_t = 0)]
    max_connections: usize,
    /// Verify as if the time were this Unix time, standing still (for tests that need a
    /// token past its expiry without waiting for it).
    #[arg(long, hide = true, value_name = "UNIX_SECS")]
    now: Option<u64>,
}

/// Parses `30s`, `2m`, `1h` or a bare number of seconds.
fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("cannot parse duration {text:?} (use e.g. 30s, 2m)"))?;
    let seconds = match unit {
        "" | "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        _ => return Err(format!("cannot parse duration {text:?} (use e.g. 30s, 2m)")),
    };
    if seconds == 0 {
        return Err("a timeout must be positive".into());
    }
    Ok(Duration::from_secs(seconds))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let open_files = wristband_serve::raise_fd_limit().context("raising the open-file limit")?;
    let limits = ServeLimits {
        header_read_timeout: args.header_read_timeout,
        idle_timeout: args.idle_timeout,
        request_body_timeout: args.request_body_timeout,
        max_connections: (args.max_connections > 0).then_some(args.max_connections),
    };
    tracing::info!(
        open_files,
        max_connections = limits.connection_cap(open_files),
        "connection limits"
    );

    let mut builder = Verifier::builder(&args.issuer, &args.audience)
        .refetch_cooldown(Duration::from_secs(args.refetch_cooldown));
    if let Some(path) = &args.cacert {
        let pem =
            std::fs::read(path).with_context(|| format!("reading --cacert {}", path.display()))?;
        builder = builder.ca_certificates(pem);
    }
    if let Some(now) = args.now {
        builder = builder.clock(Arc::new(FixedClock::new(UnixTime::from_secs(now))));
    }
    let env_secret = std::env::var(HS256_SECRET_ENV)
        .ok()
        .filter(|s| !s.trim().is_empty());
    let hs256 = match (&args.hs256_secret_file, env_secret) {
        (Some(path), _) => Some(
            Hs256Secret::read(path)
                .with_context(|| format!("reading the HS256 secret from {}", path.display()))?,
        ),
        (None, Some(secret)) => Some(Hs256Secret::from_base64url(SecretString::new(secret))),
        (None, None) => None,
    };
    builder = match (&args.jwks, hs256) {
        (Some(_), Some(_)) => {
            anyhow::bail!("--jwks and an HS256 secret ({HS256_SECRET_ENV}) exclude each other")
        }
        (None, Some(secret)) => builder.hs256_secret(secret),
        (Some(jwks), None) if jwks.starts_with("http://") || jwks.starts_with("https://") => {
            builder.jwks_url(jwks)
        }
        (Some(file), None) => builder.jwks_file(file),
        (None, None) => builder.discover(),
    };
    match (&args.client_id, &args.client_secret) {
        (Some(id), Some(secret)) => builder = builder.client_credentials(id, secret),
        (None, None) => {}
        _ => anyhow::bail!("--client-id and --client-secret go together"),
    }
    let follow_feed = args.revocations.unwrap_or(args.client_id.is_some());
    if follow_feed {
        builder = builder
            .revocation_feed()
            .staleness_policy(args.staleness_policy)
            .max_staleness(Duration::from_secs(args.max_staleness));
        if let Some(url) = &args.feed_url {
            builder = builder.revocation_feed_url(url);
        }
        if args.max_staleness < 30 {
            tracing::warn!(
                max_staleness = args.max_staleness,
                "--max-staleness is below twice the feed's 15 s heartbeat: a healthy but quiet \
                 feed will count as stale between heartbeats"
            );
        }
    }
    if args.access_cookie {
        builder = builder.access_cookie(CookieSource::default());
    }
    let verifier = builder.build().await.context(if follow_feed {
        "loading the verification keys and the revocation feed"
    } else {
        "loading the verification keys"
    })?;

    let relay = if args.serve_feed {
        Some(Relay::new(&verifier).context("--serve-feed needs the revocation feed")?)
    } else {
        None
    };
    let mut app = api_service_router_with(verifier, args.admin_requires_mfa);
    if let Some(relay) = &relay {
        app = app.merge(relay.router());
    }
    // Relay streams never end by themselves: end them at shutdown, so that the graceful
    // shutdown does not wait for them.
    let shutdown = async move {
        shutdown_signal().await;
        if let Some(relay) = relay {
            relay.stop();
        }
    };

    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on {addr}")?;
    stdout.flush()?;

    wristband_serve::serve(listener, app, limits, shutdown).await?;
    tracing::info!("shut down");
    Ok(())
}
