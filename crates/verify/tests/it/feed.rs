//! The revocation feed against a mock auth service: snapshot, stream, resume, backoff,
//! polling fallback, sub cut-offs, pruning, staleness policies and token renewal.

use std::sync::Arc;
use std::time::Duration;

use crate::api_service::api_service_router;
use http::StatusCode;
use wristband_jose::{Algorithm, Clock, ErrorKind, FixedClock, UnixTime};
use wristband_testkit::mock_auth::{CLIENT_ID, CLIENT_SECRET};
use wristband_testkit::{keys, Minter, MockAuth};
use wristband_verify::{
    BuildError, FeedOptions, RevocationView, StalenessPolicy, Verifier, VerifierBuilder,
    INVALID_BODY,
};

use crate::{bearer, call, fast_remote, get, AUDIENCE};

/// A fixed "now" for tests that pin the clock.
pub(crate) const T: u64 = 1_900_000_000;

pub(crate) fn fast_feed() -> FeedOptions {
    FeedOptions {
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(400),
        fallback_after: 3,
        poll_interval: Duration::from_millis(100),
        idle_timeout: Duration::from_secs(5),
        housekeeping_interval: Duration::from_millis(50),
        startup_attempts: 1,
        request_timeout: Duration::from_secs(2),
        ..FeedOptions::default()
    }
}

pub(crate) async fn mock() -> (MockAuth, Minter) {
    let key = keys::fixed(Algorithm::ES256, 0);
    let mock = MockAuth::start(keys::jwks([&key])).await;
    let minter = Minter::new(key, mock.issuer(), AUDIENCE);
    (mock, minter)
}

pub(crate) fn builder(mock: &MockAuth) -> VerifierBuilder {
    Verifier::builder(mock.issuer(), AUDIENCE)
        .remote_options(fast_remote(Duration::from_secs(30)))
        .client_credentials(CLIENT_ID, CLIENT_SECRET)
}

pub(crate) async fn feed_verifier(
    mock: &MockAuth,
    clock: Option<Arc<dyn Clock>>,
    options: FeedOptions,
) -> Verifier {
    let mut b = builder(mock).revocation_feed().feed_options(options);
    if let Some(c) = clock {
        b = b.clock(c);
    }
    b.build().await.unwrap()
}

/// Waits (real time) until `cond` holds, or fails after 5 s.
pub(crate) async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn far() -> u64 {
    wristband_jose::SystemClock.now().as_secs() + 3_600
}

#[tokio::test]
async fn snapshot_pages_then_stream_events_revoke_cached_tokens() {
    let (mock, m) = mock().await;
    mock.set_page_size(2);
    let revoked = m.claims("alice");
    mock.revoke_jti(&revoked.jti, far());
    mock.push("sid", "session-9", None, far());
    mock.push("jti", "other-1", None, far());
    mock.push("jti", "other-2", None, far());
    mock.push("jti", "other-3", None, far());

    let v = feed_verifier(&mock, None, fast_feed()).await;
    let feed = v.revocation_feed().unwrap();
    assert_eq!(
        feed.records().len(),
        5,
        "the whole snapshot, over three pages"
    );
    assert_eq!(feed.cursor(), 5);
    assert!(mock.snapshot_requests() >= 3);
    assert_eq!(mock.token_requests(), 1, "one client token for all of it");
    let e = v.verify(&m.sign(&revoked)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Revoked);
    let in_session = m.sign(&m.claims("bob").with_sid("session-9"));
    assert_eq!(
        v.verify(&in_session).await.unwrap_err().kind(),
        ErrorKind::Revoked
    );

    // The stream resumes after the snapshot's cursor.
    eventually("stream connected", || feed.stream_connects() == 1).await;
    assert_eq!(mock.last_event_ids(), vec![Some("5".to_owned())]);

    // A token verified and cached, then revoked by a stream event.
    let app = api_service_router(v.clone());
    let claims = m.claims("carol");
    let token = m.sign(&claims);
    let r = call(
        &app,
        get("/resource", &[("authorization", &bearer(&token))]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(v.verify_cached(&token).unwrap().is_ok(), "cached");
    mock.revoke_jti(&claims.jti, far());
    eventually("event applied", || feed.cursor() == 6).await;
    let r = call(
        &app,
        get("/resource", &[("authorization", &bearer(&token))]),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body, INVALID_BODY.as_bytes());
    assert_eq!(feed.stream_failures(), 0);
}

#[tokio::test]
async fn a_dropped_stream_resumes_from_the_last_event_without_missing_any() {
    let (mock, m) = mock().await;
    // No polling fallback here: the stream alone must deliver what was missed.
    let options = FeedOptions {
        fallback_after: 100,
        ..fast_feed()
    };
    let v = feed_verifier(&mock, None, options).await;
    let feed = v.revocation_feed().unwrap();
    eventually("stream connected", || feed.stream_connects() == 1).await;
    let first = m.claims("u1");
    mock.revoke_jti(&first.jti, far());
    eventually("first event", || feed.cursor() == 1).await;

    // Drop the stream; revocations made while it is down must all arrive.
    mock.set_stream_status(Some(503));
    mock.disconnect_streams();
    eventually("stream failure noticed", || feed.stream_failures() >= 1).await;
    let missed: Vec<_> = (0..3).map(|i| m.claims(&format!("m{i}"))).collect();
    for c in &missed {
        mock.revoke_jti(&c.jti, far());
    }
    mock.set_stream_status(None);
    eventually("reconnected", || feed.stream_connects() >= 2).await;
    eventually("caught up", || feed.cursor() == 4).await;
    for c in std::iter::once(&first).chain(&missed) {
        assert!(feed.is_revoked(c), "{} missed", c.sub);
    }
    assert_eq!(feed.records().len(), 4);
    // Every reconnect named the last applied id.
    let ids = mock.last_event_ids();
    assert_eq!(ids[0].as_deref(), Some("0"));
    assert!(
        ids[1..].iter().all(|id| id.as_deref() == Some("1")),
        "{ids:?}"
    );

    // Events after the reconnect come through the stream again.
    let after = m.claims("late");
    mock.revoke_jti(&after.jti, far());
    eventually("late event", || feed.is_revoked(&after)).await;
}

#[tokio::test]
async fn reconnects_back_off_instead_of_spinning() {
    let (mock, _m) = mock().await;
    let options = FeedOptions {
        fallback_after: 100,
        backoff_initial: Duration::from_millis(10),
        backoff_max: Duration::from_millis(80),
        ..fast_feed()
    };
    let v = feed_verifier(&mock, None, options).await;
    let feed = v.revocation_feed().unwrap();
    eventually("stream connected", || feed.stream_connects() == 1).await;
    mock.set_stream_status(Some(503));
    let before = mock.stream_requests();
    mock.disconnect_streams();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let attempts = mock.stream_requests() - before;
    // Delays of ~10, 20, 40, 80, 80, ... ms (halved at worst by jitter): a few attempts
    // in 300 ms, not hundreds.
    assert!((3..=16).contains(&attempts), "{attempts} attempts");
    mock.set_stream_status(None);
    eventually("reconnected", || feed.stream_connects() == 2).await;
}

#[tokio::test]
async fn polls_the_snapshot_while_the_stream_keeps_failing() {
    let (mock, m) = mock().await;
    mock.set_stream_status(Some(502));
    let options = FeedOptions {
        fallback_after: 2,
        ..fast_feed()
    };
    let v = feed_verifier(&mock, None, options).await;
    let feed = v.revocation_feed().unwrap();
    let c = m.claims("polled");
    let token = m.sign(&c);
    assert!(v.verify(&token).await.is_ok());
    mock.revoke_jti(&c.jti, far());
    eventually("revoked by polling", || feed.is_revoked(&c)).await;
    assert_eq!(
        v.verify(&token).await.unwrap_err().kind(),
        ErrorKind::Revoked
    );
    assert_eq!(feed.stream_connects(), 0);
    assert!(feed.polls() >= 2, "start-up plus at least one poll");
    assert!(feed.staleness() <= Duration::from_secs(1));
}

#[tokio::test]
async fn subject_cutoff_revokes_tokens_issued_at_or_before_it() {
    let (mock, m) = mock().await;
    mock.push("sub", "dave", Some(T), T + 3_600);
    let clock = Arc::new(FixedClock::new(UnixTime::from_secs(T + 5)));
    let v = feed_verifier(&mock, Some(clock), fast_feed()).await;
    let at = |t: u64| m.sign(&m.claims_at("dave", UnixTime::from_secs(t)));
    for t in [T - 100, T] {
        assert_eq!(
            v.verify(&at(t)).await.unwrap_err().kind(),
            ErrorKind::Revoked,
            "iat {t}"
        );
    }
    assert!(
        v.verify(&at(T + 1)).await.is_ok(),
        "issued after the cut-off"
    );
    let other = m.sign(&m.claims_at("erin", UnixTime::from_secs(T - 100)));
    assert!(v.verify(&other).await.is_ok(), "another subject");
}

#[tokio::test]
async fn expired_records_are_pruned() {
    let (mock, _m) = mock().await;
    mock.push("jti", "short", None, T + 100);
    mock.push("sid", "long", None, T + 1_000);
    mock.push("jti", "already-gone", None, T - 1);
    let clock = Arc::new(FixedClock::new(UnixTime::from_secs(T)));
    let v = feed_verifier(&mock, Some(clock.clone()), fast_feed()).await;
    let feed = v.revocation_feed().unwrap();
    assert_eq!(feed.records().len(), 2, "an expired record is never held");
    clock.advance(Duration::from_secs(200));
    eventually("pruned", || feed.records().len() == 1).await;
    clock.advance(Duration::from_secs(1_000));
    eventually("all pruned", || feed.records().is_empty()).await;
}

/// A verifier on a pinned clock whose view goes stale: `max_staleness` 60 s, then the
/// clock moves 70 s with no heartbeat (the mock's come every 15 s of real time).
async fn stale_setup(
    policy: StalenessPolicy,
) -> (MockAuth, Minter, Verifier, Arc<FixedClock>, String) {
    let (mock, m) = mock().await;
    let clock = Arc::new(FixedClock::new(UnixTime::from_secs(T)));
    let v = builder(&mock)
        .revocation_feed()
        .feed_options(fast_feed())
        .staleness_policy(policy)
        .max_staleness(Duration::from_secs(60))
        .clock(clock.clone())
        .build()
        .await
        .unwrap();
    let feed = v.revocation_feed().unwrap();
    eventually("stream connected", || feed.stream_connects() == 1).await;
    let old = m.sign(&m.claims_at("frank", UnixTime::from_secs(T - 10)));
    assert!(v.verify(&old).await.is_ok(), "in sync: accepted");
    clock.advance(Duration::from_secs(70));
    assert_eq!(feed.staleness(), Duration::from_secs(70));
    assert!(feed.is_stale());
    (mock, m, v, clock, old)
}

#[tokio::test]
async fn fail_open_keeps_accepting_while_stale() {
    let (_mock, _m, v, _clock, old) = stale_setup(StalenessPolicy::FailOpen).await;
    assert!(v.verify(&old).await.is_ok());
    let app = api_service_router(v.clone());
    let r = call(&app, get("/resource", &[("authorization", &bearer(&old))])).await;
    assert_eq!(r.status, StatusCode::OK);
    let metrics = call(&app, get("/metrics", &[])).await;
    let text = String::from_utf8(metrics.body).unwrap();
    assert!(
        text.contains("\nwristband_verifier_revocation_staleness_seconds 70\n"),
        "{text}"
    );
}

#[tokio::test]
async fn fail_closed_refuses_tokens_issued_before_the_last_sync() {
    let (mock, m, v, clock, old) = stale_setup(StalenessPolicy::FailClosed).await;
    let feed = v.revocation_feed().unwrap();
    let app = api_service_router(v.clone());
    let r = call(&app, get("/resource", &[("authorization", &bearer(&old))])).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "cached, but stale");
    assert_eq!(r.body, INVALID_BODY.as_bytes());
    assert_eq!(v.verify(&old).await.unwrap_err().kind(), ErrorKind::Revoked);
    // A token issued since the last sync (a fresh login) is accepted.
    let fresh = m.sign(&m.claims_at("frank", clock.now()));
    assert!(v.verify(&fresh).await.is_ok());
    let at_sync = m.sign(&m.claims_at("frank", UnixTime::from_secs(T)));
    assert!(
        v.verify(&at_sync).await.is_ok(),
        "iat equal to the last sync"
    );

    // Back in sync (the stream reconnects and reads the snapshot tail): accepted again.
    mock.disconnect_streams();
    eventually("resynced", || !feed.is_stale()).await;
    assert_eq!(feed.last_sync(), clock.now());
    assert!(v.verify(&old).await.is_ok());
}

#[tokio::test]
async fn client_token_is_renewed_before_it_expires() {
    let (mock, _m) = mock().await;
    mock.set_token_ttl(2);
    mock.set_stream_status(Some(503));
    let options = FeedOptions {
        fallback_after: 1,
        ..fast_feed()
    };
    // The client token's lifetime is counted on the verifier's clock, moved by hand here;
    // the mock refuses a token it issued more than 2 s (of real time) ago.
    let clock = crate::pinned_clock();
    let v = feed_verifier(&mock, Some(Arc::clone(&clock) as Arc<dyn Clock>), options).await;
    let feed = v.revocation_feed().unwrap();
    eventually("polling", || feed.polls() >= 3).await;
    assert_eq!(mock.feed_bearers().len(), 1, "one token while it is fresh");
    // Three quarters of the 2 s lifetime later, the next poll carries a new token.
    clock.advance(Duration::from_millis(1_600));
    eventually("renewed", || mock.feed_bearers().len() == 2).await;
    clock.advance(Duration::from_millis(1_600));
    eventually("renewed again", || mock.feed_bearers().len() == 3).await;
    let polls = feed.polls();
    eventually("polling on", || feed.polls() >= polls + 3).await;
    assert_eq!(mock.feed_bearers().len(), 3, "{:?}", mock.feed_bearers());
    assert_eq!(
        mock.unauthorized_requests(),
        0,
        "never presented an expired token"
    );
    assert!(
        mock.token_requests() <= 4,
        "{} token requests",
        mock.token_requests()
    );
}

#[tokio::test]
async fn start_up_fails_when_the_snapshot_cannot_be_read() {
    let (mock, _m) = mock().await;
    mock.set_snapshot_status(Some(500));
    let e = builder(&mock)
        .revocation_feed()
        .feed_options(fast_feed())
        .build()
        .await
        .unwrap_err();
    assert!(matches!(e, BuildError::Revocations(_)), "{e:?}");
    let wrong = Verifier::builder(mock.issuer(), AUDIENCE)
        .remote_options(fast_remote(Duration::from_secs(30)))
        .client_credentials(CLIENT_ID, "wrong secret")
        .revocation_feed()
        .feed_options(fast_feed())
        .build()
        .await;
    assert!(matches!(wrong, Err(BuildError::Revocations(_))));
}
