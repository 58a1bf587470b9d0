//! The relay tree: one `wristband serve` (a real SQLite file) → three `wristband gate`
//! processes following its revocation feed and re-serving it → twenty verifiers each,
//! sixty in all, following their relay (`VerifierBuilder::revocation_feed_url`). Each
//! verifier is a real `wristband-verify` follower in this test process, with its own
//! client-credentials token from the auth service and its own feed connection over HTTP.
//!
//! Every revocation must reach all sixty within p99 < 200 ms. Then a relay is killed
//! (SIGKILL), revocations are made while it is down, and it is restarted on the same port:
//! its twenty verifiers resume from their own cursors and end with every record exactly
//! once, in order.

use std::time::{Duration, Instant};

use http::Method;
use serde_json::Value;
use wristband_testkit::process::ServiceProcess;
use wristband_verify::{FeedOptions, Verifier};

use crate::revocation::{ClientCreds, Deployment};

const RELAYS: usize = 3;
const PER_RELAY: usize = 20;
/// Revocations while every relay runs.
const REVOCATIONS: usize = 20;
/// Revocations while one relay is down.
const WHILE_DOWN: usize = 10;

/// The two tests of this module run one at a time: the tree's delivery times are measured,
/// and each test starts several processes on a small machine.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `wristband gate` following `issuer`'s feed (and so relaying it), on `listen`.
async fn relay(issuer: &str, rs: &ClientCreds, listen: &str) -> ServiceProcess {
    ServiceProcess::spawn(
        std::path::Path::new(env!("CARGO_BIN_EXE_wristband")),
        &[
            "gate",
            "--listen",
            listen,
            "--issuer",
            issuer,
            "--audience",
            "wristband",
            "--client-id",
            &rs.id,
            "--client-secret",
            &rs.secret,
        ],
    )
    .await
}

/// A verifier following the feed of the relay at `relay`.
async fn verifier(issuer: &str, rs: &ClientCreds, relay: &ServiceProcess) -> Verifier {
    Verifier::builder(issuer, "wristband")
        .client_credentials(&rs.id, &rs.secret)
        .revocation_feed_url(relay.url("/v1/revocations"))
        .feed_options(FeedOptions {
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_millis(500),
            poll_interval: Duration::from_millis(250),
            ..FeedOptions::default()
        })
        .build()
        .await
        .unwrap()
}

/// A client-credentials access token of `rs`.
async fn cc_token(d: &Deployment, auth: &ServiceProcess, rs: &ClientCreds) -> String {
    use base64::Engine;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", rs.id, rs.secret))
    );
    let r = d
        .http
        .send(
            Method::POST,
            &auth.url("/oauth2/token"),
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("authorization", &basic),
            ],
            b"grant_type=client_credentials",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["access_token"].as_str().unwrap().to_owned()
}

/// Revokes `token` (RFC 7009), then waits until every verifier refuses it; returns the
/// delay per verifier, from just before the revocation request.
async fn revoke_and_measure(
    d: &Deployment,
    auth: &ServiceProcess,
    verifiers: &[&Verifier],
    token: &str,
) -> Vec<Duration> {
    for v in verifiers {
        assert!(v.verify(token).await.is_ok(), "accepted before");
    }
    let start = Instant::now();
    d.revoke(auth, token, "access_token").await;
    let mut delays: Vec<Option<Duration>> = vec![None; verifiers.len()];
    while delays.iter().any(Option::is_none) {
        for (i, v) in verifiers.iter().enumerate() {
            if delays[i].is_none() && matches!(v.verify_cached(token), Some(Err(_))) {
                delays[i] = Some(start.elapsed());
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{} verifiers still accept a revoked token",
            delays.iter().filter(|d| d.is_none()).count()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    delays.into_iter().flatten().collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Prints the delivery figures (the test's measurement) and returns the p99.
#[allow(clippy::print_stderr)]
fn report(what: &str, mut delays: Vec<Duration>) -> Duration {
    delays.sort();
    let (p50, p99, max) = (
        percentile(&delays, 0.50),
        percentile(&delays, 0.99),
        delays[delays.len() - 1],
    );
    eprintln!(
        "relay tree, {what}: {} deliveries, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        delays.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3
    );
    p99
}

/// The ids of every record the auth service serves, by its own pages.
async fn upstream_ids(d: &Deployment, url: &str, token: &str) -> Vec<i64> {
    let page = d.http.get_bearer(url, token).await;
    assert_eq!(page.status, 200, "{}", page.text());
    let page: Value = page.json();
    assert_eq!(page["has_more"], false);
    page["revocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_relays_deliver_every_revocation_to_sixty_verifiers_and_resume_after_a_kill() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let d = Deployment::new();
    d.add_user("alice").await;
    let auth = d.serve("127.0.0.1:0").await;
    let issuer = auth.url("");
    let rs = d.add_client("relay", "resource-server", &[]).await;

    let mut relays = Vec::new();
    for _ in 0..RELAYS {
        relays.push(relay(&issuer, &rs, "127.0.0.1:0").await);
    }
    let mut tree: Vec<Vec<Verifier>> = Vec::new();
    for r in &relays {
        let mut leaves = Vec::new();
        for _ in 0..PER_RELAY {
            leaves.push(verifier(&issuer, &rs, r).await);
        }
        tree.push(leaves);
    }
    let all: Vec<&Verifier> = tree.iter().flatten().collect();
    assert_eq!(all.len(), RELAYS * PER_RELAY);

    // Every revocation reaches all sixty.
    let mut delays = Vec::with_capacity(REVOCATIONS * all.len());
    for _ in 0..REVOCATIONS {
        let login = d.login(&auth, "alice").await;
        delays.extend(revoke_and_measure(&d, &auth, &all, &login.at).await);
    }
    let p99 = report("all relays up", delays);
    assert!(p99 < Duration::from_millis(200), "p99 delivery {p99:?}");

    // A relay's page is the auth service's, byte for byte, with the same cursors.
    let token = cc_token(&d, &auth, &rs).await;
    for after in [0, 5, REVOCATIONS as i64] {
        let path = format!("/v1/revocations?after={after}");
        let upstream = d.http.get_bearer(&auth.url(&path), &token).await;
        let relayed = d.http.get_bearer(&relays[1].url(&path), &token).await;
        assert_eq!(upstream.status, 200);
        assert_eq!(relayed.status, 200, "{}", relayed.text());
        assert_eq!(relayed.text(), upstream.text(), "after={after}");
    }
    let metrics = d.http.get(&relays[1].url("/metrics"), &[]).await.text();
    assert!(
        metrics.contains(&format!("wristband_relay_subscribers {PER_RELAY}\n")),
        "{metrics}"
    );

    // Kill a relay; revoke while it is down: the others' verifiers still get everything.
    let port = relays[0].addr().port();
    let killed = relays.remove(0);
    killed.kill().await;
    let survivors: Vec<&Verifier> = tree[1..].iter().flatten().collect();
    let orphans: Vec<&Verifier> = tree[0].iter().collect();
    let mut held = Vec::new();
    let mut delays = Vec::new();
    for _ in 0..WHILE_DOWN {
        let login = d.login(&auth, "alice").await;
        for v in &orphans {
            assert!(v.verify(&login.at).await.is_ok());
        }
        delays.extend(revoke_and_measure(&d, &auth, &survivors, &login.at).await);
        held.push(login.at);
    }
    let p99 = report("one relay down, to the other 40", delays);
    assert!(p99 < Duration::from_millis(200), "p99 delivery {p99:?}");
    for v in &orphans {
        assert!(
            held.iter()
                .all(|t| v.verify_cached(t).is_some_and(|r| r.is_ok())),
            "a verifier of the killed relay cannot have heard of these revocations"
        );
    }

    // Restart it on the same port: its verifiers resume from their own cursors.
    let restarted = Instant::now();
    let back = relay(&issuer, &rs, &format!("127.0.0.1:{port}")).await;
    let ids = upstream_ids(&d, &auth.url("/v1/revocations?after=0"), &token).await;
    assert_eq!(ids.len(), REVOCATIONS + WHILE_DOWN);
    let last = *ids.last().unwrap();
    loop {
        let behind = orphans
            .iter()
            .filter(|v| v.revocation_feed().unwrap().cursor() < last)
            .count();
        if behind == 0 {
            break;
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(15),
            "{behind} verifiers of the restarted relay are still behind"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!(
        "relay tree: the restarted relay's {PER_RELAY} verifiers caught up {:.0} ms after its restart began",
        restarted.elapsed().as_secs_f64() * 1e3
    );
    for t in &held {
        for v in &orphans {
            assert!(matches!(v.verify_cached(t), Some(Err(_))));
        }
    }
    // Every verifier: every record exactly once, in order, none missing.
    for (i, v) in all.iter().enumerate() {
        let feed = v.revocation_feed().unwrap();
        assert_eq!(
            feed.logged_ids(),
            ids,
            "verifier #{i}: the records, in order"
        );
        assert_eq!(
            feed.records_applied(),
            ids.len(),
            "verifier #{i}: each record applied once"
        );
    }
    drop(back);
}

/// A chain of every kind of relay and follower: the auth service → `api_service
/// --serve-feed` → `api_service --feed-url` and `wristband gate --feed-url
/// --no-serve-feed`. A logout reaches the end of both branches; the gate that does not
/// serve the feed has no feed routes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_services_and_gates_relay_and_follow_relays() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let d = Deployment::new();
    d.add_user("alice").await;
    let auth = d.serve("127.0.0.1:0").await;
    let issuer = auth.url("");
    let rs = d.add_client("relay", "resource-server", &[]).await;
    let middle = crate::revocation::api_service(&auth, &rs, &["--serve-feed"]).await;
    let feed_url = middle.url("/v1/revocations");
    let leaf = crate::revocation::api_service(&auth, &rs, &["--feed-url", &feed_url]).await;
    let gate = ServiceProcess::spawn(
        std::path::Path::new(env!("CARGO_BIN_EXE_wristband")),
        &[
            "gate",
            "--listen",
            "127.0.0.1:0",
            "--issuer",
            &issuer,
            "--client-id",
            &rs.id,
            "--client-secret",
            &rs.secret,
            "--feed-url",
            &feed_url,
            "--no-serve-feed",
        ],
    )
    .await;
    let ask = |token: &str| {
        let auth = format!("Bearer {token}");
        let gate = &gate;
        let http = &d.http;
        async move {
            http.get(
                &gate.url("/authz/auth-request"),
                &[
                    ("x-original-url", "https://app.example.com/orders"),
                    ("x-original-method", "GET"),
                    ("authorization", &auth),
                ],
            )
            .await
            .status
        }
    };
    let login = d.login(&auth, "alice").await;
    d.accepted_everywhere(&[&middle, &leaf], &login.at, "before logout")
        .await;
    assert_eq!(ask(&login.at).await, 200);
    // The relay's stream has its two followers.
    let metrics = d.http.get(&middle.url("/metrics"), &[]).await.text();
    assert!(
        metrics.contains("wristband_relay_subscribers 2\n"),
        "{metrics}"
    );
    // Without --serve-feed there are no feed routes.
    let token = cc_token(&d, &auth, &rs).await;
    let r = d
        .http
        .get_bearer(&gate.url("/v1/revocations"), &token)
        .await;
    assert_eq!(r.status, 404);
    // (The API service answers unknown paths behind its token layer: 401 for a token
    // that is not for its audience.)
    assert_ne!(
        d.http
            .get_bearer(&leaf.url("/v1/revocations"), &token)
            .await
            .status,
        200
    );

    let r = d
        .post_json(
            &auth.url("/v1/logout"),
            Some(&login.at),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    d.rejected_everywhere(
        &[&middle, &leaf],
        &login.at,
        Duration::from_secs(3),
        "logout",
    )
    .await;
    let start = Instant::now();
    while ask(&login.at).await != 401 {
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "the gate below the relay still allows a logged-out token"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Refusals are the auth service's: status, challenge and body, byte for byte.
    let user = d.login(&auth, "alice").await.at;
    for (what, bearer) in [
        ("no token", None),
        ("a user's token", Some(user.as_str())),
        ("garbage", Some("not-a-token")),
    ] {
        let headers: Vec<(&str, String)> = bearer
            .map(|t| vec![("authorization", format!("Bearer {t}"))])
            .unwrap_or_default();
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let upstream = d.http.get(&auth.url("/v1/revocations"), &headers).await;
        let relayed = d.http.get(&middle.url("/v1/revocations"), &headers).await;
        assert_ne!(upstream.status, 200, "{what}");
        assert_eq!(relayed.status, upstream.status, "{what}");
        assert_eq!(relayed.text(), upstream.text(), "{what}");
        assert_eq!(
            relayed.header("www-authenticate"),
            upstream.header("www-authenticate"),
            "{what}"
        );
    }

    // A reader whose client's secret is rotated is refused by the relay too: the rotation
    // writes a subject record for the client, which the relay applies like any other.
    let reader = d.add_client("reader", "resource-server", &[]).await;
    let old = cc_token(&d, &auth, &reader).await;
    let page = middle.url("/v1/revocations");
    assert_eq!(d.http.get_bearer(&page, &old).await.status, 200);
    d.cli("client", &["rotate-secret", "reader"], None).await;
    let start = Instant::now();
    loop {
        let r = d.http.get_bearer(&page, &old).await;
        if r.status == 401 {
            assert_eq!(r.json()["error"], "invalid_token");
            break;
        }
        assert_eq!(r.status, 200);
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the relay still serves a rotated client's token"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
