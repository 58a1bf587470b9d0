//! `cargo bench -p wristband-server --bench password`
//!
//! The cost of one Argon2id password check with the default parameters (m=19456 KiB, t=2,
//! p=1): the figure that bounds login throughput at about cores / this time.
#![allow(clippy::unwrap_used, missing_docs)]

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use criterion::{criterion_group, criterion_main, Criterion};

fn argon2_verify(c: &mut Criterion) {
    let argon = Argon2::default();
    let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
    let hash = argon
        .hash_password(b"bench passphrase for load tests", &salt)
        .unwrap()
        .to_string();
    let parsed = PasswordHash::new(&hash).unwrap();
    let mut g = c.benchmark_group("argon2id");
    g.sample_size(20);
    g.bench_function("verify_default_params", |b| {
        b.iter(|| {
            argon
                .verify_password(b"bench passphrase for load tests", &parsed)
                .unwrap();
        });
    });
    // Both cores at once, as a login flood runs them: Argon2 is memory-hard, and two
    // hashes in parallel share caches and memory bandwidth. Time per pair of hashes.
    let threads = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    g.bench_function(format!("verify_default_params_x{threads}_parallel"), |b| {
        b.iter(|| {
            std::thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(|| {
                        argon
                            .verify_password(b"bench passphrase for load tests", &parsed)
                            .unwrap();
                    });
                }
            });
        });
    });
    g.finish();
}

criterion_group!(benches, argon2_verify);
criterion_main!(benches);
