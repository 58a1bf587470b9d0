//! Run: `cargo run -p wristband-verify --example api_service -- --listen 127.0.0.1:8081 --issuer http://127.0.0.1:8080 --audience api://orders`
//!
//! The API Service: an HTTP API that verifies every bearer token locally.
//!
//! - `GET /resource`: 200 with the verified `sub`, `role` and claims;
//! - `GET /admin`: 200 for the role `admin`, 403 otherwise;
//! - `GET /health`: 200 without a token.
//!
//! Keys come from `--jwks` (a URL or a JWKS file) when given, otherwise from the issuer's
//! RFC 8414 metadata. The bound address is printed on stdout as `listening on ADDR`
//! (so `--listen 127.0.0.1:0` works); logs go to stderr (`RUST_LOG` sets the level).
//! SIGINT and SIGTERM shut the service down gracefully.

#![allow(clippy::print_stdout)]

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use wristband_verify::example::{api_service_router, shutdown_signal};
use wristband_verify::Verifier;

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
    #[arg(long)]
    jwks: Option<String>,
    /// Minimum seconds between JWKS refetches caused by unknown key ids.
    #[arg(long, default_value_t = 30)]
    refetch_cooldown: u64,
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
    builder = match &args.jwks {
        Some(jwks) if jwks.starts_with("http://") || jwks.starts_with("https://") => {
            builder.jwks_url(jwks)
        }
        Some(file) => builder.jwks_file(file),
        None => builder.discover(),
    };
    let verifier = builder
        .build()
        .await
        .context("loading the verification keys")?;

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
