//! Key lifecycle on the verifier side: a signing key revoked by the feed (`kid` records),
//! a key removed from the JWKS, a retired key still published, and a stale JWKS copy that
//! must not bring a revoked key back.

use std::sync::Arc;
use std::time::Duration;
use wristband_jose::Clock as _;

use crate::api_service::api_service_router;
use http::StatusCode;
use wristband_jose::{Algorithm, ErrorKind, FixedClock, UnixTime};
use wristband_testkit::{keys, JwksServer, Minter, MockAuth};
use wristband_verify::{Verifier, INVALID_BODY};

use crate::feed::{builder, eventually, fast_feed, T};
use crate::{bearer, call, fast_remote, get, AUDIENCE};

fn far() -> u64 {
    wristband_jose::SystemClock.now().as_secs() + 3_600
}

/// A mock auth service publishing the ES256 keys of slots 0 and 1.
async fn two_key_mock() -> (MockAuth, Minter, Minter) {
    let k0 = keys::fixed(Algorithm::ES256, 0);
    let k1 = keys::fixed(Algorithm::ES256, 1);
    let mock = MockAuth::start(keys::jwks([&k0, &k1])).await;
    let m0 = Minter::new(k0, mock.issuer(), AUDIENCE);
    let m1 = Minter::new(k1, mock.issuer(), AUDIENCE);
    (mock, m0, m1)
}

async fn assert_refused_over_http(v: &Verifier, token: &str, what: &str) {
    let app = api_service_router(v.clone());
    let r = call(&app, get("/resource", &[("authorization", &bearer(token))])).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}");
    assert_eq!(r.body, INVALID_BODY.as_bytes(), "{what}");
    assert!(r.www().contains("error=\"invalid_token\""), "{what}");
}

async fn assert_ok_over_http(v: &Verifier, token: &str, what: &str) {
    let app = api_service_router(v.clone());
    let r = call(&app, get("/resource", &[("authorization", &bearer(token))])).await;
    assert_eq!(r.status, StatusCode::OK, "{what}");
}

#[tokio::test]
async fn kid_revoked_by_the_feed_refuses_cached_tokens_and_drops_the_key() {
    let (mock, m0, m1) = two_key_mock().await;
    let cooldown = Duration::from_secs(30);
    let clock = crate::pinned_clock();
    let v = builder(&mock)
        .remote_options(fast_remote(cooldown))
        .clock(Arc::clone(&clock) as Arc<dyn wristband_jose::Clock>)
        .revocation_feed()
        .feed_options(fast_feed())
        .build()
        .await
        .unwrap();
    let feed = v.revocation_feed().unwrap();
    eventually("stream connected", || feed.stream_connects() == 1).await;
    let (kid0, kid1) = (m0.key().kid().to_owned(), m1.key().kid().to_owned());

    let t0 = m0.token("alice", None);
    let t1 = m1.token("bob", None);
    assert_ok_over_http(&v, &t0, "before the revocation").await;
    assert_ok_over_http(&v, &t1, "other key").await;
    assert!(v.verify_cached(&t0).unwrap().is_ok(), "t0 is cached");
    assert_eq!(v.keys().len(), 2);

    // The emergency revocation arrives over the stream.
    let fetches = mock.jwks_fetches();
    mock.revoke_kid(&kid0, far());
    eventually("kid record applied", || {
        feed.records().is_kid_revoked(&kid0)
    })
    .await;

    // The cached token is refused on its next use, as is a new token under that key.
    assert_refused_over_http(&v, &t0, "cached token of the revoked key").await;
    assert_eq!(v.verify(&t0).await.unwrap_err().kind(), ErrorKind::Revoked);
    let fresh0 = m0.token("alice", None);
    assert_eq!(
        v.verify(&fresh0).await.unwrap_err().kind(),
        ErrorKind::Revoked
    );
    // The other key is unaffected, cached or not.
    assert_ok_over_http(&v, &t1, "cached token of the other key").await;
    assert_ok_over_http(&v, &m1.token("carol", None), "new token, other key").await;
    // The key left the fetched key set, without a JWKS fetch and without refetching it.
    assert!(!v.keys().contains(&kid0) && v.keys().contains(&kid1));
    assert_eq!(
        mock.jwks_fetches(),
        fetches,
        "a token naming a revoked kid causes no fetch"
    );

    // The auth service (or a stale CDN copy of its JWKS) still publishes the key. A fetch
    // (forced by an unknown kid) does not bring it back while the record lives.
    clock.advance(cooldown);
    let err = v
        .verify(&m1.with_kid("kid-that-forces-a-refetch", "u"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownKeyId);
    assert_eq!(
        mock.jwks_fetches(),
        fetches + 1,
        "the JWKS was fetched again"
    );
    assert!(!v.keys().contains(&kid0), "the revoked key stays out");
    assert!(v.keys().contains(&kid1));
    assert_refused_over_http(&v, &t0, "after the stale JWKS").await;
    assert_refused_over_http(
        &v,
        &m0.token("dave", None),
        "new token after the stale JWKS",
    )
    .await;
    assert_ok_over_http(&v, &t1, "other key after the stale JWKS").await;
}

#[tokio::test]
async fn kid_in_the_snapshot_is_dropped_at_start_up() {
    let (mock, m0, m1) = two_key_mock().await;
    mock.revoke_kid(m0.key().kid(), far());
    let v = builder(&mock)
        .revocation_feed()
        .feed_options(fast_feed())
        .build()
        .await
        .unwrap();
    // The key set was fetched before the snapshot was read; the snapshot removed the key.
    assert!(!v.keys().contains(m0.key().kid()));
    assert_eq!(
        v.verify(&m0.token("u", None)).await.unwrap_err().kind(),
        ErrorKind::Revoked
    );
    assert!(v.verify(&m1.token("u", None)).await.is_ok());
}

#[tokio::test]
async fn kid_revocation_with_static_keys_is_checked_on_cache_hits() {
    // Keys from a file or given in code never change: the per-request kid check alone
    // must refuse the cached token.
    let (mock, m0, m1) = two_key_mock().await;
    let v = builder(&mock)
        .keys(keys::key_set([m0.key(), m1.key()]))
        .revocation_feed()
        .feed_options(fast_feed())
        .build()
        .await
        .unwrap();
    let feed = v.revocation_feed().unwrap();
    let t0 = m0.token("u", None);
    let t1 = m1.token("u", None);
    assert!(v.verify(&t0).await.is_ok() && v.verify(&t1).await.is_ok());
    mock.revoke_kid(m0.key().kid(), far());
    eventually("kid record applied", || {
        feed.records().is_kid_revoked(m0.key().kid())
    })
    .await;
    let hit = v.verify_cached(&t0).expect("still in the cache");
    assert_eq!(hit.unwrap_err().kind(), ErrorKind::Revoked);
    assert!(v.verify_cached(&t1).unwrap().is_ok());
    assert_refused_over_http(&v, &t0, "static key revoked").await;
}

#[tokio::test]
async fn expired_kid_record_no_longer_refuses() {
    // A record lives until its `expires_at`: once pruned, the key is usable again (the
    // auth service sets `expires_at` past the last token the key could have signed).
    let (mock, m0, _) = two_key_mock().await;
    let clock = Arc::new(FixedClock::new(UnixTime::from_secs(T)));
    let v = builder(&mock)
        .keys(keys::key_set([m0.key()]))
        .clock(clock.clone())
        .revocation_feed()
        .feed_options(fast_feed())
        .build()
        .await
        .unwrap();
    let feed = v.revocation_feed().unwrap();
    mock.revoke_kid(m0.key().kid(), T + 100);
    eventually("kid record applied", || {
        feed.records().is_kid_revoked(m0.key().kid())
    })
    .await;
    let t = m0.sign(&m0.claims_at("u", UnixTime::from_secs(T)));
    assert_eq!(v.verify(&t).await.unwrap_err().kind(), ErrorKind::Revoked);
    clock.set(UnixTime::from_secs(T + 99));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        feed.records().is_kid_revoked(m0.key().kid()),
        "not yet expired"
    );
    clock.set(UnixTime::from_secs(T + 100));
    eventually("record pruned", || feed.records().is_empty()).await;
    assert!(v.verify(&t).await.is_ok());
}

#[tokio::test]
async fn key_removed_from_the_jwks_refuses_cached_tokens_retired_keys_still_verify() {
    let old = keys::fixed(Algorithm::ES256, 3);
    let retired = keys::fixed(Algorithm::ES256, 4);
    let server = JwksServer::start(keys::jwks([&old, &retired])).await;
    let cooldown = Duration::from_millis(200);
    let v = Verifier::builder(server.issuer(), AUDIENCE)
        .remote_options(fast_remote(cooldown))
        .build()
        .await
        .unwrap();
    let m_old = Minter::new(old, server.issuer(), AUDIENCE);
    let m_retired = Minter::new(retired, server.issuer(), AUDIENCE);
    let t_old = m_old.token("u", None);
    let t_retired = m_retired.token("u", None);
    assert_ok_over_http(&v, &t_old, "old key").await;
    assert_ok_over_http(&v, &t_retired, "retired key").await;
    assert!(v.verify_cached(&t_old).unwrap().is_ok());
    assert!(v.verify_cached(&t_retired).unwrap().is_ok());

    // Rotation: a new current key is published; the retired key stays published, the old
    // one is removed. A token under the new kid causes the unknown-kid refetch.
    let next = keys::fixed(Algorithm::ES256, 5);
    server.set_jwks(keys::jwks([m_retired.key(), &next]));
    let m_next = Minter::new(next, server.issuer(), AUDIENCE);
    let before = server.jwks_fetches();
    assert_ok_over_http(&v, &m_next.token("u", None), "new key").await;
    assert_eq!(
        server.jwks_fetches(),
        before + 1,
        "one refetch for the new kid"
    );

    // The refresh dropped the old kid: its cached token is a miss now, and refused.
    assert!(
        v.verify_cached(&t_old).is_none(),
        "no longer served from the cache"
    );
    assert_eq!(
        v.verify(&t_old).await.unwrap_err().kind(),
        ErrorKind::UnknownKeyId
    );
    assert_refused_over_http(&v, &t_old, "cached token of the removed key").await;
    // The retired-but-published key keeps verifying, cached again after one full check.
    assert_ok_over_http(&v, &t_retired, "retired but still published").await;
    assert!(v.verify_cached(&t_retired).unwrap().is_ok());
    assert_ok_over_http(&v, &m_retired.token("u2", None), "new token, retired key").await;
    assert_eq!(
        server.jwks_fetches(),
        before + 1,
        "known kids cause no fetch"
    );
}
