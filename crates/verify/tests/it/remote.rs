//! Remote key sets against a loopback JWKS server: discovery, rotation, the unknown-kid
//! cooldown (E5, B6), and fail-safe behaviour on JWKS outages (H7) and oversized
//! documents (E4).

use std::sync::Arc;
use std::time::Duration;

use wristband_jose::{Algorithm, ErrorKind};
use wristband_testkit::{keys, JwksServer, Minter, Mode};
use wristband_verify::{BuildError, FetchError, Verifier};

use crate::{fast_remote, pinned_clock, remote_verifier, remote_verifier_at, AUDIENCE};

async fn server_with(slots: &[usize]) -> (JwksServer, Vec<Minter>) {
    let keys: Vec<_> = slots
        .iter()
        .map(|&s| keys::fixed(Algorithm::ES256, s))
        .collect();
    let server = JwksServer::start(keys::jwks(&keys)).await;
    let minters = keys
        .into_iter()
        .map(|k| Minter::new(k, server.issuer(), AUDIENCE))
        .collect();
    (server, minters)
}

fn random_kid(i: usize) -> String {
    let mut b = [0u8; 12];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    format!("{i}-{}", wristband_jose::b64::encode(b))
}

#[tokio::test]
async fn discovery_and_explicit_jwks_url() {
    let (server, m) = server_with(&[1]).await;
    let verifier = remote_verifier(&server, Duration::from_secs(30)).await;
    assert_eq!(server.metadata_fetches(), 1);
    assert_eq!(server.jwks_fetches(), 1);
    assert_eq!(verifier.jwks_url().unwrap().as_str(), server.jwks_url());
    assert!(verifier.verify(&m[0].token("u", None)).await.is_ok());

    let direct = Verifier::builder(server.issuer(), AUDIENCE)
        .jwks_url(server.jwks_url())
        .build()
        .await
        .unwrap();
    assert!(direct.verify(&m[0].token("u", None)).await.is_ok());
    assert_eq!(server.metadata_fetches(), 1);

    // RFC 8414 §3.3: metadata naming another issuer is refused.
    server.set_metadata_issuer("http://127.0.0.1:1");
    let err = Verifier::builder(server.jwks_url().replace("/jwks.json", ""), AUDIENCE)
        .remote_options(fast_remote(Duration::from_secs(1)))
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(err, BuildError::Discovery(_, FetchError::Invalid(_))),
        "{err:?}"
    );
}

#[tokio::test]
async fn startup_retries_then_gives_up() {
    let (server, _) = server_with(&[1]).await;
    server.set_mode(Mode::Status(500));
    let err = Verifier::builder(server.issuer(), AUDIENCE)
        .jwks_url(server.jwks_url())
        .remote_options(fast_remote(Duration::from_secs(1)))
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(err, BuildError::Keys(_, FetchError::Status(_))),
        "{err:?}"
    );
    assert_eq!(server.jwks_fetches(), 2, "one fetch per start-up attempt");

    // An outage shorter than the retries is ridden out.
    let mut options = fast_remote(Duration::from_secs(1));
    options.startup_attempts = 10;
    let builder = Verifier::builder(server.issuer(), AUDIENCE)
        .jwks_url(server.jwks_url())
        .remote_options(options);
    let build = tokio::spawn(builder.build());
    while server.jwks_fetches() < 4 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.set_mode(Mode::Normal);
    assert!(build.await.unwrap().is_ok());
}

#[tokio::test]
async fn oversized_jwks_is_refused() {
    let (server, _) = server_with(&[1]).await;
    server.set_mode(Mode::Huge(300 * 1024));
    let err = Verifier::builder(server.issuer(), AUDIENCE)
        .jwks_url(server.jwks_url())
        .remote_options(fast_remote(Duration::from_secs(1)))
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(err, BuildError::Keys(_, FetchError::TooLarge(_))),
        "{err:?}"
    );
}

#[tokio::test]
async fn key_rotation_is_picked_up_on_unknown_kid() {
    let (server, m) = server_with(&[1]).await;
    let clock = pinned_clock();
    let cooldown = Duration::from_secs(30);
    let verifier = remote_verifier_at(&server, cooldown, Arc::clone(&clock)).await;
    let old_token = m[0].token("u", None);
    assert!(verifier.verify(&old_token).await.is_ok());

    // G2: publish a second key; a token under it causes one refetch and passes.
    let k2 = keys::fixed(Algorithm::ES256, 2);
    server.set_jwks(keys::jwks([m[0].key(), &k2]));
    let m2 = Minter::new(k2, server.issuer(), AUDIENCE);
    let before = server.jwks_fetches();
    assert!(verifier.verify(&m2.token("u", None)).await.is_ok());
    assert_eq!(server.jwks_fetches(), before + 1);
    assert!(
        verifier.verify(&old_token).await.is_ok(),
        "overlap: old key still valid"
    );

    // Retire the old key: after the next refetch, even its cached token is refused.
    server.set_jwks(keys::jwks([m2.key()]));
    // Within the cooldown an unknown kid causes no fetch; past it, one.
    let err = verifier
        .verify(&m[0].with_kid("kid-within-the-cooldown", "u"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownKeyId);
    assert_eq!(server.jwks_fetches(), before + 1);
    clock.advance(cooldown);
    let err = verifier
        .verify(&m[0].with_kid("kid-that-forces-a-refetch", "u"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownKeyId);
    assert_eq!(server.jwks_fetches(), before + 2);
    let err = verifier.verify(&old_token).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownKeyId);
    assert!(verifier.verify(&m2.token("u", None)).await.is_ok());
}

#[tokio::test]
async fn unknown_kid_flood_fetches_once_per_cooldown() {
    let (server, m) = server_with(&[1]).await;
    let cooldown = Duration::from_secs(30);
    let clock = pinned_clock();
    let verifier = remote_verifier_at(&server, cooldown, Arc::clone(&clock)).await;
    let m = std::sync::Arc::new(m.into_iter().next().unwrap());
    let before = server.jwks_fetches();

    let flood = |n: usize| {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..n {
            let (verifier, m) = (verifier.clone(), m.clone());
            set.spawn(async move {
                let token = m.with_kid(&random_kid(i), "u");
                verifier.verify(&token).await.unwrap_err().kind()
            });
        }
        set
    };
    // E5 / B6: 1000 concurrent requests with random unknown kids: one fetch, since the
    // clock stands still inside one cooldown.
    let kinds = flood(1000).join_all().await;
    assert!(kinds.iter().all(|k| *k == ErrorKind::UnknownKeyId));
    assert_eq!(server.jwks_fetches() - before, 1);

    // Still inside the cooldown, a second before its end: no fetch at all.
    clock.advance(cooldown - Duration::from_secs(1));
    let mid = server.jwks_fetches();
    flood(100).join_all().await;
    assert_eq!(server.jwks_fetches(), mid);

    // After the cooldown: exactly one more.
    clock.advance(Duration::from_secs(1));
    let mid = server.jwks_fetches();
    flood(200).join_all().await;
    assert_eq!(server.jwks_fetches(), mid + 1);

    // A token whose alg the policy refuses never causes a fetch.
    clock.advance(cooldown);
    let mid = server.jwks_fetches();
    let hs = keys::fresh(Algorithm::HS256).with_kid("hs-kid");
    let forged = Minter::new(hs, server.issuer(), AUDIENCE).token("u", None);
    assert!(verifier.verify(&forged).await.is_err());
    assert_eq!(server.jwks_fetches(), mid);
}

#[tokio::test]
async fn jwks_outage_keeps_cached_keys() {
    let (mut server, m) = server_with(&[1]).await;
    let cooldown = Duration::from_secs(30);
    let clock = pinned_clock();
    let verifier = remote_verifier_at(&server, cooldown, Arc::clone(&clock)).await;
    let m = &m[0];
    assert!(verifier.verify(&m.token("u", None)).await.is_ok());

    // H7: every failure mode; each time a fresh token (not cached) still verifies with the
    // last good keys, and an unknown kid (which does cause a fetch) gets 401.
    let modes = [
        Mode::Status(500),
        Mode::Status(404),
        Mode::Garbage,
        Mode::WrongJson,
        Mode::Slow(Duration::from_secs(2)),
        Mode::Huge(300 * 1024),
    ];
    for mode in modes {
        server.set_mode(mode.clone());
        clock.advance(cooldown);
        let before = server.jwks_fetches();
        let err = verifier
            .verify(&m.with_kid("unknown", "u"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnknownKeyId, "{mode:?}");
        assert_eq!(
            server.jwks_fetches(),
            before + 1,
            "{mode:?}: the refetch happened"
        );
        assert_eq!(verifier.keys().len(), 1, "{mode:?}: keys kept");
        assert!(
            verifier.verify(&m.token("fresh", None)).await.is_ok(),
            "{mode:?}"
        );
    }

    // An empty key set is treated as a broken document, not as "drop every key".
    server.set_mode(Mode::Normal);
    server.set_jwks(wristband_jose::Jwks::default());
    clock.advance(cooldown);
    assert!(verifier.verify(&m.with_kid("unknown", "u")).await.is_err());
    assert!(verifier.verify(&m.token("fresh", None)).await.is_ok());

    // Server gone entirely.
    server.stop().await;
    clock.advance(cooldown);
    let err = verifier
        .verify(&m.with_kid("unknown", "u"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownKeyId);
    assert!(verifier.verify(&m.token("fresh", None)).await.is_ok());
}

#[tokio::test]
async fn weak_and_disallowed_keys_are_skipped() {
    let es = keys::fixed(Algorithm::ES256, 1);
    let ed = keys::fixed(Algorithm::EdDSA, 1);
    let mut jwks = keys::jwks([&es, &ed]);
    // An entry carrying private material and one of an unknown type.
    let mut private = es.to_private_jwk().unwrap();
    private.kid = Some("private".into());
    jwks.keys.push(private);
    jwks.keys.push(wristband_jose::Jwk {
        kty: "RSA".into(),
        kid: Some("tiny".into()),
        n: Some("AQAB".into()),
        e: Some("AQAB".into()),
        ..Default::default()
    });
    let server = JwksServer::start(jwks).await;
    let verifier = Verifier::builder(server.issuer(), AUDIENCE)
        .algorithms(&[Algorithm::ES256])
        .remote_options(fast_remote(Duration::from_secs(30)))
        .build()
        .await
        .unwrap();
    let keys = verifier.keys();
    assert_eq!(keys.len(), 1);
    assert!(keys.contains(es.kid()));
}
