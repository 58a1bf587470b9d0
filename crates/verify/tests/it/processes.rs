//! The acceptance scenario with real processes: a JWKS server and two `api_service`
//! instances (one discovering its keys from the issuer, one given `--jwks URL`).

use std::time::Duration;

use http::StatusCode;
use wristband_jose::Algorithm;
use wristband_testkit::http::{Client, TestResponse};
use wristband_testkit::process::ServiceProcess;
use wristband_testkit::{keys, JwksServer, Minter};
use wristband_verify::{EXPIRED_BODY, INVALID_BODY};

use crate::AUDIENCE;

/// The refetch cooldown of both instances: short, since the test waits it out once.
const COOLDOWN_SECS: u64 = 1;

async fn start_services(server: &JwksServer) -> [ServiceProcess; 2] {
    let binary = crate::api_service_binary();
    let issuer = server.issuer();
    let jwks = server.jwks_url();
    let cooldown = COOLDOWN_SECS.to_string();
    let common = [
        "--listen",
        "127.0.0.1:0",
        "--issuer",
        &issuer,
        "--audience",
        AUDIENCE,
        "--refetch-cooldown",
        &cooldown,
    ];
    let discovering = ServiceProcess::spawn(&binary, &common).await;
    let mut with_jwks = common.to_vec();
    with_jwks.extend(["--jwks", &jwks]);
    let explicit = ServiceProcess::spawn(&binary, &with_jwks).await;
    [discovering, explicit]
}

fn assert_invalid(r: &TestResponse, what: &str) {
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}");
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer realm="wristband", error="invalid_token""#),
        "{what}"
    );
    assert_eq!(r.body.as_ref(), INVALID_BODY.as_bytes(), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_api_services_against_a_jwks_server() {
    let k1 = keys::fixed(Algorithm::ES256, 10);
    let mut server = JwksServer::start(keys::jwks([&k1])).await;
    let services = start_services(&server).await;
    assert_eq!(
        server.metadata_fetches(),
        1,
        "one instance discovered the JWKS"
    );
    assert_eq!(
        server.jwks_fetches(),
        2,
        "each instance fetched at start-up"
    );
    let m1 = Minter::new(k1, server.issuer(), AUDIENCE);
    let client = Client::new();

    // Valid tokens pass; catalog tokens get the right status.
    for svc in &services {
        let token = m1.token("alice", Some("admin"));
        let r = client.get_bearer(&svc.url("/resource"), &token).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json()["sub"], "alice");
        assert_eq!(r.json()["role"], "admin");
        assert_eq!(
            client.get_bearer(&svc.url("/admin"), &token).await.status,
            StatusCode::OK
        );
        assert_eq!(
            client.get(&svc.url("/health"), &[]).await.status,
            StatusCode::OK
        );

        // H4: no token.
        let r = client.get(&svc.url("/resource"), &[]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            r.header("www-authenticate"),
            Some(r#"Bearer realm="wristband""#)
        );
        assert!(r.body.is_empty());

        // Bad signature, alg none, wrong audience, a foreign key: identical 401s.
        let good = m1.token("bob", None);
        let (signing_input, sig) = good.rsplit_once('.').unwrap();
        let mut bad = sig.as_bytes().to_vec();
        bad[5] = if bad[5] == b'x' { b'y' } else { b'x' };
        let bad_sig = format!("{signing_input}.{}", String::from_utf8(bad).unwrap());
        let payload = good.split('.').nth(1).unwrap();
        let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.{payload}.");
        let mut wrong_aud = m1.claims("bob");
        wrong_aud.aud = "api://billing".into();
        let wrong_aud = m1.sign(&wrong_aud);
        let mut cases = vec![
            ("bad signature", bad_sig),
            ("alg none", none),
            ("wrong aud", wrong_aud),
        ];
        let oversized = "a".repeat(wristband_jose::MAX_TOKEN_BYTES + 1);
        cases.push(("oversized", oversized));
        let mut bodies = Vec::new();
        for (what, token) in &cases {
            let r = client.get_bearer(&svc.url("/resource"), token).await;
            assert_invalid(&r, what);
            bodies.push((
                r.status,
                r.header("www-authenticate").map(str::to_owned),
                r.body.clone(),
            ));
        }
        assert!(bodies.windows(2).all(|w| w[0] == w[1]));

        // Expired: the only distinguishable failure.
        let r = client
            .get_bearer(&svc.url("/resource"), &m1.expired("bob"))
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.body.as_ref(), EXPIRED_BODY.as_bytes());

        // Not an admin.
        let r = client
            .get_bearer(&svc.url("/admin"), &m1.token("bob", Some("user")))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(
            r.header("www-authenticate"),
            Some(r#"Bearer realm="wristband", error="insufficient_scope""#)
        );

        // Two credentials.
        let auth = format!("Bearer {good}");
        let r = client
            .get(
                &svc.url("/resource"),
                &[("authorization", &auth), ("authorization", &auth)],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            r.header("www-authenticate"),
            Some(r#"Bearer realm="wristband", error="invalid_request""#)
        );
        let r = client
            .get(
                &svc.url(&format!("/resource?access_token={good}")),
                &[("authorization", &auth)],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
    }
    assert_eq!(server.jwks_fetches(), 2, "no catalog token caused a fetch");

    // 1000 concurrent requests with random unknown kids: at most one fetch per instance
    // per cooldown.
    let started = tokio::time::Instant::now();
    let before = server.jwks_fetches();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let url = services[i % 2].url("/resource");
        let token = m1.with_kid(&format!("unknown-{i}-{}", rand_suffix()), "mallory");
        let client = client.clone();
        set.spawn(async move { client.get_bearer(&url, &token).await });
    }
    for r in set.join_all().await {
        assert_invalid(&r, "unknown kid");
    }
    let elapsed = started.elapsed();
    let flood_end = tokio::time::Instant::now();
    let fetched = server.jwks_fetches() - before;
    let windows = 1 + (elapsed.as_secs() / COOLDOWN_SECS) as usize;
    assert!(
        (1..=2 * windows).contains(&fetched),
        "{fetched} JWKS fetches for 1000 unknown kids in {elapsed:?} (two instances, {COOLDOWN_SECS} s cooldown)"
    );

    // Stop the JWKS server: valid tokens (new ones, never cached) still pass.
    server.stop().await;
    for svc in &services {
        let r = client
            .get_bearer(&svc.url("/resource"), &m1.token("carol", None))
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }

    // Key rotation: the server comes back publishing a second key; once the cooldown
    // of the flood has passed, a token under the new kid is accepted after one refetch.
    let k2 = keys::fixed(Algorithm::ES256, 11);
    server.set_jwks(keys::jwks([m1.key(), &k2]));
    server.restart().await;
    let m2 = Minter::new(k2, server.issuer(), AUDIENCE);
    // Every refetch of the flood started before it ended, so its cooldown is over by then.
    tokio::time::sleep_until(
        flood_end + Duration::from_secs(COOLDOWN_SECS) + Duration::from_millis(200),
    )
    .await;
    let before = server.jwks_fetches();
    for svc in &services {
        let r = client
            .get_bearer(&svc.url("/resource"), &m2.token("dave", None))
            .await;
        assert_eq!(r.status, StatusCode::OK, "new kid accepted");
        let r = client
            .get_bearer(&svc.url("/resource"), &m1.token("erin", None))
            .await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "old kid still accepted during the overlap"
        );
    }
    assert_eq!(
        server.jwks_fetches(),
        before + 2,
        "one refetch per instance"
    );

    // No token, and no token hash collision, ever reaches the logs.
    let good = m1.token("frank", None);
    client
        .get_bearer(&services[0].url("/resource"), &format!("{good}x"))
        .await;
    for svc in services {
        let logs = svc.logs().join("\n");
        assert!(logs.contains("token refused"), "refusals are logged");
        let signature = good.rsplit('.').next().unwrap();
        assert!(!logs.contains(signature), "a token appeared in the logs");
        // Graceful shutdown on SIGTERM.
        let status = svc.terminate().await;
        assert!(status.success(), "{status:?}");
    }
}

fn rand_suffix() -> String {
    let mut b = [0u8; 9];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    wristband_jose::b64::encode(b)
}

/// A wrong `--issuer` stops the start-up with both issuer values, and without a word
/// about a revocation feed that was never configured; logs to a pipe have no colours.
#[tokio::test]
async fn a_wrong_issuer_is_named_with_the_one_the_metadata_gives() {
    let server = JwksServer::start(keys::jwks([&keys::fixed(Algorithm::ES256, 12)])).await;
    // The same metadata URL (a trailing slash is trimmed), but not the same issuer.
    let wrong = format!("{}/", server.issuer());
    let out = tokio::process::Command::new(crate::api_service_binary())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--issuer",
            &wrong,
            "--audience",
            AUDIENCE,
        ])
        .env("RUST_LOG", "info")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{:?}", server.issuer())),
        "the metadata's issuer: {stderr}"
    );
    assert!(
        stderr.contains(&format!("{wrong:?}")),
        "the configured issuer: {stderr}"
    );
    assert!(!stderr.contains("revocation"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "colour codes: {stderr}");
}
