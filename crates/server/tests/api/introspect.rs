//! `POST /oauth2/revoke` (RFC 7009) and `POST /oauth2/introspect` (RFC 7662).

use serde_json::json;
use wristband_server::domain::TokenFormat;

use crate::helpers::{basic, claims, TestApp, TestClient};

fn inactive(r: &wristband_testkit::http::TestResponse) {
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"active": false}));
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

fn active(r: &wristband_testkit::http::TestResponse) -> serde_json::Value {
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["active"], true, "{j}");
    j
}

async fn svc(t: &TestApp, name: &str) -> TestClient {
    t.add_client(name, "service", &["jobs"], &["jobs-api"], TokenFormat::Jwt)
        .await
}

#[tokio::test]
async fn revoke_answers_200_for_unknown_tokens_and_401_for_bad_clients() {
    let t = TestApp::spawn().await;
    let c = svc(&t, "svc").await;
    for token in [
        "nope",
        &"a".repeat(43),
        "a.b.c",
        "wbo_short",
        &format!("wbo_{}", "x".repeat(43)),
    ] {
        let r = t.revoke(&c, token, None).await;
        assert_eq!(r.status, 200, "{token}: {}", r.text());
        assert!(r.body.is_empty());
        let r = t.revoke(&c, token, Some("access_token")).await;
        assert_eq!(r.status, 200);
        let r = t.revoke(&c, token, Some("refresh_token")).await;
        assert_eq!(r.status, 200);
    }
    let bad = TestClient {
        id: c.id.clone(),
        secret: "wbs_wrong".into(),
    };
    let r = t.revoke(&bad, "nope", None).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"wristband\"")
    );
    assert_eq!(r.json()["error"], "invalid_client");
    let r = t
        .post_form("/oauth2/revoke", &[("token", "nope")], &[])
        .await;
    assert_eq!(r.status, 401);
    let r = t
        .post_form("/oauth2/revoke", &[], &[("authorization", &c.basic())])
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "invalid_request");
}

#[tokio::test]
async fn revoking_a_refresh_token_ends_its_session() {
    let t = TestApp::spawn().await;
    let rs = t.resource_server("rs").await;
    t.add_user("alice", "user").await;
    let (at, rt) = t.tokens("alice").await;
    active(&t.introspect(&rs, &at).await);
    let r = t
        .post_form(
            "/oauth2/revoke",
            &[
                ("token", rt.as_str()),
                ("token_type_hint", "refresh_token"),
                ("client_id", "wristband"),
            ],
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(t.refresh(&rt).await.status, 400);
    assert_eq!(t.me(&at).await.status, 401);
    inactive(&t.introspect(&rs, &at).await);
}

#[tokio::test]
async fn revoking_an_access_token_with_a_wrong_hint_still_works() {
    let t = TestApp::spawn().await;
    let rs = t.resource_server("rs").await;
    let c = svc(&t, "svc").await;
    let at = t.client_token(&c).await;
    active(&t.introspect(&rs, &at).await);
    // The hint is only a hint (RFC 7009 §2.1).
    let r = t.revoke(&c, &at, Some("refresh_token")).await;
    assert_eq!(r.status, 200);
    inactive(&t.introspect(&rs, &at).await);

    // A user's access token, revoked by the first-party client: refused at /v1/me too.
    t.add_user("alice", "user").await;
    let (uat, urt) = t.tokens("alice").await;
    let r = t
        .post_form(
            "/oauth2/revoke",
            &[("token", uat.as_str()), ("client_id", "wristband")],
            &[],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(t.me(&uat).await.status, 401);
    inactive(&t.introspect(&rs, &uat).await);
    // Only that token: the session still refreshes.
    let r = t.refresh(&urt).await;
    assert_eq!(r.status, 200);
    let fresh = r.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(t.me(&fresh).await.status, 200);
}

#[tokio::test]
async fn a_client_cannot_revoke_another_clients_tokens() {
    let t = TestApp::spawn().await;
    let rs = t.resource_server("rs").await;
    let a = svc(&t, "a").await;
    let b = svc(&t, "b").await;
    let at_a = t.client_token(&a).await;
    let r = t.revoke(&b, &at_a, None).await;
    assert_eq!(r.status, 200, "no hint that the token exists");
    active(&t.introspect(&rs, &at_a).await);

    // Nor a user's refresh or access token.
    t.add_user("alice", "user").await;
    let (uat, urt) = t.tokens("alice").await;
    assert_eq!(t.revoke(&b, &urt, None).await.status, 200);
    assert_eq!(t.revoke(&b, &uat, None).await.status, 200);
    assert_eq!(t.me(&uat).await.status, 200);
    assert_eq!(t.refresh(&urt).await.status, 200);
}

#[tokio::test]
async fn introspection_of_an_active_token_has_every_field() {
    let t = TestApp::spawn().await;
    let rs = t.resource_server("rs").await;
    let c = svc(&t, "svc").await;
    let at = t.client_token(&c).await;
    let cl = claims(&at);
    let j = active(&t.introspect(&rs, &at).await);
    assert_eq!(j["sub"], c.id.as_str());
    assert_eq!(j["client_id"], c.id.as_str());
    assert_eq!(j["scope"], "jobs");
    assert_eq!(j["aud"], "jobs-api");
    assert_eq!(j["iss"], t.base.as_str());
    assert_eq!(j["token_type"], "Bearer");
    assert_eq!(j["iat"], t.now());
    assert_eq!(j["exp"], t.now() + 900);
    assert_eq!(j["jti"], cl["jti"]);

    // A user's token also carries its session and role; with form authentication.
    t.add_user("alice", "admin").await;
    let (uat, _) = t.tokens("alice").await;
    let r = t
        .post_form(
            "/oauth2/introspect",
            &[
                ("token", uat.as_str()),
                ("client_id", &rs.id),
                ("client_secret", &rs.secret),
            ],
            &[],
        )
        .await;
    let j = active(&r);
    let ucl = claims(&uat);
    assert_eq!(j["sub"], ucl["sub"]);
    assert_eq!(j["client_id"], "wristband");
    assert_eq!(j["sid"], ucl["sid"]);
    assert_eq!(j["role"], "admin");
    assert!(j.get("scope").is_none());
}

#[tokio::test]
async fn a_token_for_another_audience_introspects_and_revokes() {
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
    let c = t
        .add_client(
            "svc",
            "service",
            &["jobs"],
            &["orders-api"],
            TokenFormat::Jwt,
        )
        .await;
    let at = t.client_token(&c).await;
    assert_eq!(claims(&at)["aud"], "orders-api");
    let j = active(&t.introspect(&rs, &at).await);
    assert_eq!(j["aud"], "orders-api");
    assert_eq!(t.revoke(&c, &at, None).await.status, 200);
    inactive(&t.introspect(&rs, &at).await);
}

#[tokio::test]
async fn expired_revoked_malformed_and_unknown_tokens_are_just_inactive() {
    let t = TestApp::spawn().await;
    let rs = t.resource_server("rs").await;
    t.add_user("alice", "user").await;
    t.add_user("bob", "user").await;

    // By sid (logout) and by jti (logout revokes the presented token).
    let (at1, _) = t.tokens("alice").await;
    let (at2, _) = t.tokens("alice").await;
    assert_eq!(t.logout(&at1, None).await.status, 204);
    inactive(&t.introspect(&rs, &at1).await);
    active(&t.introspect(&rs, &at2).await);

    // By sub (logout-all).
    let (bob1, _) = t.tokens("bob").await;
    let (bob2, _) = t.tokens("bob").await;
    let auth = format!("Bearer {bob1}");
    let r = t
        .client
        .send(
            http::Method::POST,
            &t.url("/v1/logout-all"),
            &[("authorization", &auth)],
            b"",
        )
        .await;
    assert_eq!(r.status, 204);
    inactive(&t.introspect(&rs, &bob1).await);
    inactive(&t.introspect(&rs, &bob2).await);

    // By jti (RFC 7009), of a service token without a session.
    let c = svc(&t, "svc").await;
    let sat = t.client_token(&c).await;
    assert_eq!(t.revoke(&c, &sat, Some("access_token")).await.status, 200);
    inactive(&t.introspect(&rs, &sat).await);

    // Malformed and unknown.
    // One changed character at the start of the signature.
    let dot = at2.rfind('.').unwrap() + 1;
    let flip = if at2[dot..].starts_with('A') {
        "B"
    } else {
        "A"
    };
    let tampered = format!("{}{flip}{}", &at2[..dot], &at2[dot + 1..]);
    assert_ne!(tampered, at2);
    for token in [
        "",
        "garbage",
        "a.b.c",
        tampered.as_str(),
        "wbo_short",
        &format!("wbo_{}", "x".repeat(43)),
        &"r".repeat(43),
    ] {
        inactive(&t.introspect(&rs, token).await);
    }

    // Expired: the clock passes exp (plus the 5 s leeway).
    t.advance(900 + 6);
    inactive(&t.introspect(&rs, &at2).await);
}

#[tokio::test]
async fn only_resource_servers_may_introspect() {
    let t = TestApp::spawn().await;
    let c = svc(&t, "svc").await;
    let at = t.client_token(&c).await;
    let r = t.introspect(&c, &at).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "unauthorized_client");
    assert_eq!(r.json().as_object().unwrap().len(), 2);

    let r = t
        .post_form(
            "/oauth2/introspect",
            &[("token", at.as_str()), ("client_id", "wristband")],
            &[],
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "unauthorized_client");

    let rs = t.resource_server("rs").await;
    for auth in [basic(&rs.id, "wbs_wrong"), basic("cli_nobody", &rs.secret)] {
        let r = t
            .post_form(
                "/oauth2/introspect",
                &[("token", at.as_str())],
                &[("authorization", &auth)],
            )
            .await;
        assert_eq!(r.status, 401);
        assert_eq!(r.json()["error"], "invalid_client");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Basic realm=\"wristband\"")
        );
    }
    let r = t
        .post_form("/oauth2/introspect", &[("token", at.as_str())], &[])
        .await;
    assert_eq!(r.status, 401);
}
