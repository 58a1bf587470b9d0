//! The per-request cost of [`RequireTokenLayer`] in front of a trivial service: a bearer
//! token that is in the verified-token cache (the hot path of an API service), and a
//! request without any credential (the 401 path); then, with a verifier configured for the
//! access cookie, the same cached token from the cookie on a GET and on a POST with the
//! CSRF header.
//!
//! Run: `cargo bench -p wristband-verify --bench layer -- --warm-up-time 1 --measurement-time 3`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::convert::Infallible;
use std::hint::black_box;
use std::time::Duration;
use wristband_jose::Clock as _;

use axum::body::Body;
use axum::response::Response;
use criterion::{criterion_group, criterion_main, Criterion};
use http::Request;
use tower::{service_fn, Layer, ServiceExt};
use wristband_jose::{sign, Algorithm, Claims, KeySet, SigningKey};
use wristband_verify::{CookieSource, RequireTokenLayer, Verifier};

const ISS: &str = "https://auth.example";
const AUD: &str = "api://orders";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

fn token(key: &SigningKey) -> String {
    let claims = Claims::new(
        ISS,
        "user-1",
        AUD,
        wristband_jose::SystemClock.now(),
        Duration::from_secs(900),
    )
    .with_client_id("web")
    .with_role("user");
    sign(key, &claims).unwrap()
}

fn layer(c: &mut Criterion) {
    let rt = runtime();
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let token = token(&key);
    let verifier = rt
        .block_on(
            Verifier::builder(ISS, AUD)
                .keys(KeySet::from_keys([key.verifying_key().clone()]).unwrap())
                .build(),
        )
        .unwrap();
    rt.block_on(verifier.verify(&token)).unwrap();
    let service = RequireTokenLayer::new(verifier).layer(service_fn(|_req: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(Body::empty()))
    }));
    let authorization = format!("Bearer {token}");
    let mut g = c.benchmark_group("layer");
    let send = |req: Request<Body>| rt.block_on(service.clone().oneshot(req)).unwrap();

    let bearer = || {
        Request::get("/resource")
            .header("authorization", &authorization)
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(send(bearer()).status(), 200);
    g.bench_function("bearer_cached", |b| {
        b.iter(|| send(black_box(bearer())).status())
    });

    let anonymous = || Request::get("/resource").body(Body::empty()).unwrap();
    assert_eq!(send(anonymous()).status(), 401);
    g.bench_function("no_token", |b| {
        b.iter(|| send(black_box(anonymous())).status())
    });

    let cookie_verifier = rt
        .block_on(
            Verifier::builder(ISS, AUD)
                .keys(KeySet::from_keys([key.verifying_key().clone()]).unwrap())
                .access_cookie(CookieSource::default())
                .build(),
        )
        .unwrap();
    rt.block_on(cookie_verifier.verify(&token)).unwrap();
    let cookie_service =
        RequireTokenLayer::new(cookie_verifier).layer(service_fn(|_req: Request<Body>| async {
            Ok::<_, Infallible>(Response::new(Body::empty()))
        }));
    let send = |req: Request<Body>| rt.block_on(cookie_service.clone().oneshot(req)).unwrap();
    let jar = format!("theme=dark; __Host-wb_at={token}; __Host-wb_csrf=pX2n8Hq-Zc4rW9sYt1uVbA");
    assert_eq!(send(bearer()).status(), 200);
    g.bench_function("bearer_cached_cookie_verifier", |b| {
        b.iter(|| send(black_box(bearer())).status())
    });
    let cookie_get = || {
        Request::get("/resource")
            .header("cookie", &jar)
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(send(cookie_get()).status(), 200);
    g.bench_function("cookie_cached_get", |b| {
        b.iter(|| send(black_box(cookie_get())).status())
    });
    let cookie_post = || {
        Request::post("/resource")
            .header("cookie", &jar)
            .header("x-csrf-token", "pX2n8Hq-Zc4rW9sYt1uVbA")
            .header("sec-fetch-site", "same-origin")
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(send(cookie_post()).status(), 200);
    g.bench_function("cookie_cached_post_csrf", |b| {
        b.iter(|| send(black_box(cookie_post())).status())
    });
    g.finish();
}

criterion_group!(benches, layer);
criterion_main!(benches);
