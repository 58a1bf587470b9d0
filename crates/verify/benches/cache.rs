//! The verified-token cache: a hit (with the `exp`, key-set generation, signing-key and
//! revocation checks; with no revocation view, a 10 000-jti denylist, and the feed's
//! `RevocationSet` holding 3 revoked signing keys), a miss with the
//! cache full (full parse and signature verification, plus insertion and eviction), and
//! the raw `UnverifiedToken::parse(..).verify(..)` on the same tokens as the baseline.
//!
//! Run: `cargo bench -p wristband-verify --bench cache -- --warm-up-time 1 --measurement-time 3`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashSet;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;
use wristband_jose::Clock as _;

use criterion::{criterion_group, criterion_main, Criterion};
use wristband_jose::{sign, Algorithm, Claims, KeySet, Policy, SigningKey, UnverifiedToken};
use wristband_verify::{RevocationKind, RevocationRecord, RevocationSet, Verifier};

const ISS: &str = "https://auth.example";
const AUD: &str = "api://orders";
/// Cache size for the miss benchmark. The cache is filled with other tokens first, then a
/// pool eight times its size is cycled through it, so that every lookup misses (the pool
/// outruns the cache's ghost history too) and every insertion evicts.
const CAPACITY: usize = 1_000;
const POOL: usize = 8 * CAPACITY;

fn claims(i: usize) -> Claims {
    Claims::new(
        ISS,
        format!("user-{i}"),
        AUD,
        wristband_jose::SystemClock.now(),
        Duration::from_secs(900),
    )
    .with_client_id("web")
    .with_role("user")
    .with_scope("orders:read orders:write")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

#[derive(Clone, Copy)]
enum View {
    None,
    /// A realistic revocation view: 10 000 revoked jtis in a hash set.
    Denylist,
    /// The feed's set, with 3 revoked signing keys (not the token's).
    RevokedKids,
}

fn verifier(
    rt: &tokio::runtime::Runtime,
    key: &SigningKey,
    capacity: usize,
    view: View,
) -> Verifier {
    let mut b = Verifier::builder(ISS, AUD)
        .keys(KeySet::from_keys([key.verifying_key().clone()]).unwrap())
        .cache_capacity(capacity);
    match view {
        View::None => {}
        View::Denylist => {
            let revoked: HashSet<String> = (0..10_000).map(|i| format!("revoked-{i}")).collect();
            b = b.revocations(Arc::new(move |c: &Claims| revoked.contains(&c.jti)));
        }
        View::RevokedKids => {
            let set = RevocationSet::new();
            let now = wristband_jose::SystemClock.now();
            for i in 0..3 {
                let record = RevocationRecord {
                    id: i,
                    kind: RevocationKind::Kid,
                    value: format!("revoked-kid-{i}"),
                    before: None,
                    before_ms: None,
                    expires_at: now.as_secs() + 3_600,
                };
                set.apply(&record, now);
            }
            b = b.revocations(Arc::new(set));
        }
    }
    rt.block_on(b.build()).unwrap()
}

fn cache_hit(c: &mut Criterion) {
    let rt = runtime();
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let token = sign(&key, &claims(0)).unwrap();
    let mut g = c.benchmark_group("cache_hit");
    for (name, view) in [
        ("no_revocations", View::None),
        ("jti_denylist_10k", View::Denylist),
        ("revoked_kids_3", View::RevokedKids),
    ] {
        let v = verifier(&rt, &key, 10_000, view);
        rt.block_on(v.verify(&token)).unwrap();
        assert!(v.verify_cached(&token).unwrap().is_ok());
        g.bench_function(name, |b| {
            b.iter(|| v.verify_cached(black_box(&token)).unwrap().is_ok())
        });
    }
    // The async entry point on a hit (what a caller of `verify` pays).
    let v = verifier(&rt, &key, 10_000, View::None);
    rt.block_on(v.verify(&token)).unwrap();
    g.bench_function("verify_async_hit", |b| {
        b.iter(|| rt.block_on(v.verify(black_box(&token))).is_ok())
    });
    g.finish();
}

fn miss_and_baseline(c: &mut Criterion) {
    let rt = runtime();
    for alg in [Algorithm::ES256, Algorithm::RS256] {
        let key = SigningKey::generate(alg).unwrap();
        let tokens: Vec<String> = (0..POOL).map(|i| sign(&key, &claims(i)).unwrap()).collect();
        let v = verifier(&rt, &key, CAPACITY, View::None);
        for i in 0..CAPACITY {
            let filler = sign(&key, &claims(POOL + i)).unwrap();
            rt.block_on(v.verify(&filler)).unwrap();
        }
        let mut g = c.benchmark_group(format!("{alg}"));
        let mut i = 0;
        g.bench_function("miss_cache_full", |b| {
            b.iter(|| {
                i = (i + 1) % POOL;
                let t = &tokens[i];
                debug_assert!(v.verify_cached(t).is_none());
                rt.block_on(v.verify(black_box(t))).is_ok()
            })
        });
        assert!(v.cached_tokens() <= CAPACITY + CAPACITY / 10);
        // Every upcoming lookup must be a miss, or the numbers above were partly hits.
        let upcoming = (1..=500)
            .filter(|k| v.verify_cached(&tokens[(i + k) % POOL]).is_some())
            .count();
        assert_eq!(upcoming, 0, "{alg}: the miss benchmark hit the cache");
        let keys = KeySet::from_keys([key.verifying_key().clone()]).unwrap();
        let policy = Policy::builder(ISS, AUD).build().unwrap();
        let now = wristband_jose::SystemClock.now();
        g.bench_function("raw_parse_verify", |b| {
            b.iter(|| {
                i = (i + 1) % POOL;
                UnverifiedToken::parse(black_box(&tokens[i]))
                    .unwrap()
                    .verify(&keys, &policy, now)
                    .is_ok()
            })
        });
        g.finish();
    }
}

criterion_group!(benches, cache_hit, miss_and_baseline);
criterion_main!(benches);
