//! `POST /oauth2/token` (RFC 6749): client credentials, refresh, and every §5.2 error.

use serde_json::{json, Value};
use wristband_jose::{Jwks, KeySet, Policy, UnixTime, UnverifiedToken};
use wristband_server::domain::TokenFormat;

use crate::helpers::{basic, claims, TestApp, TestClient, START};

async fn svc(t: &TestApp) -> TestClient {
    t.add_client(
        "reports",
        "service",
        &["orders:read", "orders:write"],
        &["orders-api", "billing-api"],
        TokenFormat::Jwt,
    )
    .await
}

/// Asserts an RFC 6749 §5.2 error: status and exactly `{"error", "error_description"}`.
fn oauth_error(r: &wristband_testkit::http::TestResponse, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    let j = r.json();
    let obj = j.as_object().unwrap();
    assert_eq!(obj.len(), 2, "{j}");
    assert_eq!(j["error"], code, "{j}");
    assert!(!j["error_description"].as_str().unwrap().is_empty());
    if status == 401 {
        assert_eq!(
            r.header("www-authenticate"),
            Some("Basic realm=\"wristband\"")
        );
    }
}

async fn keys(t: &TestApp) -> KeySet {
    let jwks: Jwks = serde_json::from_slice(
        &t.client
            .get(&t.url("/.well-known/jwks.json"), &[])
            .await
            .body,
    )
    .unwrap();
    KeySet::from_jwks(&jwks).0
}

#[tokio::test]
async fn client_credentials_with_basic_or_form_authentication() {
    let t = TestApp::spawn().await;
    let c = svc(&t).await;
    let keys = keys(&t).await;

    let by_basic = t
        .post_form(
            "/oauth2/token",
            &[("grant_type", "client_credentials")],
            &[("authorization", &c.basic())],
        )
        .await;
    let by_form = t
        .post_form(
            "/oauth2/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &c.id),
                ("client_secret", &c.secret),
            ],
            &[],
        )
        .await;
    for r in [by_basic, by_form] {
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("cache-control"), Some("no-store"));
        let j = r.json();
        let at = j["access_token"].as_str().unwrap();
        assert_eq!(
            j,
            json!({
                "access_token": at,
                "token_type": "Bearer",
                "expires_in": 900,
                "scope": "orders:read orders:write",
            })
        );
        // The JWT verifies with the published keys, for the first registered audience.
        let policy = Policy::builder(t.base.clone(), "orders-api")
            .build()
            .unwrap();
        let v = UnverifiedToken::parse(at)
            .unwrap()
            .verify(&keys, &policy, UnixTime::from_secs(START))
            .unwrap();
        assert_eq!(v.sub, c.id);
        assert_eq!(v.client_id.as_deref(), Some(c.id.as_str()));
        assert_eq!(v.scope.as_deref(), Some("orders:read orders:write"));
        assert_eq!(v.aud.as_slice(), ["orders-api"]);
        assert!(v.sid.is_none() && v.role.is_none());
    }
}

#[tokio::test]
async fn scope_and_audience_are_bounded_by_the_registration() {
    let t = TestApp::spawn().await;
    let c = svc(&t).await;
    let ask = |scope: Option<&'static str>, aud: Option<&'static str>| {
        let basic = c.basic();
        let t = &t;
        async move {
            let mut p = vec![("grant_type", "client_credentials")];
            if let Some(s) = scope {
                p.push(("scope", s));
            }
            if let Some(a) = aud {
                p.push(("audience", a));
            }
            t.post_form("/oauth2/token", &p, &[("authorization", &basic)])
                .await
        }
    };

    let r = ask(Some("orders:read"), Some("billing-api")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["scope"], "orders:read");
    let c1 = claims(r.json()["access_token"].as_str().unwrap());
    assert_eq!(c1["scope"], "orders:read");
    assert_eq!(c1["aud"], "billing-api");

    for (scope, aud) in [
        (Some("admin"), None),
        (Some("orders:read admin"), None),
        (Some("orders"), None),
        (Some(" "), None),
        (None, Some("wristband")),
        (None, Some("orders-api billing-api")),
        (Some("orders:read"), Some("other-api")),
    ] {
        let r = ask(scope, aud).await;
        oauth_error(&r, 400, "invalid_scope");
    }
}

/// Issue 11, item 7: a machine token never carries the user audience unless the client
/// was registered with it, so an API configured with the user audience refuses it.
#[tokio::test]
async fn machine_tokens_never_carry_the_user_audience() {
    let t = TestApp::spawn().await;
    let keys = keys(&t).await;
    let user_policy = Policy::builder(t.base.clone(), "wristband")
        .build()
        .unwrap();
    let now = UnixTime::from_secs(START);

    // A service client registered without an audience is refused a token, with a
    // description that tells the administrator what to do.
    let plain = t
        .add_client("plain", "service", &[], &[], TokenFormat::Jwt)
        .await;
    let r = t
        .post_form(
            "/oauth2/token",
            &[("grant_type", "client_credentials")],
            &[("authorization", &plain.basic())],
        )
        .await;
    oauth_error(&r, 400, "invalid_scope");
    assert!(
        r.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("--audience"),
        "{}",
        r.text()
    );

    // A resource server's token names only the auth service's feed: an API configured
    // with the user audience refuses it, whatever audience it asks for.
    let rs = t.resource_server("orders-api").await;
    let at = t.client_token(&rs).await;
    let c = claims(&at);
    assert_eq!(c["aud"], format!("{}/v1/revocations", t.base));
    let refused = UnverifiedToken::parse(&at)
        .unwrap()
        .verify(&keys, &user_policy, now)
        .unwrap_err();
    assert_eq!(refused.kind(), wristband_jose::ErrorKind::WrongAudience);
    for aud in ["wristband", "orders-api"] {
        let r = t
            .post_form(
                "/oauth2/token",
                &[("grant_type", "client_credentials"), ("audience", aud)],
                &[("authorization", &rs.basic())],
            )
            .await;
        oauth_error(&r, 400, "invalid_scope");
    }
    // The server itself does not take it as a user's token either...
    assert_eq!(t.me(&at).await.status, 403);
    // ...but the feed still accepts it by the client's identity.
    let r = t.client.get_bearer(&t.url("/v1/revocations"), &at).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn bad_client_authentication_is_invalid_client_with_a_basic_challenge() {
    let t = TestApp::spawn().await;
    let c = svc(&t).await;
    let cc = [("grant_type", "client_credentials")];
    type Case<'a> = (Vec<(&'a str, &'a str)>, Vec<(&'a str, String)>);
    let cases: Vec<Case> = vec![
        (
            cc.to_vec(),
            vec![("authorization", basic(&c.id, "wbs_wrong"))],
        ),
        (
            cc.to_vec(),
            vec![("authorization", basic("cli_unknown", &c.secret))],
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &c.id),
                ("client_secret", "nope"),
            ],
            vec![],
        ),
        // No client authentication at all.
        (cc.to_vec(), vec![]),
        // A registered client without its secret.
        (
            vec![("grant_type", "client_credentials"), ("client_id", &c.id)],
            vec![],
        ),
        (
            cc.to_vec(),
            vec![("authorization", "Basic !!!not-base64".to_owned())],
        ),
    ];
    for (pairs, headers) in cases {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = t.post_form("/oauth2/token", &pairs, &h).await;
        oauth_error(&r, 401, "invalid_client");
    }
}

#[tokio::test]
async fn malformed_requests_are_invalid_request_or_unsupported_grant_type() {
    let t = TestApp::spawn().await;
    let c = svc(&t).await;
    let auth = c.basic();
    let a = [("authorization", auth.as_str())];

    // Basic and form credentials together.
    let r = t
        .post_form(
            "/oauth2/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &c.id),
                ("client_secret", &c.secret),
            ],
            &a,
        )
        .await;
    oauth_error(&r, 400, "invalid_request");
    // Basic plus a form secret alone is two methods as well (RFC 6749 §2.3).
    let r = t
        .post_form(
            "/oauth2/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_secret", &c.secret),
            ],
            &a,
        )
        .await;
    oauth_error(&r, 400, "invalid_request");

    let r = t.post_form("/oauth2/token", &[("scope", "x")], &a).await;
    oauth_error(&r, 400, "invalid_request");

    // `authorization_code` is supported now (tests in `oidc.rs`): without a code it is an
    // invalid request.
    let r = t
        .post_form("/oauth2/token", &[("grant_type", "authorization_code")], &a)
        .await;
    oauth_error(&r, 400, "invalid_request");
    for grant in ["password", "urn:x", "CLIENT_CREDENTIALS"] {
        let r = t
            .post_form(
                "/oauth2/token",
                &[("grant_type", grant), ("username", "a"), ("password", "b")],
                &a,
            )
            .await;
        oauth_error(&r, 400, "unsupported_grant_type");
    }

    // A repeated parameter (RFC 6749 §3.1).
    let r = t
        .post_form(
            "/oauth2/token",
            &[
                ("grant_type", "client_credentials"),
                ("grant_type", "client_credentials"),
            ],
            &a,
        )
        .await;
    oauth_error(&r, 400, "invalid_request");
    let r = t
        .post_form(
            "/oauth2/token",
            &[
                ("grant_type", "client_credentials"),
                ("scope", "orders:read"),
                ("scope", "orders:write"),
            ],
            &a,
        )
        .await;
    oauth_error(&r, 400, "invalid_request");

    // Not a form.
    let json_body = br#"{"grant_type":"client_credentials"}"#;
    let r = t
        .client
        .send(
            http::Method::POST,
            &t.url("/oauth2/token"),
            &[("content-type", "application/json"), a[0]],
            json_body,
        )
        .await;
    oauth_error(&r, 400, "invalid_request");
    let r = t
        .client
        .send(
            http::Method::POST,
            &t.url("/oauth2/token"),
            &[a[0]],
            b"grant_type=client_credentials",
        )
        .await;
    oauth_error(&r, 400, "invalid_request");

    // The first-party public client cannot use client_credentials.
    let r = t
        .post_form(
            "/oauth2/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "wristband"),
            ],
            &[],
        )
        .await;
    oauth_error(&r, 400, "unauthorized_client");

    // refresh_token grant without a refresh_token.
    let r = t
        .post_form(
            "/oauth2/token",
            &[("grant_type", "refresh_token"), ("client_id", "wristband")],
            &[],
        )
        .await;
    oauth_error(&r, 400, "invalid_request");
}

#[tokio::test]
async fn refresh_token_grant_rotates_like_v1_refresh() {
    let t = TestApp::spawn().await;
    t.add_user("alice", "user").await;
    let (at0, rt0) = t.tokens("alice").await;
    let grant = |rt: String| {
        let t = &t;
        async move {
            t.post_form(
                "/oauth2/token",
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &rt),
                    ("client_id", "wristband"),
                ],
                &[],
            )
            .await
        }
    };
    let r = grant(rt0.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let j = r.json();
    let at1 = j["access_token"].as_str().unwrap().to_owned();
    let rt1 = j["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(j["token_type"], "Bearer");
    assert_eq!(j["expires_in"], 900);
    assert_ne!(rt1, rt0);
    assert_eq!(claims(&at1)["sid"], claims(&at0)["sid"]);
    assert_eq!(t.me(&at1).await.status, 200);

    // The successor works at /v1/refresh too: one family, one rotation.
    t.advance(11);
    let r = t.refresh(&rt1).await;
    assert_eq!(r.status, 200);
    // Reusing the first token, past the grace window, ends the session.
    let r = grant(rt0).await;
    oauth_error(&r, 400, "invalid_grant");
    assert_eq!(t.me(&at1).await.status, 401);

    let r = grant("x".repeat(43)).await;
    oauth_error(&r, 400, "invalid_grant");
}

#[tokio::test]
async fn a_service_client_cannot_use_a_users_refresh_token() {
    let t = TestApp::spawn().await;
    let c = svc(&t).await;
    t.add_user("alice", "user").await;
    let (_, rt) = t.tokens("alice").await;
    let r = t
        .post_form(
            "/oauth2/token",
            &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
            &[("authorization", &c.basic())],
        )
        .await;
    oauth_error(&r, 400, "invalid_grant");
    // The attempt did not consume or end the session.
    assert_eq!(t.refresh(&rt).await.status, 200);
}

#[tokio::test]
async fn the_metadata_lists_the_oauth_endpoints() {
    let t = TestApp::spawn().await;
    let m: Value = t
        .client
        .get(&t.url("/.well-known/oauth-authorization-server"), &[])
        .await
        .json();
    assert_eq!(m["token_endpoint"], format!("{}/oauth2/token", t.base));
    assert_eq!(
        m["revocation_endpoint"],
        format!("{}/oauth2/revoke", t.base)
    );
    assert_eq!(
        m["introspection_endpoint"],
        format!("{}/oauth2/introspect", t.base)
    );
    // Only what the token endpoint accepts: the password grant is not one of them.
    assert_eq!(
        m["grant_types_supported"],
        json!(["refresh_token", "client_credentials", "authorization_code"])
    );
    assert_eq!(
        m["authorization_endpoint"],
        format!("{}/oauth2/authorize", t.base)
    );
}

#[tokio::test]
async fn a_store_outage_is_503_never_invalid_grant_or_invalid_client() {
    let t = TestApp::spawn().await;
    let c = svc(&t).await;
    let rs = t.resource_server("rs").await;
    t.add_user("alice", "user").await;
    let (at, rt) = t.tokens("alice").await;
    t.store.close().await;

    let first_party = ("client_id", "wristband");
    let calls = [
        t.post_form(
            "/oauth2/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt),
                first_party,
            ],
            &[],
        )
        .await,
        t.post_form(
            "/oauth2/token",
            &[("grant_type", "client_credentials")],
            &[("authorization", &c.basic())],
        )
        .await,
        t.post_form("/oauth2/revoke", &[("token", &rt), first_party], &[])
            .await,
        t.post_form("/oauth2/revoke", &[("token", &at), first_party], &[])
            .await,
        t.introspect(&rs, &at).await,
    ];
    for r in &calls {
        // A client that hears invalid_grant throws its refresh token away: an outage must
        // say "retry" instead.
        oauth_error(r, 503, "temporarily_unavailable");
        assert_eq!(r.header("retry-after"), Some("1"));
        assert_eq!(r.header("www-authenticate"), None);
    }
}

#[tokio::test]
async fn a_rotated_secret_replaces_the_old_one_and_a_removed_client_is_unknown() {
    let t = TestApp::spawn().await;
    let c = svc(&t).await;
    let rotated = wristband_server::domain::oauth::rotate_client_secret(
        &*t.store,
        t.app.record_lifetime(),
        "reports",
        t.now_ms(),
    )
    .await
    .unwrap();
    assert_eq!(rotated.record.id, c.id);
    let fresh = TestClient {
        id: c.id.clone(),
        secret: rotated.secret.expose().to_owned(),
    };
    assert_ne!(fresh.secret, c.secret);
    let cc = [("grant_type", "client_credentials")];
    let r = t
        .post_form("/oauth2/token", &cc, &[("authorization", &c.basic())])
        .await;
    oauth_error(&r, 401, "invalid_client");
    let token = t.client_token(&fresh).await;
    let now = i64::try_from(START).unwrap();

    wristband_server::domain::oauth::remove_client(
        &*t.store,
        t.app.record_lifetime(),
        "reports",
        wristband_server::domain::revoke::Millis(now * 1000),
    )
    .await
    .unwrap();
    let r = t
        .post_form("/oauth2/token", &cc, &[("authorization", &fresh.basic())])
        .await;
    oauth_error(&r, 401, "invalid_client");
    // Its tokens are revoked too: a subject record covers them at the auth service and
    // reaches every verifier through the feed.
    assert!(t.app.inspect(&token).await.unwrap().is_none());
}
