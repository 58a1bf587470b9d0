//! Login and registration abuse: device cookies against targeted lockout, bounded throttle
//! records, case-insensitive usernames, and the registration rate limit.

use http::Method;
use serde_json::{json, Value};
use wristband_testkit::http::TestResponse;

use crate::cookies::set_cookies;
use crate::helpers::{form, TestApp, PASSWORD};

const DEVICE: &str = "__Host-wb_device";
const WRONG: &str = "guess-guess-guess";

/// A service behind a trusted proxy (the test's own address), so that each request can
/// name its client address in `X-Forwarded-For`.
async fn behind_proxy() -> TestApp {
    TestApp::spawn_with(|c| c.trusted_proxies = vec!["127.0.0.0/8".into()]).await
}

async fn login_from(t: &TestApp, ip: &str, body: Value) -> TestResponse {
    t.post_json("/v1/login", &body, &[("x-forwarded-for", ip)])
        .await
}

async fn form_login_from(t: &TestApp, ip: &str, user: &str, cookie: Option<&str>) -> TestResponse {
    let cookie = cookie.map(|v| format!("{DEVICE}={v}")).unwrap_or_default();
    let mut headers = vec![
        ("content-type", "application/x-www-form-urlencoded"),
        ("x-forwarded-for", ip),
    ];
    if !cookie.is_empty() {
        headers.push(("cookie", &cookie));
    }
    t.client
        .send(
            Method::POST,
            &t.url("/login"),
            &headers,
            form(&[("username", user), ("password", PASSWORD)]).as_bytes(),
        )
        .await
}

/// Attackers from 25 addresses guess until the account-wide limit holds.
async fn lock_account(t: &TestApp, user: &str, round: u32) {
    for i in 0..25 {
        let ip = format!("198.51.{round}.{}", 10 + i);
        let r = login_from(t, &ip, json!({"username": user, "password": WRONG})).await;
        assert!(r.status == 401 || r.status == 429, "{}", r.text());
    }
}

/// Rows in the throttle table and the length of its longest key.
async fn throttle_rows(t: &TestApp) -> (i64, i64) {
    let url = format!("sqlite:{}", t._dir.path().join("wristband.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let row: (i64, i64) =
        sqlx::query_as("SELECT count(*), coalesce(max(length(key)), 0) FROM login_throttle")
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    row
}

#[tokio::test]
async fn a_known_device_logs_in_while_attackers_keep_the_account_locked() {
    let t = behind_proxy().await;
    t.add_user("carol", "user").await;
    t.add_user("mallory", "user").await;
    let home = "192.0.2.1";

    // Earlier successful logins: through the JSON API (the token in the body), the JSON
    // API with cookie delivery and the login page (the token in an HttpOnly cookie).
    let r = login_from(&t, home, json!({"username": "carol", "password": PASSWORD})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let api_device = r.json()["device_token"].as_str().unwrap().to_owned();
    assert!(set_cookies(&r).is_empty(), "body delivery sets no cookie");
    let cookie_login = |cookie: Option<String>| {
        let t = &t;
        async move {
            let cookie = cookie.map(|v| format!("{DEVICE}={v}")).unwrap_or_default();
            t.post_json(
                "/v1/login",
                &json!({"username": "carol", "password": PASSWORD, "delivery": "cookie"}),
                &[
                    ("x-forwarded-for", home),
                    ("origin", &t.base),
                    ("cookie", &cookie),
                ],
            )
            .await
        }
    };
    let r = cookie_login(None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let c = set_cookies(&r);
    assert!(c[DEVICE].has("HttpOnly") && c[DEVICE].has("Secure"));
    assert_eq!(c[DEVICE].attr("Path"), Some("/"));
    assert_eq!(c[DEVICE].attr("SameSite"), Some("Strict"));
    assert_eq!(c[DEVICE].attr("Max-Age"), Some("31536000"));
    assert!(!r.text().contains(&c[DEVICE].value), "not in the body");
    let cookie_device = c[DEVICE].value.clone();
    let r = form_login_from(&t, home, "carol", None).await;
    assert_eq!(r.status, 303, "{}", r.text());
    let page_device = set_cookies(&r)[DEVICE].value.clone();
    // A device token of another account proves nothing about this one.
    let r = login_from(
        &t,
        home,
        json!({"username": "mallory", "password": PASSWORD}),
    )
    .await;
    let foreign = r.json()["device_token"].as_str().unwrap().to_owned();

    // The attack: wrong guesses from many addresses, repeated whenever Retry-After ends.
    for round in 0..3 {
        lock_account(&t, "carol", round).await;
        let untrusted =
            login_from(&t, home, json!({"username": "carol", "password": PASSWORD})).await;
        assert_eq!(untrusted.status, 429, "round {round}: {}", untrusted.text());
        let wait: u64 = untrusted.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=900).contains(&wait));
        assert_eq!(untrusted.json()["error"], "too_many_requests");
        for (name, token) in [
            ("foreign", &foreign),
            ("forged", &"AAAA.BBBB.CCCC".to_owned()),
        ] {
            let r = login_from(
                &t,
                home,
                json!({"username": "carol", "password": PASSWORD, "device_token": token}),
            )
            .await;
            assert_eq!(r.status, 429, "a {name} device token is untrusted");
        }
        let r = form_login_from(&t, home, "carol", None).await;
        assert_eq!(r.status, 429, "the login page without the cookie waits too");

        // The real user's known devices log in at once, from any address.
        let r = login_from(
            &t,
            "203.0.113.200",
            json!({"username": "carol", "password": PASSWORD, "device_token": api_device}),
        )
        .await;
        assert_eq!(r.status, 200, "round {round}: {}", r.text());
        assert!(r.json()["access_token"].is_string());
        let r = cookie_login(Some(cookie_device.clone())).await;
        assert_eq!(r.status, 200, "round {round}: {}", r.text());
        let r = form_login_from(&t, home, "carol", Some(&page_device)).await;
        assert_eq!(r.status, 303, "round {round}: {}", r.text());
        assert_eq!(r.header("location"), Some("/account"));
        t.advance(wait);
    }
}

#[tokio::test]
async fn a_device_has_its_own_bounded_budget() {
    let t = behind_proxy().await;
    t.add_user("dana", "user").await;
    let device = |r: &TestResponse| r.json()["device_token"].as_str().unwrap().to_owned();
    let home = "192.0.2.7";
    let first =
        device(&login_from(&t, home, json!({"username": "dana", "password": PASSWORD})).await);
    let second =
        device(&login_from(&t, home, json!({"username": "dana", "password": PASSWORD})).await);
    let with = |token: &str, password: &str| json!({"username": "dana", "password": password, "device_token": token});
    // Someone holding the first device guesses: five failures are free, the sixth earns a
    // delay that this device alone waits out; guessing stays bounded.
    for _ in 0..6 {
        let r = login_from(&t, "198.51.100.3", with(&first, WRONG)).await;
        assert_eq!(r.status, 401, "{}", r.text());
    }
    let r = login_from(&t, home, with(&first, PASSWORD)).await;
    assert_eq!(r.status, 429, "the device is locked out");
    assert_eq!(r.header("retry-after"), Some("1"));
    for _ in 0..6 {
        let r = login_from(&t, "198.51.100.3", with(&first, WRONG)).await;
        assert_eq!(r.status, 429, "the locked device gets no guesses");
        t.advance(r.header("retry-after").unwrap().parse().unwrap());
        let r = login_from(&t, "198.51.100.3", with(&first, WRONG)).await;
        assert_eq!(r.status, 401);
    }
    // The other device, and the account for everyone else, are not affected.
    let r = login_from(&t, home, with(&second, PASSWORD)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = login_from(
        &t,
        "192.0.2.8",
        json!({"username": "dana", "password": PASSWORD}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn malformed_usernames_are_refused_before_any_store_write() {
    let t = TestApp::spawn().await;
    t.add_user("alice", "user").await;
    let huge = "a".repeat(60_000);
    let mut bodies = Vec::new();
    for name in ["alice!", "nobody!", huge.as_str(), "", "alice bob"] {
        for _ in 0..3 {
            let r = t.login(name, WRONG).await;
            assert_eq!(r.status, 400, "{}", r.text());
            assert_eq!(r.json()["error"], "invalid_request");
            bodies.push(r.text());
        }
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "the answer does not depend on the account existing: {bodies:?}"
    );
    assert_eq!(throttle_rows(&t).await.0, 0, "nothing was written");
    let r = t
        .post_form("/login", &[("username", &huge), ("password", WRONG)], &[])
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(throttle_rows(&t).await.0, 0, "nothing was written");
}

#[tokio::test]
async fn throttle_keys_are_bounded_and_expired_rows_pruned() {
    let t = TestApp::spawn().await;
    let longest = "x".repeat(64);
    for _ in 0..3 {
        assert_eq!(t.login(&longest, WRONG).await.status, 401);
    }
    let (rows, key_len) = throttle_rows(&t).await;
    assert!(rows > 0);
    assert!(key_len <= 64, "a throttle key of {key_len} bytes");

    // Still inside the window: the rows matter and stay.
    t.advance(3599);
    t.app.prune().await.unwrap();
    assert_eq!(throttle_rows(&t).await.0, rows);
    t.advance(1);
    t.app.prune().await.unwrap();
    assert_eq!(throttle_rows(&t).await.0, 0, "expired rows are pruned");
}

#[tokio::test]
async fn usernames_are_case_insensitive_and_kept_as_typed() {
    let t = TestApp::spawn_with(|c| c.allow_registration = true).await;
    let r = t
        .post_json(
            "/v1/users",
            &json!({"username": "Alice", "password": PASSWORD}),
            &[],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = t
        .post_json(
            "/v1/users",
            &json!({"username": "ALICE", "password": PASSWORD}),
            &[],
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text());
    let (at, _) = t.tokens("aLiCe").await;
    assert_eq!(t.me(&at).await.json()["username"], "Alice");

    // One account, one set of throttle keys: a success under one spelling does not
    // forget failures made under another from elsewhere, and the pair key is shared.
    for _ in 0..6 {
        assert_eq!(t.login("ALICE", WRONG).await.status, 401);
    }
    assert_eq!(t.login("alice", PASSWORD).await.status, 429);
}

#[tokio::test]
async fn registration_is_rate_limited_per_address() {
    let t = TestApp::spawn_with(|c| {
        c.allow_registration = true;
        c.trusted_proxies = vec!["127.0.0.0/8".into()];
    })
    .await;
    let register = |name: String, ip: &'static str| {
        let t = &t;
        async move {
            t.post_json(
                "/v1/users",
                &json!({"username": name, "password": PASSWORD}),
                &[("x-forwarded-for", ip)],
            )
            .await
        }
    };
    for i in 0..10 {
        let r = register(format!("user{i}"), "198.51.100.50").await;
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let r = register("user10".into(), "198.51.100.50").await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.json()["error"], "too_many_requests");
    assert_eq!(r.header("retry-after"), Some("3600"));
    // Other addresses are not affected.
    let r = register("other".into(), "198.51.100.51").await;
    assert_eq!(r.status, 201, "{}", r.text());
    // The limit holds for the whole window, then lifts.
    t.advance(3599);
    let r = register("user10".into(), "198.51.100.50").await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("1"));
    t.advance(1);
    let r = register("user10".into(), "198.51.100.50").await;
    assert_eq!(r.status, 201, "{}", r.text());
}

#[tokio::test]
async fn a_body_with_an_unknown_or_missing_field_names_it() {
    let t = TestApp::spawn().await;
    t.add_user("alice", "user").await;
    let r = t
        .post_json(
            "/v1/login",
            &json!({"username": "alice", "password": PASSWORD, "remember_me": true}),
            &[],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"], "invalid_request");
    assert_eq!(
        r.json()["error_description"],
        "the request body has unknown field `remember_me`"
    );
    let r = t
        .post_json("/v1/login", &json!({"username": "alice"}), &[])
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        r.json()["error_description"],
        "the request body has missing field `password`"
    );
    // Another shape error: the general message.
    let r = t
        .post_json(
            "/v1/login",
            &json!({"username": 7, "password": PASSWORD}),
            &[],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        r.json()["error_description"],
        "the request body is not valid JSON of the expected shape"
    );
}
