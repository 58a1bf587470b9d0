//! Integration tests of wristband-verify: one binary, one module per area.
//!
//! Most cases run the library in-process (router tests through `oneshot`, remote key sets
//! against a loopback [`JwksServer`]); `processes` runs two real `api_service` processes.
//!
//! The example's routes are included from `examples/api_service/router.rs`, and the
//! process tests run the example binary that `cargo test -p wristband-verify` built before
//! this binary ([`api_service_binary`]); no test runs cargo.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../../examples/api_service/router.rs"]
mod api_service;
mod canary;
mod connections;
mod cookie;
mod feed;
mod hs256;
mod key_lifecycle;
mod layer;
mod opaque;
mod processes;
mod relay;
mod remote;
mod revocation;
mod stepup;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use wristband_jose::{Algorithm, Clock};
use wristband_testkit::{keys, JwksServer, Minter};
use wristband_verify::{RemoteOptions, Verifier};

/// The `api_service` example, built by cargo with this package's tests.
pub fn api_service_binary() -> std::path::PathBuf {
    wristband_testkit::process::example_binary("api_service")
}

pub const ISSUER: &str = "https://auth.example";
pub const AUDIENCE: &str = "api://orders";

/// A response as seen by a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn www(&self) -> &str {
        self.headers
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// Sends `req` through `app` without a socket.
pub async fn call(app: &Router, req: Request<Body>) -> Reply {
    let res = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes().to_vec(),
    }
}

/// `GET path` with the given header pairs.
pub fn get(path: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::get(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::empty()).unwrap()
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A minter with the fixed ES256 key of slot 0, for `ISSUER` and `AUDIENCE`.
pub fn minter() -> Minter {
    Minter::new(keys::fixed(Algorithm::ES256, 0), ISSUER, AUDIENCE)
}

/// A verifier holding the public key of `minter` only.
pub async fn static_verifier(minter: &Minter, clock: Option<Arc<dyn Clock>>) -> Verifier {
    let mut b = Verifier::builder(&minter.iss, &minter.aud)
        .keys(keys::key_set([minter.key()]))
        .realm("orders");
    if let Some(clock) = clock {
        b = b.clock(clock);
    }
    b.build().await.unwrap()
}

/// Remote options for tests: short timeouts and the given unknown-kid cooldown.
pub fn fast_remote(cooldown: Duration) -> RemoteOptions {
    RemoteOptions {
        refetch_cooldown: cooldown,
        fetch_timeout: Duration::from_millis(500),
        startup_attempts: 2,
        startup_backoff: Duration::from_millis(50),
        ..RemoteOptions::default()
    }
}

/// A verifier that discovers its keys from `server`.
pub async fn remote_verifier(server: &JwksServer, cooldown: Duration) -> Verifier {
    Verifier::builder(server.issuer(), AUDIENCE)
        .remote_options(fast_remote(cooldown))
        .build()
        .await
        .unwrap()
}

/// A clock pinned a minute ahead of the wall clock: tokens minted now are in its past and
/// valid for 15 minutes, and tests move it past a cooldown instead of sleeping through it.
pub fn pinned_clock() -> Arc<wristband_jose::FixedClock> {
    let now = wristband_jose::SystemClock.now().as_secs();
    Arc::new(wristband_jose::FixedClock::new(
        wristband_jose::UnixTime::from_secs(now + 60),
    ))
}

/// Like [`remote_verifier`], measuring the refetch cooldown with `clock`.
pub async fn remote_verifier_at(
    server: &JwksServer,
    cooldown: Duration,
    clock: Arc<wristband_jose::FixedClock>,
) -> Verifier {
    Verifier::builder(server.issuer(), AUDIENCE)
        .remote_options(fast_remote(cooldown))
        .clock(clock)
        .build()
        .await
        .unwrap()
}
