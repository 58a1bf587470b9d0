//! Slow and idle connections against `wristband serve` as a real process, under a small
//! file limit: thousands of half-sent requests must neither starve `/healthz` and
//! `/v1/login` nor stay open.

use std::path::Path;
use std::time::Duration;

use http::Method;
use serde_json::json;
use tempfile::TempDir;
use tokio::time::Instant;
use wristband_testkit::http::Client;
use wristband_testkit::process::ServiceProcess;
use wristband_testkit::slow_clients::{count_closed_by, open_half_sent};

use crate::service::{add_user, write_config, PASSWORD};

/// Half-sent requests held open: far more than the server's 512 file descriptors.
const HALF_SENT: usize = 3000;
/// The header read timeout the server is given.
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// How long health and login may take while the server is flooded.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_half_sent_requests_neither_starve_health_and_login_nor_stay_open() {
    // The test itself holds every connection: give it room.
    let own_limit = wristband_serve::raise_fd_limit().unwrap();
    assert!(
        own_limit > HALF_SENT as u64 + 200,
        "the test needs a file limit above {HALF_SENT}"
    );
    let dir = TempDir::new().unwrap();
    add_user(&dir, "alice", "user");
    let config = write_config(dir.path());
    let data = dir.path().join("data");
    let data = data.to_string_lossy();
    let auth = ServiceProcess::spawn_with_env(
        Path::new("prlimit"),
        &[
            "--nofile=512:512",
            env!("CARGO_BIN_EXE_wristband"),
            "serve",
            "--config",
            &config,
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            &data,
        ],
        &[("WRISTBAND_HEADER_READ_TIMEOUT", "2s")],
    )
    .await;

    let flood = open_half_sent(auth.addr(), HALF_SENT).await;
    let flooded = Instant::now();

    let client = Client::new();
    let health = tokio::time::timeout(ANSWER_WITHIN, client.get(&auth.url("/healthz"), &[]))
        .await
        .expect("/healthz answers within 2 s while flooded");
    assert_eq!(health.status, 200, "{}", health.text());
    let login = tokio::time::timeout(
        ANSWER_WITHIN,
        client.send(
            Method::POST,
            &auth.url("/v1/login"),
            &[("content-type", "application/json")],
            json!({"username": "alice", "password": PASSWORD})
                .to_string()
                .as_bytes(),
        ),
    )
    .await
    .expect("/v1/login answers within 2 s while flooded");
    assert_eq!(login.status, 200, "{}", login.text());
    assert!(login.json()["access_token"].is_string());

    // Every half-sent request is closed: evicted to make room, or at the header timeout.
    let held = flood.streams.len();
    let closed = count_closed_by(flood.streams, flooded + HEADER_TIMEOUT * 3).await;
    assert_eq!(
        (closed, flood.failed),
        (held, 0),
        "of {HALF_SENT} half-sent requests, {} could not connect and {} of {held} stayed open",
        flood.failed,
        held - closed
    );
    // The server is still healthy afterwards.
    let health = tokio::time::timeout(ANSWER_WITHIN, client.get(&auth.url("/healthz"), &[]))
        .await
        .expect("/healthz answers after the flood");
    assert_eq!(health.status, 200);
    auth.terminate().await;
}
