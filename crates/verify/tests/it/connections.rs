//! Slow clients against a real `api_service` process under a small file limit: half-sent
//! requests must neither starve `/health` and token-checked requests nor stay open.

use std::path::Path;
use std::time::Duration;

use http::StatusCode;
use tokio::time::Instant;
use wristband_jose::Algorithm;
use wristband_testkit::http::Client;
use wristband_testkit::process::ServiceProcess;
use wristband_testkit::slow_clients::{count_closed_by, open_half_sent};
use wristband_testkit::{keys, JwksServer, Minter};

use crate::AUDIENCE;

/// Half-sent requests held open: far more than the service's 256 file descriptors.
const HALF_SENT: usize = 1000;
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
const ANSWER_WITHIN: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_neither_starve_an_api_service_nor_stay_open() {
    let own_limit = wristband_serve::raise_fd_limit().unwrap();
    assert!(own_limit > HALF_SENT as u64 + 200);
    let key = keys::fixed(Algorithm::ES256, 10);
    let server = JwksServer::start(keys::jwks([&key])).await;
    let minter = Minter::new(key, server.issuer(), AUDIENCE);
    let binary = crate::api_service_binary();
    let binary = binary.to_string_lossy();
    let issuer = server.issuer();
    let service = ServiceProcess::spawn_with_env(
        Path::new("prlimit"),
        &[
            "--nofile=256:256",
            &binary,
            "--listen",
            "127.0.0.1:0",
            "--issuer",
            &issuer,
            "--audience",
            AUDIENCE,
        ],
        &[("WRISTBAND_HEADER_READ_TIMEOUT", "2s")],
    )
    .await;

    let flood = open_half_sent(service.addr(), HALF_SENT).await;
    let flooded = Instant::now();

    let client = Client::new();
    let health = tokio::time::timeout(ANSWER_WITHIN, client.get(&service.url("/health"), &[]))
        .await
        .expect("/health answers within 2 s while flooded");
    assert_eq!(health.status, StatusCode::OK);
    let token = minter.token("alice", None);
    let r = tokio::time::timeout(
        ANSWER_WITHIN,
        client.get_bearer(&service.url("/resource"), &token),
    )
    .await
    .expect("/resource answers within 2 s while flooded");
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["sub"], "alice");

    let held = flood.streams.len();
    let closed = count_closed_by(flood.streams, flooded + HEADER_TIMEOUT * 3).await;
    assert_eq!(
        (closed, flood.failed),
        (held, 0),
        "of {HALF_SENT} half-sent requests, {} could not connect and {} of {held} stayed open",
        flood.failed,
        held - closed
    );
    service.terminate().await;
}
