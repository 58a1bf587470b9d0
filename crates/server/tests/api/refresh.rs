use std::collections::HashSet;

use crate::helpers::TestApp;

fn rt_of(r: &wristband_testkit::http::TestResponse) -> String {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["refresh_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn rotation_and_reuse_revokes_the_family() {
    let t = TestApp::spawn().await;
    t.add_user("alice", "user").await;
    let (_, rt1) = t.tokens("alice").await;
    let rt2 = rt_of(&t.refresh(&rt1).await);
    assert_ne!(rt1, rt2);
    t.advance(11); // past the grace window
    let rt3 = rt_of(&t.refresh(&rt2).await);

    // rt1 is two generations old: reuse. The whole session dies, rt3 included.
    let reuse = t.refresh(&rt1).await;
    assert_eq!(reuse.status, 400);
    assert_eq!(reuse.json()["error"], "invalid_grant");
    assert_eq!(t.refresh(&rt3).await.status, 400);
    let m = t.client.get(&t.url("/metrics"), &[]).await.text();
    assert!(
        m.contains("wristband_refreshes_total{outcome=\"reuse\"} 1"),
        "{m}"
    );
}

#[tokio::test]
async fn predecessor_after_the_grace_window_is_reuse() {
    let t = TestApp::spawn().await;
    t.add_user("bob", "user").await;
    let (_, rt1) = t.tokens("bob").await;
    let rt2 = rt_of(&t.refresh(&rt1).await);
    t.advance(10); // grace is 10 s: now - rotated_at == 10 is outside
    assert_eq!(t.refresh(&rt1).await.status, 400);
    assert_eq!(t.refresh(&rt2).await.status, 400, "family revoked");
}

#[tokio::test]
async fn grace_window_exchanges_converge_on_one_successor() {
    let t = TestApp::spawn().await;
    t.add_user("carol", "user").await;
    let (_, rt1) = t.tokens("carol").await;
    let n = 8;
    let mut tasks = Vec::new();
    for _ in 0..n {
        let client = t.client.clone();
        let url = t.url("/v1/refresh");
        let body = serde_json::json!({ "refresh_token": rt1 }).to_string();
        tasks.push(tokio::spawn(async move {
            client
                .send(
                    http::Method::POST,
                    &url,
                    &[("content-type", "application/json")],
                    body.as_bytes(),
                )
                .await
        }));
    }
    let mut successors = HashSet::new();
    let mut access = HashSet::new();
    for task in tasks {
        let r = task.await.unwrap();
        successors.insert(rt_of(&r));
        access.insert(r.json()["access_token"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        successors.len(),
        1,
        "all exchanges return the same successor"
    );
    assert_eq!(access.len(), n, "each exchange gets a fresh access token");
    let rt2 = successors.into_iter().next().unwrap();
    // The successor then refreshes normally.
    t.advance(1);
    let rt3 = rt_of(&t.refresh(&rt2).await);
    assert_ne!(rt3, rt2);
    // rt1 is now two generations behind, even inside the window: reuse.
    assert_eq!(t.refresh(&rt1).await.status, 400);
    assert_eq!(t.refresh(&rt3).await.status, 400);
}

#[tokio::test]
async fn zero_grace_makes_every_repeat_a_reuse() {
    let t = TestApp::spawn_with(|c| c.refresh_grace = std::time::Duration::ZERO).await;
    t.add_user("dan", "user").await;
    let (_, rt1) = t.tokens("dan").await;
    let rt2 = rt_of(&t.refresh(&rt1).await);
    assert_eq!(t.refresh(&rt1).await.status, 400);
    assert_eq!(t.refresh(&rt2).await.status, 400);
}

#[tokio::test]
async fn idle_and_absolute_expiry() {
    let t = TestApp::spawn().await;
    t.add_user("erin", "user").await;
    let (_, rt) = t.tokens("erin").await;
    t.advance(14 * 86_400);
    assert_eq!(t.refresh(&rt).await.status, 400, "idle for 14 days");

    let (_, mut rt) = t.tokens("erin").await;
    // Refresh every 13 days: never idle, but the session still ends 30 days after login.
    for _ in 0..2 {
        t.advance(13 * 86_400);
        rt = rt_of(&t.refresh(&rt).await);
    }
    t.advance(4 * 86_400); // day 30
    assert_eq!(t.refresh(&rt).await.status, 400, "absolute lifetime");
}

#[tokio::test]
async fn malformed_unknown_and_access_tokens_are_invalid_grants() {
    let t = TestApp::spawn().await;
    t.add_user("fay", "user").await;
    let (at, rt) = t.tokens("fay").await;
    let mut truncated = rt.clone();
    truncated.pop();
    let mut bodies = Vec::new();
    for bad in [
        "x".to_owned(),
        truncated,
        format!("{rt}A"),
        "A".repeat(43),
        at.clone(),
    ] {
        let r = t.refresh(&bad).await;
        assert_eq!(r.status, 400);
        bodies.push(r.text());
    }
    for b in &bodies {
        assert_eq!(b, &bodies[0], "one body for every failure");
    }
    // The real token still works: none of the bad attempts touched the session.
    assert_eq!(t.refresh(&rt).await.status, 200);
}
