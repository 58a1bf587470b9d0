//! The gate as a relay of the revocation feed: its routes are there when the gate follows
//! the feed and `serve_feed` is set, and absent otherwise; its metrics include the relay's.

use std::time::Duration;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use wristband_gate::{router, Gate, GateOptions, Policy, PolicyHandle};
use wristband_jose::Algorithm;
use wristband_testkit::mock_auth::{CLIENT_ID, CLIENT_SECRET};
use wristband_testkit::{keys, MockAuth};
use wristband_verify::{FeedOptions, Verifier};

async fn status(app: &axum::Router, path: &str) -> (StatusCode, String) {
    let response = app
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn a_gate_following_the_feed_relays_it_unless_told_not_to() {
    let key = keys::fixed(Algorithm::ES256, 0);
    let mock = MockAuth::start(keys::jwks([&key])).await;
    let verifier = Verifier::builder(mock.issuer(), crate::AUD)
        .client_credentials(CLIENT_ID, CLIENT_SECRET)
        .revocation_feed()
        .feed_options(FeedOptions {
            startup_attempts: 1,
            request_timeout: Duration::from_secs(2),
            ..FeedOptions::default()
        })
        .build()
        .await
        .unwrap();
    let policy = || PolicyHandle::new(Policy::authenticated_everywhere());

    let gate = Gate::new(
        verifier.clone(),
        policy(),
        GateOptions::for_issuer(&mock.issuer()),
    );
    assert!(gate.relay().is_some());
    let app = router(gate);
    let (code, body) = status(&app, "/v1/revocations").await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "a reader's token is needed");
    assert!(body.contains("a bearer token is required"), "{body}");
    let (code, _) = status(&app, "/v1/revocations/stream").await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (_, metrics) = status(&app, "/metrics").await;
    assert!(
        metrics.contains("wristband_relay_subscribers 0\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("wristband_relay_refused_total 2\n"),
        "{metrics}"
    );

    let mut options = GateOptions::for_issuer(&mock.issuer());
    options.serve_feed = false;
    let gate = Gate::new(verifier, policy(), options);
    assert!(gate.relay().is_none());
    let app = router(gate);
    assert_eq!(
        status(&app, "/v1/revocations").await.0,
        StatusCode::NOT_FOUND
    );

    // Without a followed feed there is nothing to relay.
    let gate = crate::gate(&crate::minter(), crate::POLICY).await;
    assert!(gate.relay().is_none());
}
