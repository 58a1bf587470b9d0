//! Opaque `wbo_` tokens through `Verifier::verify`: introspection, its cache and bounds,
//! the extractors, and revocation.

use std::sync::Arc;
use std::time::Duration;
use wristband_jose::Clock as _;

use crate::api_service::api_service_router;
use http::StatusCode;
use serde_json::json;
use wristband_jose::{ErrorKind, FixedClock, UnixTime};
use wristband_testkit::MockAuth;
use wristband_verify::{Verifier, INVALID_BODY};

use crate::feed::{builder, eventually, fast_feed, mock, T};
use crate::{bearer, call, get, AUDIENCE};

fn opaque(n: u8) -> String {
    format!("wbo_{}", char::from(b'A' + n).to_string().repeat(43))
}

fn active(mock: &MockAuth, jti: &str, exp: u64) -> serde_json::Value {
    json!({
        "active": true, "sub": "user-7", "client_id": "web", "exp": exp, "iat": T,
        "aud": [AUDIENCE, "api://other"], "iss": mock.issuer(), "token_type": "Bearer",
        "jti": jti, "scope": "orders:read", "role": "admin", "sid": "session-7"
    })
}

async fn verifier(mock: &MockAuth, clock: Arc<FixedClock>) -> Verifier {
    builder(mock)
        .clock(clock)
        .introspection_cache(Duration::from_secs(5), 100)
        .build()
        .await
        .unwrap()
}

#[tokio::test]
async fn active_tokens_work_like_jwts_and_answers_are_cached_briefly() {
    let (mock, _m) = mock().await;
    let clock = Arc::new(FixedClock::new(UnixTime::from_secs(T + 10)));
    let v = verifier(&mock, clock.clone()).await;
    assert!(v.introspects_opaque_tokens());
    let token = opaque(0);
    mock.set_introspection(&token, active(&mock, "jti-1", T + 900));

    let claims = v.verify(&token).await.unwrap();
    assert_eq!(claims.sub, "user-7");
    assert_eq!(claims.jti, "jti-1");
    assert_eq!(claims.exp.as_secs(), T + 900);
    assert!(claims.has_scope("orders:read"));
    assert_eq!(claims.sid.as_deref(), Some("session-7"));
    assert_eq!(mock.introspection_requests(), 1);

    // Extractors: HasRole<admin> on /admin, claims on /resource.
    let app = api_service_router(v.clone());
    let r = call(&app, get("/admin", &[("authorization", &bearer(&token))])).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["sub"], "user-7");
    let r = call(
        &app,
        get("/resource", &[("authorization", &bearer(&token))]),
    )
    .await;
    assert_eq!(r.json()["role"], "admin");
    assert_eq!(mock.introspection_requests(), 1, "answered from the cache");
    assert_eq!(
        v.cached_tokens(),
        0,
        "opaque tokens stay out of the JWT cache"
    );

    // The cache lives 5 s.
    clock.advance(Duration::from_secs(4));
    v.verify(&token).await.unwrap();
    assert_eq!(mock.introspection_requests(), 1);
    clock.advance(Duration::from_secs(2));
    v.verify(&token).await.unwrap();
    assert_eq!(
        mock.introspection_requests(),
        2,
        "asked again after the TTL"
    );
}

#[tokio::test]
async fn inactive_unknown_and_malformed_tokens_are_refused() {
    let (mock, _m) = mock().await;
    let clock = Arc::new(FixedClock::new(UnixTime::from_secs(T + 10)));
    let v = verifier(&mock, clock.clone()).await;
    let app = api_service_router(v.clone());

    let unknown = opaque(1);
    let r = call(
        &app,
        get("/resource", &[("authorization", &bearer(&unknown))]),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body, INVALID_BODY.as_bytes());
    assert_eq!(
        r.www(),
        r#"Bearer realm="wristband", error="invalid_token""#
    );
    assert_eq!(mock.introspection_requests(), 1);
    // A negative answer is cached too (a flood of bogus tokens costs one call each).
    assert!(v.verify(&unknown).await.is_err());
    assert_eq!(mock.introspection_requests(), 1);

    let inactive = opaque(2);
    mock.set_introspection(&inactive, json!({"active": false}));
    assert_eq!(
        v.verify(&inactive).await.unwrap_err().kind(),
        ErrorKind::Revoked
    );

    // Answers the JWT policy would refuse: another audience, another issuer.
    let other_aud = opaque(3);
    let mut answer = active(&mock, "j3", T + 900);
    answer["aud"] = json!("api://billing");
    mock.set_introspection(&other_aud, answer);
    assert_eq!(
        v.verify(&other_aud).await.unwrap_err().kind(),
        ErrorKind::WrongAudience
    );
    let other_iss = opaque(4);
    let mut answer = active(&mock, "j4", T + 900);
    answer["iss"] = json!("https://evil.example");
    mock.set_introspection(&other_iss, answer);
    assert_eq!(
        v.verify(&other_iss).await.unwrap_err().kind(),
        ErrorKind::WrongIssuer
    );

    // Not the opaque shape: refused without a call.
    let before = mock.introspection_requests();
    for bad in ["wbo_short", &format!("wbo_{}", "*".repeat(43))] {
        assert_eq!(
            v.verify(bad).await.unwrap_err().kind(),
            ErrorKind::Malformed
        );
    }
    assert_eq!(mock.introspection_requests(), before);
}

#[tokio::test]
async fn a_cached_answer_never_outlives_the_token() {
    let (mock, _m) = mock().await;
    let clock = Arc::new(FixedClock::new(UnixTime::from_secs(T + 10)));
    let v = verifier(&mock, clock.clone()).await;
    let token = opaque(5);
    mock.set_introspection(&token, active(&mock, "j5", T + 13));
    v.verify(&token).await.unwrap();
    clock.advance(Duration::from_secs(3));
    assert_eq!(
        v.verify(&token).await.unwrap_err().kind(),
        ErrorKind::Expired
    );
}

#[tokio::test]
async fn without_credentials_opaque_tokens_are_malformed() {
    let (mock, _m) = mock().await;
    let v = Verifier::builder(mock.issuer(), AUDIENCE)
        .build()
        .await
        .unwrap();
    assert!(!v.introspects_opaque_tokens());
    let token = opaque(6);
    mock.set_introspection(&token, active(&mock, "j6", T + 900));
    assert_eq!(
        v.verify(&token).await.unwrap_err().kind(),
        ErrorKind::Malformed
    );
    assert_eq!(mock.introspection_requests(), 0);
}

#[tokio::test]
async fn revocation_applies_to_opaque_tokens_despite_the_cache() {
    let (mock, _m) = mock().await;
    let now = wristband_jose::SystemClock.now().as_secs();
    let v = builder(&mock)
        .revocation_feed()
        .feed_options(fast_feed())
        .introspection_cache(Duration::from_secs(60), 100)
        .build()
        .await
        .unwrap();
    let feed = v.revocation_feed().unwrap();
    eventually("stream connected", || feed.stream_connects() == 1).await;
    let token = opaque(7);
    let mut answer = active(&mock, "j7", now + 600);
    answer["iat"] = json!(now);
    mock.set_introspection(&token, answer);
    v.verify(&token).await.unwrap();
    mock.revoke_jti("j7", now + 700);
    eventually("event applied", || feed.cursor() == 1).await;
    assert_eq!(
        v.verify(&token).await.unwrap_err().kind(),
        ErrorKind::Revoked
    );
    assert_eq!(mock.introspection_requests(), 1, "refused from the cache");
}
