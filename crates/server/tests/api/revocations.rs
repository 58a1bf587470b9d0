//! Revocation records, their sources and lifetimes, and `GET /v1/revocations`.

use serde_json::{json, Value};
use wristband_jose::SecretString;
use wristband_server::domain::{users, TokenFormat};
use wristband_server::store::{RevocationKind, Store};

use crate::helpers::{claims, kinds, TestApp, TestClient};

const TTL: i64 = 900;
const SLACK: i64 = 60;

fn pair(kind: &str, value: &str) -> (String, String) {
    (kind.to_owned(), value.to_owned())
}

async fn feed(t: &TestApp) -> Vec<Value> {
    let (_, at) = reader(t).await;
    t.revocations(&at).await
}

async fn reader(t: &TestApp) -> (TestClient, String) {
    let rs = t.resource_server("feed-reader").await;
    let at = t.client_token(&rs).await;
    (rs, at)
}

#[tokio::test]
async fn logout_records_the_session_and_the_presented_token() {
    let t = TestApp::spawn().await;
    t.add_user("alice", "user").await;
    let (at, _) = t.tokens("alice").await;
    let c = claims(&at);
    let now = t.now();
    t.advance(100);
    assert_eq!(t.logout(&at, None).await.status, 204);

    let records = feed(&t).await;
    assert_eq!(
        kinds(&records),
        [
            pair("sid", c["sid"].as_str().unwrap()),
            pair("jti", c["jti"].as_str().unwrap())
        ]
    );
    // A session record lives one access-token lifetime (plus slack) after it is made; a
    // jti record until that token's expiry (plus slack).
    assert_eq!(records[0]["expires_at"], now + 100 + TTL + SLACK);
    assert_eq!(records[1]["expires_at"], c["exp"].as_i64().unwrap() + SLACK);
    assert!(records[0].get("before").is_none());
    assert!(records[0]["id"].as_i64().unwrap() < records[1]["id"].as_i64().unwrap());
}

#[tokio::test]
async fn user_disable_password_change_and_role_change_record_a_subject_cutoff() {
    let t = TestApp::spawn().await;
    let (_, reader_at) = reader(&t).await;
    let life = t.app.record_lifetime();
    let mut expected = Vec::new();
    for (name, change) in [("dis", 0), ("pw", 1), ("role", 2)] {
        let id = t.add_user(name, "user").await;
        let (at, rt) = t.tokens(name).await;
        t.advance(7);
        let now = t.now();
        match change {
            0 => {
                users::set_disabled(&*t.store, life, name, true, t.now_ms())
                    .await
                    .unwrap();
            }
            1 => {
                users::set_password(
                    &*t.store,
                    life,
                    t.app.passwords(),
                    name,
                    SecretString::new("another quite long passphrase".into()),
                    t.now_ms(),
                )
                .await
                .unwrap();
            }
            _ => {
                users::set_role(&*t.store, life, name, "admin", t.now_ms())
                    .await
                    .unwrap();
            }
        }
        assert_eq!(t.me(&at).await.status, 401, "{name}: access token refused");
        assert_eq!(t.refresh(&rt).await.status, 400, "{name}: session ended");
        expected.push(json!({"kind": "sub", "value": id, "before": now,
            "before_ms": now * 1000, "expires_at": now + TTL + SLACK}));
    }
    let records: Vec<Value> = t
        .revocations(&reader_at)
        .await
        .into_iter()
        .map(|mut r| {
            r.as_object_mut().unwrap().remove("id");
            r
        })
        .collect();
    assert_eq!(records, expected);
}

#[tokio::test]
async fn refresh_reuse_records_the_session() {
    let t = TestApp::spawn().await;
    t.add_user("alice", "user").await;
    let (at, rt0) = t.tokens("alice").await;
    let r = t.refresh(&rt0).await;
    assert_eq!(r.status, 200);
    // Past the grace window the old token is a reuse: the whole session ends.
    t.advance(11);
    let reuse = t.refresh(&rt0).await;
    assert_eq!(reuse.status, 400);
    assert_eq!(reuse.json()["error"], "invalid_grant");
    assert_eq!(t.me(&at).await.status, 401);
    let records = feed(&t).await;
    assert_eq!(
        kinds(&records),
        [pair("sid", claims(&at)["sid"].as_str().unwrap())]
    );
    assert_eq!(records[0]["expires_at"], t.now() + TTL + SLACK);
}

#[tokio::test]
async fn rfc7009_revocation_records_a_session_or_a_token() {
    let t = TestApp::spawn().await;
    t.add_user("alice", "user").await;
    let (at1, rt1) = t.tokens("alice").await;
    let (at2, _rt2) = t.tokens("alice").await;
    let first_party = [("client_id", "wristband")];

    let mut p = vec![("token", rt1.as_str())];
    p.extend_from_slice(&first_party);
    let r = t.post_form("/oauth2/revoke", &p, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let mut p = vec![("token", at2.as_str()), ("token_type_hint", "access_token")];
    p.extend_from_slice(&first_party);
    let r = t.post_form("/oauth2/revoke", &p, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());

    let c1 = claims(&at1);
    let c2 = claims(&at2);
    assert_eq!(
        kinds(&feed(&t).await),
        [
            pair("sid", c1["sid"].as_str().unwrap()),
            pair("jti", c2["jti"].as_str().unwrap())
        ]
    );
    assert_eq!(t.refresh(&rt1).await.status, 400);
    assert_eq!(t.me(&at1).await.status, 401);
    assert_eq!(t.me(&at2).await.status, 401);
}

#[tokio::test]
async fn records_drop_out_after_they_expire() {
    let t = TestApp::spawn().await;
    t.add_user("alice", "user").await;
    let (at, _) = t.tokens("alice").await;
    let jti_exp = claims(&at)["exp"].as_i64().unwrap();
    t.advance(300);
    assert_eq!(t.logout(&at, None).await.status, 204);
    // sid record: now + 960 = START + 1260; jti record: exp + 60 = START + 960.
    let now = t.now();
    assert_eq!(jti_exp + SLACK, now - 300 + TTL + SLACK);

    // Just before the jti record expires: both are served.
    t.advance(u64::try_from(jti_exp + SLACK - now - 1).unwrap());
    let all = t.app.revocations_after(0, 100).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(t.app.prune().await.unwrap(), 0);

    // At its expiry the jti record is no longer served, and prune deletes it.
    t.advance(1);
    let left = t.app.revocations_after(0, 100).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].kind, RevocationKind::Sid);
    // The store still holds it until prune runs.
    assert_eq!(t.app.prune().await.unwrap(), 1);
    assert_eq!(t.app.prune().await.unwrap(), 0);

    // Over HTTP, too.
    let served = feed(&t).await;
    assert_eq!(served.len(), 1);
    assert_eq!(served[0]["kind"], "sid");

    // After the sid record's expiry nothing is left.
    t.advance(300);
    assert!(t.app.revocations_after(0, 100).await.unwrap().is_empty());
    assert_eq!(t.app.prune().await.unwrap(), 1);
}

#[tokio::test]
async fn the_feed_is_paginated_by_cursor() {
    let t = TestApp::spawn().await;
    let (_, at) = reader(&t).await;
    let now = t.now();
    for i in 0..1201 {
        t.store
            .add_revocation(
                RevocationKind::Jti,
                &format!("jti-{i}"),
                None,
                None,
                now,
                now + 100,
            )
            .await
            .unwrap();
    }
    let t = &t;
    let get = |after: i64| {
        let url = t.url(&format!("/v1/revocations?after={after}"));
        let at = at.clone();
        async move {
            let r = t.client.get_bearer(&url, &at).await;
            assert_eq!(r.status, 200, "{}", r.text());
            r.json()
        }
    };
    let p1 = get(0).await;
    let r1 = p1["revocations"].as_array().unwrap();
    assert_eq!(r1.len(), 500);
    assert_eq!(p1["has_more"], true);
    assert_eq!(p1["cursor"], r1[499]["id"]);
    assert_eq!(r1[0]["value"], "jti-0");
    assert_eq!(
        r1[0],
        json!({"id": r1[0]["id"], "kind": "jti", "value": "jti-0", "expires_at": now + 100})
    );

    let p2 = get(p1["cursor"].as_i64().unwrap()).await;
    let r2 = p2["revocations"].as_array().unwrap();
    assert_eq!(r2.len(), 500);
    assert_eq!(r2[0]["value"], "jti-500");
    assert_eq!(p2["has_more"], true);

    let p3 = get(p2["cursor"].as_i64().unwrap()).await;
    let r3 = p3["revocations"].as_array().unwrap();
    assert_eq!(r3.len(), 201);
    assert_eq!(r3[200]["value"], "jti-1200");
    assert_eq!(p3["has_more"], false);

    // Past the end: empty, and the cursor stays where it was asked.
    let end = p3["cursor"].as_i64().unwrap();
    let p4 = get(end).await;
    assert_eq!(
        p4,
        json!({"revocations": [], "cursor": end, "has_more": false})
    );
    // The helper that follows the cursor sees each record once.
    let all = t.revocations(&at).await;
    let values: std::collections::BTreeSet<_> =
        all.iter().map(|r| r["value"].as_str().unwrap()).collect();
    assert_eq!(all.len(), 1201);
    assert_eq!(values.len(), 1201);

    let bad = t
        .client
        .get_bearer(&t.url("/v1/revocations?after=abc"), &at)
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"], "invalid_request");
}

#[tokio::test]
async fn the_feed_needs_a_resource_servers_token_with_the_scope() {
    let t = TestApp::spawn().await;
    let url = t.url("/v1/revocations");

    let r = t.client.get(&url, &[]).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json(),
        json!({"error": "unauthorized", "error_description": "a bearer token is required"})
    );

    let svc = t
        .add_client(
            "svc",
            "service",
            &["read"],
            &["wristband"],
            TokenFormat::Jwt,
        )
        .await;
    let r = t.client.get_bearer(&url, &t.client_token(&svc).await).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"], "insufficient_scope");

    // Even a service client registered with the scope is not a resource server.
    let sneaky = t
        .add_client(
            "sneaky",
            "service",
            &["revocations:read"],
            &["wristband"],
            TokenFormat::Jwt,
        )
        .await;
    let r = t
        .client
        .get_bearer(&url, &t.client_token(&sneaky).await)
        .await;
    assert_eq!(r.status, 403);

    t.add_user("alice", "admin").await;
    let (user_at, _) = t.tokens("alice").await;
    assert_eq!(t.client.get_bearer(&url, &user_at).await.status, 403);

    // A resource server whose token leaves the scope out is refused too.
    let rs = t
        .add_client(
            "rs",
            "resource-server",
            &["orders:read"],
            &[],
            TokenFormat::Jwt,
        )
        .await;
    let narrow = t
        .post_form(
            "/oauth2/token",
            &[
                ("grant_type", "client_credentials"),
                ("scope", "orders:read"),
            ],
            &[("authorization", &rs.basic())],
        )
        .await;
    assert_eq!(narrow.status, 200);
    let narrow = narrow.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(t.client.get_bearer(&url, &narrow).await.status, 403);

    let r = t.client.get_bearer(&url, &t.client_token(&rs).await).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"revocations": [], "cursor": 0, "has_more": false})
    );

    let r = t.client.get_bearer(&url, "not-a-token").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "invalid_token");
}

#[tokio::test]
async fn a_resource_server_with_its_own_audience_can_read_the_feed() {
    let t = TestApp::spawn().await;
    let rs = t
        .add_client(
            "orders",
            "resource-server",
            &[],
            &["orders-api"],
            TokenFormat::Jwt,
        )
        .await;
    let at = t.client_token(&rs).await;
    // Its token names the feed, not the audience registered for it (issue 11, item 7).
    assert_eq!(claims(&at)["aud"], format!("{}/v1/revocations", t.base));
    let r = t.client.get_bearer(&t.url("/v1/revocations"), &at).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn a_public_feed_needs_no_token() {
    let t = TestApp::spawn_with(|c| c.revocation_feed_public = true).await;
    t.add_user("alice", "user").await;
    let (at, _) = t.tokens("alice").await;
    assert_eq!(t.logout(&at, None).await.status, 204);
    let r = t.client.get(&t.url("/v1/revocations"), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["revocations"].as_array().unwrap().len(), 2);
}
