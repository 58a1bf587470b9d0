//! `GET /v1/sessions`, `DELETE /v1/sessions/{id}` and `POST /v1/logout-all`.

use http::Method;
use serde_json::{json, Value};
use wristband_server::domain::TokenFormat;

use crate::helpers::{kinds, TestApp, PASSWORD};

async fn list(t: &TestApp, at: &str) -> Vec<Value> {
    let r = t.client.get_bearer(&t.url("/v1/sessions"), at).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["sessions"].as_array().unwrap().clone()
}

async fn delete(t: &TestApp, at: &str, id: &str) -> (u16, Value) {
    let auth = format!("Bearer {at}");
    let r = t
        .client
        .send(
            Method::DELETE,
            &t.url(&format!("/v1/sessions/{id}")),
            &[("authorization", &auth)],
            b"",
        )
        .await;
    let body = if r.body.is_empty() {
        Value::Null
    } else {
        r.json()
    };
    (r.status.as_u16(), body)
}

async fn login_as(t: &TestApp, user: &str, agent: &str) -> (String, String) {
    let r = t
        .post_json(
            "/v1/login",
            &json!({"username": user, "password": PASSWORD}),
            &[("user-agent", agent)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    (
        j["access_token"].as_str().unwrap().to_owned(),
        j["refresh_token"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn sessions_lists_only_the_users_own_live_sessions_with_their_details() {
    let t = TestApp::spawn().await;
    t.add_user("alice", "user").await;
    t.add_user("bob", "user").await;
    let start = t.now();
    let (at1, _) = login_as(&t, "alice", "laptop/1.0").await;
    t.advance(10);
    let (at2, rt2) = login_as(&t, "alice", "phone/2.0").await;
    login_as(&t, "bob", "bob-agent").await;
    t.advance(5);
    // A refresh moves last_used_at of the second session only.
    let r = t.refresh(&rt2).await;
    assert_eq!(r.status, 200, "{}", r.text());

    let sessions = list(&t, &at1).await;
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    // Newest first.
    let phone = &sessions[0];
    let laptop = &sessions[1];
    assert_eq!(phone["user_agent"], "phone/2.0");
    assert_eq!(phone["created_at"], start + 10);
    assert_eq!(phone["last_used_at"], start + 15);
    assert_eq!(phone["ip"], "127.0.0.1");
    assert_eq!(laptop["user_agent"], "laptop/1.0");
    assert_eq!(laptop["created_at"], start);
    assert_eq!(laptop["last_used_at"], start);
    for s in &sessions {
        assert!(s["id"].as_str().unwrap().starts_with("ses_"));
        let mut keys: Vec<&str> = s.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "created_at",
                "expires_at",
                "id",
                "ip",
                "last_used_at",
                "user_agent"
            ]
        );
    }
    // Both of alice's tokens see the same list.
    assert_eq!(list(&t, &at2).await, sessions);

    // A logged-out session is no longer listed.
    assert_eq!(t.logout(&at1, None).await.status, 204);
    let left = list(&t, &at2).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["user_agent"], "phone/2.0");
}

#[tokio::test]
async fn an_idle_expired_session_is_not_listed_before_anyone_refreshes_it() {
    let t = TestApp::spawn().await;
    t.add_user("alice", "user").await;
    t.tokens("alice").await;
    t.advance(14 * 86_400 + 1);
    let (at, _) = t.tokens("alice").await;
    let sessions = list(&t, &at).await;
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0]["created_at"], t.now());
}

#[tokio::test]
async fn deleting_a_session_ends_its_refresh_and_access_tokens() {
    let t = TestApp::spawn().await;
    t.add_user("alice", "user").await;
    let (at1, rt1) = t.tokens("alice").await;
    let (at2, rt2) = t.tokens("alice").await;
    let sessions = list(&t, &at2).await;
    let sid1 = crate::helpers::claims(&at1)["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(sessions.iter().any(|s| s["id"] == sid1.as_str()));

    // Revoke session 1 using the token of session 2.
    assert_eq!(delete(&t, &at2, &sid1).await, (204, Value::Null));
    let r = t.refresh(&rt1).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "invalid_grant");
    let me = t.me(&at1).await;
    assert_eq!(me.status, 401);
    assert_eq!(me.json()["error"], "invalid_token");
    // Session 2 is untouched.
    assert_eq!(t.me(&at2).await.status, 200);
    assert_eq!(t.refresh(&rt2).await.status, 200);
    // A second delete of the same session is a 404: it is no longer one of the live ones.
    assert_eq!(delete(&t, &at2, &sid1).await.0, 404);

    // The verifiers hear of it as a `sid` record.
    let rs = t.resource_server("api").await;
    let feed = t.revocations(&t.client_token(&rs).await).await;
    assert_eq!(kinds(&feed), [("sid".to_owned(), sid1)]);
}

#[tokio::test]
async fn a_user_cannot_delete_another_users_session_and_clients_are_refused() {
    let t = TestApp::spawn().await;
    t.add_user("alice", "user").await;
    t.add_user("mallory", "user").await;
    let (at_a, rt_a) = t.tokens("alice").await;
    let (at_m, _) = t.tokens("mallory").await;
    let sid_a = crate::helpers::claims(&at_a)["sid"]
        .as_str()
        .unwrap()
        .to_owned();

    let (status, body) = delete(&t, &at_m, &sid_a).await;
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({"error": "not_found", "error_description": "no such resource"})
    );
    assert_eq!(delete(&t, &at_m, "ses_does-not-exist").await.0, 404);
    assert_eq!(t.refresh(&rt_a).await.status, 200, "alice's session lives");

    // A service client's token has no session: 403 on both routes.
    let svc = t
        .add_client(
            "svc",
            "service",
            &["read"],
            &["wristband"],
            TokenFormat::Jwt,
        )
        .await;
    let svc_at = t.client_token(&svc).await;
    let r = t.client.get_bearer(&t.url("/v1/sessions"), &svc_at).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"], "insufficient_scope");
    assert_eq!(delete(&t, &svc_at, &sid_a).await.0, 403);

    // No token at all: 401.
    let r = t.client.get(&t.url("/v1/sessions"), &[]).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"wristband\"")
    );
}

#[tokio::test]
async fn logout_all_ends_every_session_and_records_a_subject_cutoff() {
    let t = TestApp::spawn().await;
    t.add_user("alice", "user").await;
    t.add_user("bob", "user").await;
    let (at1, rt1) = t.tokens("alice").await;
    let (at2, rt2) = t.tokens("alice").await;
    t.advance(30);
    let (at3, rt3) = t.tokens("alice").await;
    let (bob_at, bob_rt) = t.tokens("bob").await;
    let alice = t.user_id(&at1).await;
    let cut = t.now();

    let auth = format!("Bearer {at2}");
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

    for at in [&at1, &at2, &at3] {
        let me = t.me(at).await;
        assert_eq!(me.status, 401, "every access token of alice is refused");
        assert_eq!(me.json()["error"], "invalid_token");
    }
    for rt in [&rt1, &rt2, &rt3] {
        let r = t.refresh(rt).await;
        assert_eq!(r.status, 400);
        assert_eq!(r.json()["error"], "invalid_grant");
    }
    // Bob is untouched.
    assert_eq!(t.me(&bob_at).await.status, 200);
    assert_eq!(t.refresh(&bob_rt).await.status, 200);

    let rs = t.resource_server("api").await;
    let feed = t.revocations(&t.client_token(&rs).await).await;
    assert_eq!(feed.len(), 1, "{feed:?}");
    assert_eq!(feed[0]["kind"], "sub");
    assert_eq!(feed[0]["value"], alice.as_str());
    assert_eq!(feed[0]["before"], cut);
    assert_eq!(feed[0]["expires_at"], cut + 900 + 60);

    // A later login works again (the cutoff covers only tokens issued until then).
    t.advance(1);
    let (at4, _) = t.tokens("alice").await;
    assert_eq!(t.me(&at4).await.status, 200);
    assert_eq!(list(&t, &at4).await.len(), 1);

    // The ended token cannot call logout-all again.
    let r = t
        .client
        .send(
            Method::POST,
            &t.url("/v1/logout-all"),
            &[("authorization", &auth)],
            b"",
        )
        .await;
    assert_eq!(r.status, 401);
}

/// The address a session records, when logging in with these headers.
async fn recorded_ip(t: &TestApp, user: &str, headers: &[(&str, &str)]) -> String {
    // Newest first: a second apart, this login's session leads the list.
    t.advance(1);
    let r = t
        .post_json(
            "/v1/login",
            &json!({"username": user, "password": PASSWORD}),
            headers,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let at = r.json()["access_token"].as_str().unwrap().to_owned();
    list(t, &at).await[0]["ip"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn x_forwarded_for_counts_only_from_a_trusted_proxy() {
    // By default anyone could write the header: it is ignored.
    let t = TestApp::spawn().await;
    t.add_user("alice", "user").await;
    let forged = [("x-forwarded-for", "198.51.100.4")];
    assert_eq!(recorded_ip(&t, "alice", &forged).await, "127.0.0.1");

    // Behind a trusted proxy (here the test's own address) the right-most address the
    // proxies did not add is the client; entries a client wrote to its left do not count.
    let t = TestApp::spawn_with(|c| c.trusted_proxies = vec!["127.0.0.0/8".into()]).await;
    t.add_user("alice", "user").await;
    assert_eq!(recorded_ip(&t, "alice", &forged).await, "198.51.100.4");
    let chain = [("x-forwarded-for", "6.6.6.6, 198.51.100.9, 127.0.0.5")];
    assert_eq!(recorded_ip(&t, "alice", &chain).await, "198.51.100.9");

    // Throttling keys on that address: one client's failures do not slow another's login
    // to the same account through the same proxy.
    for _ in 0..6 {
        let r = t
            .post_json(
                "/v1/login",
                &json!({"username": "alice", "password": "wrong password here"}),
                &[("x-forwarded-for", "203.0.113.66")],
            )
            .await;
        assert!(r.status == 401 || r.status == 429, "{}", r.text());
    }
    let r = t
        .post_json(
            "/v1/login",
            &json!({"username": "alice", "password": PASSWORD}),
            &[("x-forwarded-for", "203.0.113.66")],
        )
        .await;
    assert_eq!(r.status, 429, "the attacker's address is throttled");
    assert_eq!(
        recorded_ip(&t, "alice", &[("x-forwarded-for", "198.51.100.4")]).await,
        "198.51.100.4",
        "the real user's address is not"
    );
}
