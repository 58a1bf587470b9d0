//! Issue 11, item 10: subject cut-offs at sub-second precision. A token issued later in the
//! same second as `logout-all`, a password change, a role change or `revoke-tokens` is
//! accepted, and one issued earlier in that second is refused, at the auth service and at
//! a `wristband-verify` verifier following the feed.

use std::time::Duration;

use http::Method;
use wristband_jose::{ErrorKind, SecretString};
use wristband_server::domain::users;
use wristband_verify::Verifier;

use crate::helpers::{TestApp, PASSWORD};

/// A verifier for the user audience that follows the app's revocation feed, on the app's
/// pinned clock.
async fn follower(t: &TestApp) -> Verifier {
    let rs = t.resource_server("orders-api").await;
    Verifier::builder(t.base.clone(), "wristband")
        .client_credentials(rs.id, rs.secret)
        .revocation_feed()
        .clock(t.clock.clone())
        .build()
        .await
        .unwrap()
}

/// Waits (real time, bounded) until the verifier holds `n` records.
async fn holds(v: &Verifier, n: usize) {
    let feed = v.revocation_feed().unwrap();
    for _ in 0..100 {
        if feed.records().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the verifier holds {} records, not {n}",
        feed.records().len()
    );
}

async fn logout_all(t: &TestApp, at: &str) {
    let auth = format!("Bearer {at}");
    let r = t
        .client
        .send(
            Method::POST,
            &t.url("/v1/logout-all"),
            &[("authorization", &auth)],
            b"",
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
}

#[tokio::test]
async fn a_login_later_in_the_same_second_as_logout_all_is_accepted_everywhere() {
    let t = TestApp::spawn().await;
    t.add_user("alice", "user").await;
    let s = (t.now() + 1) * 1000;

    t.set_millis(s + 100);
    let (early, _) = t.tokens("alice").await;
    t.set_millis(s + 200);
    logout_all(&t, &early).await;
    t.set_millis(s + 700);
    let (late, _) = t.tokens("alice").await;

    // The auth service's own checks.
    assert_eq!(t.me(&late).await.status, 200, "issued after the cut-off");
    assert_eq!(t.me(&early).await.status, 401, "issued before the cut-off");

    // The feed keeps `before` for deployed verifiers and adds `before_ms`.
    let rs = t.resource_server("reader").await;
    let feed = t.revocations(&t.client_token(&rs).await).await;
    let sub: Vec<_> = feed.iter().filter(|r| r["kind"] == "sub").collect();
    assert_eq!(sub.len(), 1, "{feed:?}");
    assert_eq!(sub[0]["before"], s / 1000);
    assert_eq!(sub[0]["before_ms"], s + 200);

    // A verifier following the feed.
    let v = follower(&t).await;
    holds(&v, 1).await;
    assert!(v.verify(&late).await.is_ok(), "issued after the cut-off");
    assert_eq!(
        v.verify(&early).await.unwrap_err().kind(),
        ErrorKind::Revoked,
        "issued before the cut-off"
    );
}

#[tokio::test]
async fn password_role_and_revoke_tokens_cut_offs_compare_milliseconds() {
    let t = TestApp::spawn().await;
    let v = follower(&t).await;
    let life = t.app.record_lifetime();
    let new_password = "another quite long passphrase";
    for (i, name) in ["pw", "role", "revoked"].into_iter().enumerate() {
        t.add_user(name, "user").await;
        let s = (t.now() + 1) * 1000;
        t.set_millis(s + 100);
        let (early, _) = t.tokens(name).await;
        t.set_millis(s + 200);
        let password = match name {
            "pw" => {
                users::set_password(
                    &*t.store,
                    life,
                    t.app.passwords(),
                    name,
                    SecretString::new(new_password.into()),
                    t.now_ms(),
                )
                .await
                .unwrap();
                new_password
            }
            "role" => {
                users::set_role(&*t.store, life, name, "admin", t.now_ms())
                    .await
                    .unwrap();
                PASSWORD
            }
            _ => {
                users::revoke_tokens(&*t.store, life, name, t.now_ms())
                    .await
                    .unwrap();
                PASSWORD
            }
        };
        t.set_millis(s + 700);
        let r = t.login(name, password).await;
        assert_eq!(r.status, 200, "{name}: {}", r.text());
        let late = r.json()["access_token"].as_str().unwrap().to_owned();

        assert_eq!(t.me(&late).await.status, 200, "{name}: issued after");
        assert_eq!(t.me(&early).await.status, 401, "{name}: issued before");
        holds(&v, i + 1).await;
        assert!(v.verify(&late).await.is_ok(), "{name}: issued after");
        assert_eq!(
            v.verify(&early).await.unwrap_err().kind(),
            ErrorKind::Revoked,
            "{name}: issued before"
        );
    }
}
