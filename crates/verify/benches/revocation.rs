//! The revocation check on every request: `RevocationSet::is_revoked` (the lookup behind
//! `FeedRevocations`) with 0, 10 000 and 1 000 000 revoked `jti`s plus 1 000 revoked
//! sessions and 1 000 subject cut-offs, for a token that is not revoked (the common case)
//! and for one that is; the same lookup from two threads at once (read-lock sharing);
//! `RevocationSet::is_kid_revoked` (the signing-key check made on every request, cache hits
//! included) with no revoked key, which takes no lock, and with 3 revoked keys;
//! and the resident memory per million revoked `jti`s, measured from `/proc/self/statm`
//! before and after filling (the lint table forbids the `unsafe` a counting allocator
//! would need).
//!
//! Run: `cargo bench -p wristband-verify --bench revocation -- --warm-up-time 1 --measurement-time 3`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    missing_docs
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use wristband_jose::{Claims, UnixTime};
use wristband_verify::{RevocationKind, RevocationRecord, RevocationSet};

const NOW: u64 = 1_900_000_000;

/// A jti shaped like the real ones: 16 random bytes, base64url (22 characters).
fn jti(i: u64) -> String {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&i.to_le_bytes());
    bytes[8..].copy_from_slice(&(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes());
    wristband_jose::b64::encode(bytes)
}

fn record(id: u64, kind: RevocationKind, value: String, before: Option<u64>) -> RevocationRecord {
    RevocationRecord {
        id: id as i64,
        kind,
        value,
        before,
        before_ms: None,
        expires_at: NOW + 3_600,
    }
}

fn records(jtis: u64) -> Vec<RevocationRecord> {
    let mut out: Vec<RevocationRecord> = (0..jtis)
        .map(|i| record(i, RevocationKind::Jti, jti(i), None))
        .collect();
    for i in 0..1_000 {
        out.push(record(
            jtis + i,
            RevocationKind::Sid,
            format!("session-{i}"),
            None,
        ));
        out.push(record(
            jtis + 1_000 + i,
            RevocationKind::Sub,
            format!("user-{i}"),
            Some(NOW - 60),
        ));
    }
    out
}

fn filled(jtis: u64) -> RevocationSet {
    let set = RevocationSet::new();
    set.reserve_jti(jtis as usize);
    set.apply_all(&records(jtis), UnixTime::from_secs(NOW));
    set
}

fn claims(sub: &str, jti: String) -> Claims {
    let mut c = Claims::new(
        "https://auth.example",
        sub,
        "api://orders",
        UnixTime::from_secs(NOW),
        Duration::from_secs(900),
    )
    .with_sid("session-live");
    c.jti = jti;
    c
}

fn lookups(c: &mut Criterion) {
    let mut group = c.benchmark_group("is_revoked");
    for n in [0u64, 10_000, 1_000_000] {
        let set = filled(n);
        let live = claims("user-live", jti(u64::MAX));
        group.bench_with_input(BenchmarkId::new("not_revoked", n), &n, |b, _| {
            b.iter(|| black_box(set.is_revoked(black_box(&live))))
        });
        if n > 0 {
            let revoked = claims("user-live", jti(n / 2));
            assert!(set.is_revoked(&revoked));
            group.bench_with_input(BenchmarkId::new("revoked_jti", n), &n, |b, _| {
                b.iter(|| black_box(set.is_revoked(black_box(&revoked))))
            });
        }
        if n == 1_000_000 {
            group.bench_function(BenchmarkId::new("not_revoked_2_threads", n), |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    std::thread::scope(|s| {
                        for _ in 0..2 {
                            s.spawn(|| {
                                for _ in 0..iters {
                                    black_box(set.is_revoked(black_box(&live)));
                                }
                            });
                        }
                    });
                    start.elapsed()
                })
            });
        }
    }
    group.finish();
}

/// A kid shaped like the real ones: an RFC 7638 thumbprint (43 characters).
fn kid(i: u64) -> String {
    let mut bytes = [0u8; 32];
    for (n, chunk) in bytes.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(
            &(i ^ n as u64)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .to_le_bytes(),
        );
    }
    wristband_jose::b64::encode(bytes)
}

fn kid_lookups(c: &mut Criterion) {
    let mut group = c.benchmark_group("is_kid_revoked");
    let live = kid(u64::MAX);
    // The common case: many jti records, no revoked key.
    let set = filled(10_000);
    assert!(!set.is_kid_revoked(&live));
    group.bench_function("no_revoked_key", |b| {
        b.iter(|| black_box(set.is_kid_revoked(black_box(&live))))
    });
    let kids: Vec<RevocationRecord> = (0..3)
        .map(|i| record(2_000_000 + i, RevocationKind::Kid, kid(i), None))
        .collect();
    set.apply_all(&kids, UnixTime::from_secs(NOW));
    let revoked = kid(1);
    assert!(set.is_kid_revoked(&revoked) && !set.is_kid_revoked(&live));
    group.bench_function("3_revoked_keys_miss", |b| {
        b.iter(|| black_box(set.is_kid_revoked(black_box(&live))))
    });
    group.bench_function("3_revoked_keys_hit", |b| {
        b.iter(|| black_box(set.is_kid_revoked(black_box(&revoked))))
    });
    group.finish();
}

/// Resident set size in bytes, from `/proc/self/statm` (Linux); `None` elsewhere.
fn rss() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn memory(_c: &mut Criterion) {
    const N: u64 = 1_000_000;
    let recs: Vec<RevocationRecord> = (0..N)
        .map(|i| record(i, RevocationKind::Jti, jti(i), None))
        .collect();
    let Some(before) = rss() else {
        eprintln!("memory: /proc/self/statm unavailable");
        return;
    };
    let set = RevocationSet::new();
    set.apply_all(&recs, UnixTime::from_secs(NOW));
    let after = rss().unwrap_or(before);
    assert_eq!(set.len(), N as usize);
    let bytes = after.saturating_sub(before);
    eprintln!(
        "memory: {N} revoked jtis (22-character values) take {:.1} MiB resident: {} bytes per entry",
        bytes as f64 / (1024.0 * 1024.0),
        bytes / N
    );
    black_box(&set);
}

criterion_group!(benches, memory, lookups, kid_lookups);
criterion_main!(benches);
