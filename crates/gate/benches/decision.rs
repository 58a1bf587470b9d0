//! CPU per gate decision, measured against the bare signature check in the same run.
//!
//! Run: `cargo bench -p wristband-gate --bench decision`
//!
//! - `jose/verify_{ES256,RS256}`: `wristband_jose` alone: parse and verify one token
//!   (signature and claims), no cache. The floor a cache miss cannot go under.
//! - `gate/hit`: a whole nginx `auth_request` decision (`Gate::handle`: read the original
//!   request, normalise the path, match the policy, verify from the cache, build the 200
//!   with its identity headers) for a token already verified. Target ≤ 10 µs.
//! - `gate/miss_{ES256,RS256}`: the same with the verified-token cache off, so every
//!   decision verifies the signature. Target ≤ the bare check + 3 µs.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use axum::body::Body;
use axum::extract::ConnectInfo;
use criterion::{criterion_group, criterion_main, Criterion};
use http::Request;
use wristband_gate::{Gate, GateOptions, Policy, PolicyHandle, Protocol};
use wristband_jose::{Algorithm, Clock as _, KeySet, SystemClock, UnverifiedToken};
use wristband_testkit::{keys, Minter};
use wristband_verify::{CookieSource, Verifier};

const POLICY: &str = r#"
[[rule]]
name = "health"
path = "/health"
methods = ["GET", "HEAD"]
require = "anonymous"

[[rule]]
name = "admin"
path = "/admin"
require = "role:admin"

[[rule]]
name = "app"
host = "app.example.com"
path = "/"
require = "authenticated"
"#;

/// Runs a future that never waits (no I/O on these paths) to completion in one poll.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(v) => v,
        Poll::Pending => unreachable!("a gate decision with static keys never waits"),
    }
}

fn gate(minter: &Minter, cache: bool) -> Gate {
    let mut builder = Verifier::builder(&minter.iss, &minter.aud)
        .keys(keys::key_set([minter.key()]))
        .access_cookie(CookieSource::default());
    if !cache {
        builder = builder.cache_capacity(0);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let verifier = runtime.block_on(builder.build()).unwrap();
    let policy = PolicyHandle::new(Policy::parse(POLICY).unwrap());
    Gate::new(verifier, policy, GateOptions::for_issuer(&minter.iss))
}

fn nginx_request(token: &str) -> http::request::Parts {
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let mut request = Request::get("/authz/auth-request")
        .header("x-original-url", "https://app.example.com/orders/42?page=2")
        .header("x-original-method", "GET")
        .header("accept", "application/json")
        .header("user-agent", "bench/1.0")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    request.into_parts().0
}

fn decisions(c: &mut Criterion) {
    for alg in [Algorithm::ES256, Algorithm::RS256] {
        let minter = Minter::new(keys::fixed(alg, 0), "https://auth.example", "wristband");
        let token = minter.token("user-1", Some("user"));
        let key_set: KeySet = keys::key_set([minter.key()]);
        let policy = wristband_jose::Policy::builder(&*minter.iss, &*minter.aud)
            .algorithms(&[alg])
            .build()
            .unwrap();
        c.bench_function(&format!("jose/verify_{}", alg.as_str()), |b| {
            b.iter(|| {
                let parsed = UnverifiedToken::parse(std::hint::black_box(&token)).unwrap();
                parsed.verify(&key_set, &policy, SystemClock.now()).unwrap()
            })
        });

        let request = nginx_request(&token);
        let uncached = gate(&minter, false);
        c.bench_function(&format!("gate/miss_{}", alg.as_str()), |b| {
            b.iter(|| {
                let response = ready(uncached.handle(Protocol::AuthRequest, &request));
                assert_eq!(response.status(), 200);
                response
            })
        });

        if alg == Algorithm::ES256 {
            let cached = gate(&minter, true);
            assert_eq!(
                ready(cached.handle(Protocol::AuthRequest, &request)).status(),
                200
            );
            c.bench_function("gate/hit", |b| {
                b.iter(|| {
                    let response = ready(cached.handle(Protocol::AuthRequest, &request));
                    assert_eq!(response.status(), 200);
                    response
                })
            });
        }
    }
}

criterion_group!(benches, decisions);
criterion_main!(benches);
