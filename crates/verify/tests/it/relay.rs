//! A relay of the revocation feed (`wristband_verify::relay`) in front of a mock auth
//! service: its pages are the upstream's, its stream resumes after `Last-Event-ID`, its
//! readers are authorized locally as the auth service authorizes them, and a stream ends
//! when its reader's token is revoked or expires.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use wristband_jose::{Algorithm, Clock, FixedClock, SystemClock, UnixTime};
use wristband_testkit::mock_auth::{CLIENT_ID, CLIENT_SECRET};
use wristband_testkit::{keys, Minter, MockAuth};
use wristband_verify::relay::{Relay, RelayError, PAGE};
use wristband_verify::{FeedOptions, StalenessPolicy, Verifier};

use crate::feed::{eventually, fast_feed, feed_verifier, mock};
use crate::{call, get};

fn far() -> u64 {
    SystemClock.now().as_secs() + 3_600
}

/// A minter of feed readers' tokens: the relay's issuer and key, the feed's audience.
fn readers(mock: &MockAuth) -> Minter {
    Minter::new(
        keys::fixed(Algorithm::ES256, 0),
        mock.issuer(),
        format!("{}/v1/revocations", mock.issuer()),
    )
}

/// A reader's token: the feed audience and the scope `revocations:read`.
fn reader_token(m: &Minter) -> String {
    m.sign(&m.claims("rs-client").with_scope("revocations:read"))
}

async fn relay_of(mock: &MockAuth) -> (Verifier, Relay, Router) {
    let verifier = feed_verifier(mock, None, fast_feed()).await;
    let relay = Relay::new(&verifier).unwrap();
    let router = relay.router();
    (verifier, relay, router)
}

/// The upstream's page, read with a client-credentials token of the mock.
async fn upstream_page(mock: &MockAuth, after: i64) -> Value {
    let client = wristband_testkit::http::Client::new();
    let basic = format!(
        "Basic {}",
        base64_encode(&format!("{}:{}", form(CLIENT_ID), form(CLIENT_SECRET)))
    );
    let r = client
        .send(
            http::Method::POST,
            &format!("{}/oauth2/token", mock.issuer()),
            &[
                ("authorization", &basic),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            b"grant_type=client_credentials",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    let page = client
        .get_bearer(
            &format!("{}/v1/revocations?after={after}", mock.issuer()),
            &token,
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    page.json()
}

fn form(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn base64_encode(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn with_bearer(path: &str, token: &str, extra: &[(&str, &str)]) -> Request<Body> {
    let auth = format!("Bearer {token}");
    let mut headers = vec![("authorization", auth.as_str())];
    headers.extend_from_slice(extra);
    get(path, &headers)
}

#[tokio::test]
async fn pages_are_the_upstreams_with_the_same_cursors() {
    let (mock, _) = mock().await;
    let exp = far();
    mock.revoke_jti("jti-1", exp);
    mock.push("sid", "session-2", None, exp);
    mock.push("sub", "user-\"3\"", Some(exp - 7_000), exp);
    mock.revoke_jti("jti-4", exp);
    let (verifier, _relay, app) = relay_of(&mock).await;
    assert_eq!(
        verifier.revocation_feed().unwrap().logged_ids(),
        [1, 2, 3, 4]
    );
    let token = reader_token(&readers(&mock));
    for after in [0, 1, 3, 4, 99] {
        let r = call(
            &app,
            with_bearer(&format!("/v1/revocations?after={after}"), &token, &[]),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(r.json(), upstream_page(&mock, after).await, "after={after}");
    }
    // Without a cursor: from the start.
    let r = call(&app, with_bearer("/v1/revocations", &token, &[])).await;
    assert_eq!(r.json()["cursor"], 4);
    // A malformed cursor: 400, as upstream.
    let r = call(&app, with_bearer("/v1/revocations?after=x", &token, &[])).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json(),
        json!({"error": "invalid_request", "error_description": "invalid cursor"})
    );
}

#[tokio::test]
async fn pages_hold_500_records_with_has_more() {
    let (mock, _) = mock().await;
    let exp = far();
    for i in 0..=PAGE {
        mock.revoke_jti(&format!("jti-{i}"), exp);
    }
    let (verifier, relay, app) = relay_of(&mock).await;
    assert_eq!(
        verifier.revocation_feed().unwrap().logged_ids().len(),
        PAGE + 1
    );
    let token = reader_token(&readers(&mock));
    let first = call(&app, with_bearer("/v1/revocations?after=0", &token, &[])).await;
    let first = first.json();
    assert_eq!(first["revocations"].as_array().unwrap().len(), PAGE);
    assert_eq!(first["has_more"], true);
    assert_eq!(first["cursor"], PAGE as i64);
    assert_eq!(first, upstream_page(&mock, 0).await);
    let second = call(
        &app,
        with_bearer(&format!("/v1/revocations?after={PAGE}"), &token, &[]),
    )
    .await
    .json();
    assert_eq!(second["has_more"], false);
    assert_eq!(second, upstream_page(&mock, PAGE as i64).await);
    assert_eq!(relay.records_served(), PAGE as u64 + 1);
}

/// Reads the stream's body until `done` says the text so far is enough (5 s at most).
async fn read_until(body: &mut Body, text: &mut String, done: impl Fn(&str) -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !done(text) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    text.push_str(std::str::from_utf8(&data).unwrap());
                }
            }
            Ok(_) => return false,
            Err(_) => panic!("timed out; stream so far:\n{text}"),
        }
    }
    true
}

/// True when the stream ended (within 5 s).
async fn ends(body: &mut Body) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, body.frame()).await {
            Ok(None) => return true,
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_))) => return true,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn the_stream_resumes_after_last_event_id_and_follows_new_records() {
    let (mock, _) = mock().await;
    let exp = far();
    for i in 1..=3 {
        mock.revoke_jti(&format!("jti-{i}"), exp);
    }
    let (verifier, relay, app) = relay_of(&mock).await;
    let token = reader_token(&readers(&mock));
    let response = app
        .clone()
        .oneshot(with_bearer(
            "/v1/revocations/stream",
            &token,
            &[("last-event-id", "1")],
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    let mut text = String::new();
    assert!(read_until(&mut body, &mut text, |t| t.contains("id: 3\n")).await);
    assert_eq!(
        text,
        format!(
            "id: 2\nevent: revocation\ndata: {{\"id\":2,\"kind\":\"jti\",\"value\":\"jti-2\",\"expires_at\":{exp}}}\n\n\
             id: 3\nevent: revocation\ndata: {{\"id\":3,\"kind\":\"jti\",\"value\":\"jti-3\",\"expires_at\":{exp}}}\n\n"
        ),
        "records after Last-Event-ID only, as the auth service writes them"
    );
    assert_eq!(relay.subscribers(), 1);
    // A new upstream record reaches the open stream.
    mock.push("sid", "session-4", None, exp);
    let mut more = String::new();
    assert!(read_until(&mut body, &mut more, |t| t.ends_with("\n\n")).await);
    assert!(more.starts_with("id: 4\nevent: revocation\n"), "{more}");
    let metrics = verifier.revocation_feed().unwrap().prometheus_text();
    assert!(
        metrics.contains("wristband_relay_subscribers 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("wristband_relay_records_served_total 3\n"),
        "{metrics}"
    );
    // Stopping the relay ends its streams.
    relay.stop();
    assert!(ends(&mut body).await);
    eventually("the subscriber is counted out", || relay.subscribers() == 0).await;
}

#[tokio::test]
async fn readers_are_authorized_locally_as_the_auth_service_does() {
    let (mock, user_minter) = mock().await;
    let (_verifier, relay, app) = relay_of(&mock).await;
    let feed = readers(&mock);
    assert_eq!(
        relay.audience(),
        format!("{}/v1/revocations", mock.issuer())
    );
    let unauthorized =
        json!({"error": "unauthorized", "error_description": "a bearer token is required"});
    let invalid = json!({"error": "invalid_token", "error_description": "token invalid"});
    let expired = json!({"error": "invalid_token", "error_description": "token expired"});
    let forbidden = json!({"error": "insufficient_scope", "error_description": "the token does not allow this"});
    let challenge = |e: &str| format!("Bearer realm=\"wristband\", error=\"{e}\"");

    let no_scope = feed.sign(&feed.claims("rs-client"));
    let other_scope = feed.sign(&feed.claims("rs-client").with_scope("read revocations"));
    let user = user_minter.token("alice", Some("admin"));
    let mut billing = feed.claims("rs-client").with_scope("revocations:read");
    billing.aud = "api://billing".into();
    let billing = feed.sign(&billing);
    let foreign = Minter::new(
        keys::fixed(Algorithm::ES256, 9),
        mock.issuer(),
        format!("{}/v1/revocations", mock.issuer()),
    );
    let foreign = reader_token(&foreign);
    let mut old = feed
        .claims_at(
            "rs-client",
            UnixTime::from_secs(SystemClock.now().as_secs() - 7_200),
        )
        .with_scope("revocations:read");
    old.exp = UnixTime::from_secs(SystemClock.now().as_secs() - 3_600);
    let old = feed.sign(&old);

    for path in ["/v1/revocations?after=0", "/v1/revocations/stream"] {
        let r = call(&app, get(path, &[])).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(r.www(), "Bearer realm=\"wristband\"");
        assert_eq!(r.json(), unauthorized);
        let cases = [
            ("a user's token", &user, StatusCode::FORBIDDEN, &forbidden),
            ("no scope", &no_scope, StatusCode::FORBIDDEN, &forbidden),
            (
                "another scope",
                &other_scope,
                StatusCode::FORBIDDEN,
                &forbidden,
            ),
            (
                "another audience",
                &billing,
                StatusCode::UNAUTHORIZED,
                &invalid,
            ),
            (
                "a foreign key",
                &foreign,
                StatusCode::UNAUTHORIZED,
                &invalid,
            ),
            ("expired", &old, StatusCode::UNAUTHORIZED, &expired),
        ];
        for (what, token, status, body) in cases {
            let r = call(&app, with_bearer(path, token, &[])).await;
            assert_eq!(r.status, status, "{path}: {what}");
            assert_eq!(&r.json(), body, "{path}: {what}");
            let code = body["error"].as_str().unwrap();
            assert_eq!(r.www(), challenge(code), "{path}: {what}");
        }
    }
    let ok = call(
        &app,
        with_bearer("/v1/revocations", &reader_token(&feed), &[]),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
    let metrics = relay.prometheus_text();
    assert!(
        metrics.contains("wristband_relay_refused_total 14\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_stream_ends_when_its_readers_token_is_revoked_or_expires() {
    let (mock, _) = mock().await;
    let (_verifier, relay, app) = relay_of(&mock).await;
    let feed = readers(&mock);
    let claims = feed.claims("rs-client").with_scope("revocations:read");
    let token = feed.sign(&claims);
    let response = app
        .clone()
        .oneshot(with_bearer("/v1/revocations/stream", &token, &[]))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    // Another reader's stream goes on.
    let other = app
        .clone()
        .oneshot(with_bearer(
            "/v1/revocations/stream",
            &reader_token(&feed),
            &[],
        ))
        .await
        .unwrap();
    let mut other = other.into_body();
    eventually("two subscribers", || relay.subscribers() == 2).await;
    mock.revoke_jti(&claims.jti, far());
    assert!(ends(&mut body).await, "the revoked reader's stream ends");
    let mut text = String::new();
    assert!(read_until(&mut other, &mut text, |t| t.contains("id: 1\n")).await);
    // The revoked token is refused from then on.
    let r = call(&app, with_bearer("/v1/revocations", &token, &[])).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // A token that expires in two seconds: its stream ends then.
    let now = SystemClock.now().as_secs();
    let mut short = feed
        .claims_at("rs-client", UnixTime::from_secs(now))
        .with_scope("revocations:read");
    short.exp = UnixTime::from_secs(now + 2);
    let response = app
        .clone()
        .oneshot(with_bearer(
            "/v1/revocations/stream",
            &feed.sign(&short),
            &[],
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    assert!(ends(&mut body).await, "the expired reader's stream ends");
    let metrics = relay.prometheus_text();
    assert!(
        metrics.contains("wristband_relay_streams_ended_by_reader_total 2\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_stale_relay_answers_503_under_fail_closed_and_serves_under_fail_open() {
    for policy in [StalenessPolicy::FailClosed, StalenessPolicy::FailOpen] {
        let (mock, _) = mock().await;
        // No heartbeat moves the pinned clock's last sync forward.
        mock.set_heartbeat(Duration::from_secs(3_600));
        mock.revoke_jti("jti-1", far());
        // Minted before the clock is pinned, so that its `iat` is never in the clock's
        // future.
        let token = reader_token(&readers(&mock));
        let clock = Arc::new(FixedClock::new(SystemClock.now()));
        let options = FeedOptions {
            policy,
            max_staleness: Duration::from_secs(60),
            ..fast_feed()
        };
        let verifier = feed_verifier(&mock, Some(clock.clone() as Arc<dyn Clock>), options).await;
        let app = Relay::new(&verifier).unwrap().router();
        let r = call(&app, with_bearer("/v1/revocations", &token, &[])).await;
        assert_eq!(r.status, StatusCode::OK);
        clock.advance(Duration::from_secs(120));
        assert!(verifier.revocation_feed().unwrap().is_stale());
        for path in ["/v1/revocations", "/v1/revocations/stream"] {
            let response = app
                .clone()
                .oneshot(with_bearer(path, &token, &[]))
                .await
                .unwrap();
            if policy == StalenessPolicy::FailClosed {
                assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
                assert_eq!(response.headers()["retry-after"], "5");
                let body = response.into_body().collect().await.unwrap().to_bytes();
                let body: Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(body["error"], "temporarily_unavailable");
            } else {
                // Fail-open: served as if in sync (a stream's body never ends by itself).
                assert_eq!(response.status(), StatusCode::OK, "{path}");
            }
        }
    }
}

#[tokio::test]
async fn only_a_verifier_that_follows_the_feed_can_relay_it() {
    let m = crate::minter();
    let verifier = crate::static_verifier(&m, None).await;
    assert!(matches!(Relay::new(&verifier), Err(RelayError::NoFeed)));
}

#[tokio::test]
async fn a_relay_that_loses_its_upstream_keeps_serving_and_resumes_without_loss() {
    let (mut mock, _) = mock().await;
    let exp = far();
    mock.revoke_jti("jti-1", exp);
    mock.revoke_jti("jti-2", exp);
    let (verifier, _relay, app) = relay_of(&mock).await;
    let token = reader_token(&readers(&mock));
    let response = app
        .clone()
        .oneshot(with_bearer(
            "/v1/revocations/stream",
            &token,
            &[("last-event-id", "0")],
        ))
        .await
        .unwrap();
    let mut body = response.into_body();
    let mut text = String::new();
    assert!(read_until(&mut body, &mut text, |t| t.contains("id: 2\n")).await);

    // Upstream down: the relay still serves what it has, and its stream stays open.
    mock.stop().await;
    let r = call(&app, with_bearer("/v1/revocations?after=0", &token, &[])).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["cursor"], 2);
    // Records made meanwhile arrive once the upstream is back, after the relay's cursor.
    for i in 3..=5 {
        mock.revoke_jti(&format!("jti-{i}"), exp);
    }
    mock.restart().await;
    assert!(read_until(&mut body, &mut text, |t| t.contains("id: 5\n")).await);
    let ids: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .collect();
    assert_eq!(ids, ["1", "2", "3", "4", "5"], "each record once, in order");
    assert_eq!(
        verifier.revocation_feed().unwrap().logged_ids(),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(verifier.revocation_feed().unwrap().records_applied(), 5);
    assert!(
        mock.last_event_ids()
            .iter()
            .any(|id| id.as_deref() == Some("2")),
        "the relay resumed from its own cursor: {:?}",
        mock.last_event_ids()
    );
}
