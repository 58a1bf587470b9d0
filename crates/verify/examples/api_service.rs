//! Run: `cargo run -p wristband-verify --example api_service -- --listen 127.0.0.1:8081 --issuer http://127.0.0.1:8080 --audience api://orders`
//!
//! The API Service: an HTTP API that verifies every bearer token locally.
//!
//! - `GET /resource`: 200 with the verified `sub`, `role` and claims;
//! - `POST /resource`: the same check for a state-changing request (200 with the `sub`);
//! - `GET /admin`: 200 for the role `admin`, 403 otherwise;
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
//! RFC 8414 metadata. In HS256 mode the service verifies with a shared secret instead:
//! `--hs256-secret-file PATH` (a `secret.jwk.json` written by
//! `wristband keys generate --alg HS256`, or a file holding the base64url secret), or the
//! base64url secret in the environment variable `WRISTBAND_HS256_SECRET`. A weak secret
//! (under 32 bytes, a well-known value, low entropy) stops the start-up with an error. The bound address is printed on stdout as `listening on ADDR`
//! (so `--listen 127.0.0.1:0` works); logs go to stderr (`RUST_LOG` sets the level).
//! SIGINT and SIGTERM shut the service down gracefully.
//!
//! With `--access-cookie` (for a service on the auth service's site, or behind a gateway
//! that forwards its cookies), a request without `Authorization: Bearer` may carry the
//! token in the `__Host-wb_at` cookie; a state-changing one then needs `X-CSRF-Token`
//! equal to the `__Host-wb_csrf` cookie and no cross-site `Sec-Fetch-Site`, or it is
//! refused with 403 `csrf_failed`.

#![allow(clippy::print_stdout)]

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use wristband_jose::SecretString;
use wristband_verify::example::{api_service_router, shutdown_signal};
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
    /// Also accept the access token from the `__Host-wb_at` cookie when no bearer header is
    /// sent, with the CSRF rule (`X-CSRF-Token` equal to the `__Host-wb_csrf` cookie) on
    /// state-changing requests. Off by default: cookies are ignored.
    #[arg(long)]
    access_cookie: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();

    let mut builder = Verifier::builder(&args.issuer, &args.audience)
        .refetch_cooldown(Duration::from_secs(args.refetch_cooldown));
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
    if args.revocations.unwrap_or(args.client_id.is_some()) {
        builder = builder
            .revocation_feed()
            .staleness_policy(args.staleness_policy)
            .max_staleness(Duration::from_secs(args.max_staleness));
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
    let verifier = builder
        .build()
        .await
        .context("loading the verification keys and the revocation feed")?;

    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on {addr}")?;
    stdout.flush()?;

    axum::serve(listener, api_service_router(verifier))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("shut down");
    Ok(())
}
