//! `cargo bench -p wristband-server --bench password`
//!
//! The cost of one Argon2id password check with the default parameters (m=19456 KiB, t=2,
//! p=1): the figure that bounds login throughput at about cores / this time. Measured alone,
//! on every core at once, and on every core at once into reused memory (as the server
//! checks passwords).
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
    // What the server runs: the same pair of hashes, each into a reused block buffer (no
    // allocation or page faults per check), as `Passwords` does with its pooled memory.
    let params = argon.params().clone();
    let salt_bytes = b"0123456789abcdef";
    let mut buffers: Vec<Vec<argon2::Block>> = (0..threads)
        .map(|_| vec![argon2::Block::default(); params.block_count()])
        .collect();
    g.bench_function(
        format!("verify_default_params_x{threads}_parallel_pooled_memory"),
        |b| {
            b.iter(|| {
                std::thread::scope(|s| {
                    for blocks in &mut buffers {
                        let argon = &argon;
                        s.spawn(move || {
                            let mut out = [0u8; 32];
                            argon
                                .hash_password_into_with_memory(
                                    b"bench passphrase for load tests",
                                    salt_bytes,
                                    &mut out,
                                    &mut blocks[..],
                                )
                                .unwrap();
                        });
                    }
                });
            });
        },
    );
    g.finish();
}

criterion_group!(benches, argon2_verify);
criterion_main!(benches);
