//! The tower layer and extractors at the HTTP layer: RFC 6750 responses, the catalog's
//! bad tokens (H5: identical bodies), two credentials (H3), no token (H4), huge headers
//! (E1), roles, scopes and custom claims.

use std::sync::Arc;
use std::time::Duration;
use wristband_jose::Clock as _;

use crate::api_service::api_service_router;
use axum::body::Body;
use axum::routing::{get, post};
use axum::Router;
use http::{Request, StatusCode};
use serde::Deserialize;
use serde_json::json;
use wristband_jose::{Algorithm, FixedClock};
use wristband_testkit::{keys, Minter};
use wristband_verify::{
    Claims, Custom, HasScope, RequireTokenLayer, ScopeName, EXPIRED_BODY, INVALID_BODY,
};

use crate::{bearer, call, get as get_req, minter, static_verifier, Reply};

#[tokio::test]
async fn catalog_tokens_get_identical_401s() {
    let m = minter();
    let app = api_service_router(static_verifier(&m, None).await);

    let ok = call(
        &app,
        get_req(
            "/resource",
            &[("authorization", &bearer(&m.token("user-1", None)))],
        ),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);

    let mut first: Option<Reply> = None;
    for (id, token) in wristband_testkit::catalog::bad_tokens(&m) {
        let reply = call(
            &app,
            get_req("/resource", &[("authorization", &bearer(&token))]),
        )
        .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{id}");
        assert_eq!(
            reply.www(),
            r#"Bearer realm="orders", error="invalid_token""#,
            "{id}"
        );
        assert_eq!(reply.body, INVALID_BODY.as_bytes(), "{id}");
        // H5: byte-identical responses, headers included.
        match &first {
            None => first = Some(reply),
            Some(f) => assert_eq!(&reply, f, "{id} differs from the first refusal"),
        }
    }

    // D1: only an expired token says so.
    let reply = call(
        &app,
        get_req(
            "/resource",
            &[("authorization", &bearer(&m.expired("user-1")))],
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.www(),
        r#"Bearer realm="orders", error="invalid_token""#
    );
    assert_eq!(reply.body, EXPIRED_BODY.as_bytes());
    assert_eq!(reply.headers["content-type"], "application/json");
}

#[tokio::test]
async fn no_token_gets_a_bare_challenge() {
    let m = minter();
    let app = api_service_router(static_verifier(&m, None).await);
    // H4, plus schemes that are not Bearer and a token only in the query (not a source).
    for headers in [
        vec![],
        vec![("authorization", "Basic dXNlcjpwYXNz")],
        vec![("authorization", "DPoP abc")],
    ] {
        let reply = call(&app, get_req("/resource", &headers)).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.www(), r#"Bearer realm="orders""#);
        assert!(reply.body.is_empty());
    }
    let token = m.token("user-1", None);
    let reply = call(
        &app,
        get_req(&format!("/resource?access_token={token}"), &[]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.www(), r#"Bearer realm="orders""#);
    // /health needs nothing.
    let reply = call(&app, get_req("/health", &[])).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), json!({"status": "ok"}));
}

#[tokio::test]
async fn two_credentials_are_an_invalid_request() {
    let m = minter();
    let verifier = static_verifier(&m, None).await;
    let token = m.token("user-1", None);
    let auth = bearer(&token);
    let app = api_service_router(verifier.clone()).merge(
        Router::new()
            .route("/echo", post(|_: Claims, body: String| async move { body }))
            .layer(RequireTokenLayer::new(verifier)),
    );
    let expect_400 = |reply: Reply| {
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            reply.www(),
            r#"Bearer realm="orders", error="invalid_request""#
        );
        assert!(reply.body.is_empty());
    };
    // H3: two Authorization headers (even identical ones).
    expect_400(
        call(
            &app,
            get_req(
                "/resource",
                &[("authorization", &auth), ("authorization", &auth)],
            ),
        )
        .await,
    );
    // H3: header plus query parameter.
    expect_400(
        call(
            &app,
            get_req(
                &format!("/resource?a=1&access_token={token}"),
                &[("authorization", &auth)],
            ),
        )
        .await,
    );
    // H3: header plus form body.
    let form = |body: &str| {
        Request::post("/echo")
            .header("authorization", &auth)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body.to_owned()))
            .unwrap()
    };
    expect_400(call(&app, form(&format!("x=1&access_token={token}"))).await);
    // A form without a token passes, and the handler still sees the whole body.
    let reply = call(&app, form("x=1&y=2")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, b"x=1&y=2");
}

#[tokio::test]
async fn oversized_authorization_is_refused_before_decoding() {
    let m = minter();
    let app = api_service_router(static_verifier(&m, None).await);
    // E1: 8 KiB + 1 of token, 1 MiB of data, and a million dots.
    for token in [
        "a".repeat(wristband_jose::MAX_TOKEN_BYTES + 1),
        "a".repeat(1 << 20),
        ".".repeat(1_000_000),
    ] {
        let reply = call(
            &app,
            get_req("/resource", &[("authorization", &bearer(&token))]),
        )
        .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.body, INVALID_BODY.as_bytes());
    }
}

#[tokio::test]
async fn roles_gate_admin() {
    let m = minter();
    let app = api_service_router(static_verifier(&m, None).await);
    let admin = call(
        &app,
        get_req(
            "/admin",
            &[("authorization", &bearer(&m.token("boss", Some("admin"))))],
        ),
    )
    .await;
    assert_eq!(admin.status, StatusCode::OK);
    assert_eq!(admin.json(), json!({"sub": "boss", "role": "admin"}));
    for role in [Some("user"), Some("Admin"), None] {
        let reply = call(
            &app,
            get_req("/admin", &[("authorization", &bearer(&m.token("u", role)))]),
        )
        .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{role:?}");
        assert_eq!(
            reply.www(),
            r#"Bearer realm="orders", error="insufficient_scope""#
        );
        assert!(reply.body.is_empty());
    }
    // /resource shows the verified claims.
    let token = m.token("user-9", Some("user"));
    let reply = call(
        &app,
        get_req("/resource", &[("authorization", &bearer(&token))]),
    )
    .await;
    let body = reply.json();
    assert_eq!(body["sub"], "user-9");
    assert_eq!(body["role"], "user");
    assert_eq!(body["claims"]["iss"], crate::ISSUER);
    assert_eq!(body["claims"]["client_id"], Minter::CLIENT_ID);
}

struct ReadOrders;
impl ScopeName for ReadOrders {
    const NAME: &'static str = "orders:read";
}

#[derive(Deserialize)]
struct TenantClaims {
    sub: String,
    tenant: String,
}

#[tokio::test]
async fn scopes_and_custom_claims() {
    let m = minter();
    let verifier = static_verifier(&m, None).await;
    let app = Router::new()
        .route(
            "/orders",
            get(|c: HasScope<ReadOrders>| async move { c.sub.clone() }),
        )
        .route(
            "/tenant",
            get(|Custom(c): Custom<TenantClaims>| async move { format!("{}@{}", c.sub, c.tenant) }),
        )
        .layer(RequireTokenLayer::new(verifier));
    let sign = |scope: Option<&str>, tenant: Option<&str>| {
        let mut c = m.claims("u1");
        c.scope = scope.map(str::to_owned);
        if let Some(t) = tenant {
            c = c.with_claim("tenant", json!(t)).unwrap();
        }
        bearer(&m.sign(&c))
    };
    let r = call(
        &app,
        get_req(
            "/orders",
            &[("authorization", &sign(Some("profile orders:read"), None))],
        ),
    )
    .await;
    assert_eq!(
        (r.status, r.body.as_slice()),
        (StatusCode::OK, b"u1".as_slice())
    );
    for scope in [None, Some("orders:write"), Some("orders:read:all")] {
        let r = call(
            &app,
            get_req("/orders", &[("authorization", &sign(scope, None))]),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{scope:?}");
        assert_eq!(
            r.www(),
            r#"Bearer realm="orders", error="insufficient_scope""#
        );
    }
    let r = call(
        &app,
        get_req("/tenant", &[("authorization", &sign(None, Some("acme")))]),
    )
    .await;
    assert_eq!(
        (r.status, r.body.as_slice()),
        (StatusCode::OK, b"u1@acme".as_slice())
    );
    // Claims that do not fit the type make the token invalid, not "absent".
    let r = call(
        &app,
        get_req("/tenant", &[("authorization", &sign(None, None))]),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body, INVALID_BODY.as_bytes());
}

#[tokio::test]
async fn cached_tokens_never_outlive_exp() {
    let m = minter();
    let t0 = wristband_jose::SystemClock.now();
    let clock = Arc::new(FixedClock::new(t0));
    let verifier = static_verifier(&m, Some(clock.clone())).await;
    let token = m.sign(&m.claims_at("user-1", t0));
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(verifier.cached_tokens(), 1);
    // A hit one second before exp still passes.
    clock.advance(Duration::from_secs(899));
    assert!(verifier.verify_cached(&token).unwrap().is_ok());
    // At exp the cached entry is refused as expired, and dropped.
    clock.advance(Duration::from_secs(1));
    let err = verifier.verify_cached(&token).unwrap().unwrap_err();
    assert!(err.is_expired());
    assert_eq!(verifier.cached_tokens(), 0);
    let err = verifier.verify(&token).await.unwrap_err();
    assert!(err.is_expired());
}

#[tokio::test]
async fn claims_extractor_without_the_layer_fails_closed() {
    let app = Router::new().route("/open", get(|c: Claims| async move { c.sub.clone() }));
    let r = call(&app, get_req("/open", &[])).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // And Option<Claims> is None there.
    let app = Router::new().route(
        "/maybe",
        get(|c: Option<Claims>| async move {
            if c.is_some() {
                "some"
            } else {
                "none"
            }
        }),
    );
    let r = call(&app, get_req("/maybe", &[])).await;
    assert_eq!(r.body, b"none");
}

#[tokio::test]
async fn every_algorithm_verifies_through_the_layer() {
    for alg in [
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::ES256,
        Algorithm::EdDSA,
    ] {
        let m = Minter::new(keys::fixed(alg, 0), crate::ISSUER, crate::AUDIENCE);
        let app = api_service_router(static_verifier(&m, None).await);
        let r = call(
            &app,
            get_req(
                "/resource",
                &[("authorization", &bearer(&m.token("u", None)))],
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{alg}");
    }
}
