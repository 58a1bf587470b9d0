//! The policy file is followed: a change is in force within about two seconds, and an
//! invalid file keeps the policy as it was.

use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use wristband_gate::{router, Policy};

use crate::*;

const OPEN: &str = "[[rule]]\npath = \"/\"\nrequire = \"anonymous\"\n";
const ADMIN_ONLY: &str = "[[rule]]\npath = \"/\"\nrequire = \"role:admin\"\n";

async fn status(app: &Router) -> StatusCode {
    nginx(app, "GET", "https://app.example.com/x", &[])
        .await
        .status
}

async fn wait_for(app: &Router, want: StatusCode, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        if status(app).await == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "still not {want} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_changed_file_is_followed_and_an_invalid_one_ignored() {
    let m = minter();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.toml");
    std::fs::write(&file, OPEN).unwrap();
    let gate = gate(&m, OPEN).await;
    let watcher = gate.watch_policy_file(file.clone(), OPEN.as_bytes().to_vec());
    let app = router(gate.clone());
    assert_eq!(status(&app).await, StatusCode::OK);

    std::fs::write(&file, ADMIN_ONLY).unwrap();
    let took = wait_for(&app, StatusCode::UNAUTHORIZED, Duration::from_secs(3)).await;
    assert!(took <= Duration::from_millis(2500), "{took:?}");
    assert_eq!(*gate.policy().current(), Policy::parse(ADMIN_ONLY).unwrap());

    // Invalid: logged, and the admin-only policy stays.
    std::fs::write(&file, "[[rule]]\npath = \"/\"\nrequire = \"root\"\n").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(status(&app).await, StatusCode::UNAUTHORIZED);
    let metrics = send(&app, Method::GET, "/metrics", &[], local()).await;
    let text = String::from_utf8(metrics.body).unwrap();
    assert!(
        text.contains("wristband_gate_policy_reloads_total{result=\"invalid\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("wristband_gate_policy_reloads_total{result=\"ok\"} 1\n"),
        "{text}"
    );

    // A removed file keeps the policy too; a valid one after that is taken.
    std::fs::remove_file(&file).unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(status(&app).await, StatusCode::UNAUTHORIZED);
    std::fs::write(&file, OPEN).unwrap();
    wait_for(&app, StatusCode::OK, Duration::from_secs(3)).await;
    watcher.abort();
}
