use std::collections::BTreeSet;

use serde_json::json;
use wristband_jose::{dangerous, Jwks, KeySet, Policy, UnixTime, UnverifiedToken};

use crate::helpers::{TestApp, PASSWORD, START};

#[tokio::test]
async fn login_issues_rfc9068_tokens_that_verify_with_the_published_jwks() {
    let t = TestApp::spawn().await;
    let user_id = t.add_user("alice", "admin").await;
    let (at, rt) = t.tokens("alice").await;
    assert_eq!(rt.len(), 43, "256-bit base64url refresh token");

    // Verify with nothing but the JWKS.
    let jwks_res = t.client.get(&t.url("/.well-known/jwks.json"), &[]).await;
    assert_eq!(jwks_res.status, 200);
    let cc = jwks_res.header("cache-control").unwrap();
    assert!(cc.contains("max-age=300"), "{cc}");
    let jwks: Jwks = serde_json::from_slice(&jwks_res.body).unwrap();
    for k in &jwks.keys {
        assert!(!k.has_private_material());
    }
    let (keys, skipped) = KeySet::from_jwks(&jwks);
    assert!(skipped.is_empty());
    let policy = Policy::builder(t.base.clone(), "wristband")
        .build()
        .unwrap();
    let v = UnverifiedToken::parse(&at)
        .unwrap()
        .verify(&keys, &policy, UnixTime::from_secs(START))
        .unwrap();
    assert_eq!(v.sub, user_id);
    assert_ne!(v.sub, "alice", "sub is an opaque id, never the username");
    assert_eq!(v.role.as_deref(), Some("admin"));
    assert_eq!(v.client_id.as_deref(), Some("wristband"));
    assert_eq!(v.exp.as_secs() - v.iat.as_secs(), 900);

    // Exactly the RFC 9068 claims, and nothing personal.
    let decoded = dangerous::decode_without_verification(&at).unwrap();
    assert_eq!(decoded.header["typ"], "at+jwt");
    assert!(decoded.header["kid"].is_string());
    let names: BTreeSet<_> = decoded
        .payload
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let expected: BTreeSet<_> = [
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "iat_ms",
        "nbf",
        "jti",
        "client_id",
        "role",
        "sid",
        "amr",
        "acr",
        "auth_time",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(names, expected);
    // `iat` stays an integer NumericDate; `iat_ms` is the same instant in milliseconds.
    let iat = decoded.payload["iat"].as_u64().unwrap();
    assert_eq!(decoded.payload["iat_ms"].as_u64().unwrap() / 1000, iat);
    assert!(!decoded.payload.to_string().contains("alice"));
}

#[tokio::test]
async fn me_logout_and_metadata() {
    let t = TestApp::spawn().await;
    let id = t.add_user("bob", "user").await;
    let (at, rt) = t.tokens("bob").await;
    let me = t.me(&at).await;
    assert_eq!(me.status, 200);
    assert_eq!(
        me.json(),
        json!({"id": id, "username": "bob", "role": "user"})
    );

    let meta = t
        .client
        .get(&t.url("/.well-known/oauth-authorization-server"), &[])
        .await
        .json();
    assert_eq!(meta["issuer"], t.base);
    assert_eq!(
        meta["jwks_uri"],
        format!("{}/.well-known/jwks.json", t.base)
    );
    assert_eq!(
        meta["access_token_signing_alg_values_supported"],
        json!(["ES256"])
    );
    assert!(meta["grant_types_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("refresh_token")));

    let out = t.logout(&at, None).await;
    assert_eq!(out.status, 204);
    // The session is over: its refresh token and, at the auth service, its access token.
    assert_eq!(t.refresh(&rt).await.status, 400);
    let me = t.me(&at).await;
    assert_eq!(me.status, 401);
    assert_eq!(
        me.header("www-authenticate").unwrap(),
        "Bearer realm=\"wristband\", error=\"invalid_token\""
    );
}

#[tokio::test]
async fn logout_with_a_refresh_token_of_another_session_of_the_same_user() {
    let t = TestApp::spawn().await;
    t.add_user("carol", "user").await;
    let (at1, _rt1) = t.tokens("carol").await;
    let (_at2, rt2) = t.tokens("carol").await;
    assert_eq!(t.logout(&at1, Some(&rt2)).await.status, 204);
    assert_eq!(t.refresh(&rt2).await.status, 400);
}

#[tokio::test]
async fn disabling_a_user_or_changing_the_password_ends_sessions() {
    let t = TestApp::spawn().await;
    t.add_user("dave", "user").await;
    let (_at, rt) = t.tokens("dave").await;
    let now = i64::try_from(START).unwrap();
    wristband_server::domain::users::set_password(
        &*t.store,
        t.app.record_lifetime(),
        t.app.passwords(),
        "dave",
        wristband_jose::SecretString::new("a different long passphrase".into()),
        wristband_server::domain::revoke::Millis(now * 1000),
    )
    .await
    .unwrap();
    assert_eq!(t.refresh(&rt).await.status, 400);
    assert_eq!(t.login("dave", PASSWORD).await.status, 401);
    let r = t.login("dave", "a different long passphrase").await;
    assert_eq!(r.status, 200);
    let rt = r.json()["refresh_token"].as_str().unwrap().to_owned();

    wristband_server::domain::users::set_disabled(
        &*t.store,
        t.app.record_lifetime(),
        "dave",
        true,
        wristband_server::domain::revoke::Millis(now * 1000),
    )
    .await
    .unwrap();
    assert_eq!(t.refresh(&rt).await.status, 400);
    let denied = t.login("dave", "a different long passphrase").await;
    assert_eq!(denied.status, 401);
    assert_eq!(denied.json()["error"], "invalid_credentials");
}

#[tokio::test]
async fn registration_is_off_unless_enabled() {
    let t = TestApp::spawn().await;
    let body = json!({"username": "erin", "password": PASSWORD});
    assert_eq!(t.post_json("/v1/users", &body, &[]).await.status, 404);

    let t = TestApp::spawn_with(|c| c.allow_registration = true).await;
    let r = t.post_json("/v1/users", &body, &[]).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["username"], "erin");
    assert!(r.json().get("password_hash").is_none());
    assert_eq!(t.post_json("/v1/users", &body, &[]).await.status, 409);
    let weak = t
        .post_json(
            "/v1/users",
            &json!({"username": "frank", "password": "password1"}),
            &[],
        )
        .await;
    assert_eq!(weak.status, 400);
    assert!(weak.json()["error_description"]
        .as_str()
        .unwrap()
        .contains("weak"));
    assert_eq!(t.login("erin", PASSWORD).await.status, 200);
}

#[tokio::test]
async fn health_ready_and_metrics() {
    let t = TestApp::spawn().await;
    t.add_user("gina", "user").await;
    t.tokens("gina").await;
    assert_eq!(t.login("gina", "nope-nope-nope").await.status, 401);
    assert_eq!(t.client.get(&t.url("/healthz"), &[]).await.status, 200);
    assert_eq!(t.client.get(&t.url("/readyz"), &[]).await.status, 200);
    let m = t.client.get(&t.url("/metrics"), &[]).await.text();
    assert!(m.contains("wristband_tokens_issued_total 1"), "{m}");
    assert!(
        m.contains("wristband_logins_total{outcome=\"ok\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("wristband_logins_total{outcome=\"failed\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("wristband_http_request_duration_seconds_bucket"),
        "{m}"
    );

    // The store goes away: readiness and store-backed calls answer 503, never 500.
    t.store.close().await;
    let r = t.client.get(&t.url("/readyz"), &[]).await;
    assert_eq!(r.status, 503);
    let r = t.login("gina", PASSWORD).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["error"], "temporarily_unavailable");
    assert_eq!(t.client.get(&t.url("/healthz"), &[]).await.status, 200);
}
