//! Atomicity under concurrent callers.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures_util::future::join_all;
use wristband_server::store::{RevocationKind, Store};

use crate::fixtures::{hash, session, user};

const N: usize = 16;

/// Runs `n` copies of `f(i)` as separate tasks and collects their results in order.
pub async fn race<T, F, Fut>(n: usize, f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|i| tokio::spawn(f(i))).collect();
    join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect()
}

pub async fn concurrent_rotation_one_winner(store: Arc<dyn Store>) {
    store.create_user(&user("u1", "alice")).await.unwrap();
    store
        .create_session(&session("s1", "u1", 1_000), &hash("g0"))
        .await
        .unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(N));
    for generation in 0..5_i64 {
        let won = race(N, |i| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            async move {
                let new_hash = hash(&format!("g{}-{i}", generation + 1));
                barrier.wait().await;
                store
                    .rotate("s1", generation, &new_hash, 2_000 + generation)
                    .await
                    .unwrap()
            }
        })
        .await;
        assert_eq!(
            won.iter().filter(|w| **w).count(),
            1,
            "generation {generation}: {won:?}"
        );
        let s = store.session("s1").await.unwrap().unwrap();
        assert_eq!(s.generation, generation + 1);
        let mut recorded = 0;
        for (i, won_i) in won.iter().enumerate() {
            if let Some(r) = store
                .refresh_token(&hash(&format!("g{}-{i}", generation + 1)))
                .await
                .unwrap()
            {
                assert_eq!(r.generation, generation + 1);
                assert!(*won_i, "only the winner's hash is recorded");
                recorded += 1;
            }
        }
        assert_eq!(recorded, 1);
    }
}

pub async fn concurrent_failures_counted(store: Arc<dyn Store>) {
    let barrier = Arc::new(tokio::sync::Barrier::new(N * 2));
    let counts = race(N * 2, |_| {
        let store = Arc::clone(&store);
        let barrier = Arc::clone(&barrier);
        async move {
            barrier.wait().await;
            store
                .record_failure("acct:alice", 1_000, 3_600)
                .await
                .unwrap()
                .failures
        }
    })
    .await;
    // Every caller saw a different count: no update was lost or doubled.
    let seen: BTreeSet<i64> = counts.into_iter().collect();
    let n = i64::try_from(N * 2).unwrap();
    assert_eq!(seen, (1..=n).collect::<BTreeSet<i64>>());
    assert_eq!(store.throttle("acct:alice").await.unwrap().failures, n);
}

pub async fn concurrent_revoke_recorded_once(store: Arc<dyn Store>) {
    store.create_user(&user("u1", "alice")).await.unwrap();
    store
        .create_session(&session("s1", "u1", 1_000), &hash("g0"))
        .await
        .unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(N));
    let results = race(N, |_| {
        let store = Arc::clone(&store);
        let barrier = Arc::clone(&barrier);
        async move {
            barrier.wait().await;
            store
                .revoke_session_recorded("s1", "admin", 1_100, 9_000)
                .await
                .unwrap()
        }
    })
    .await;
    let records: Vec<_> = results.into_iter().flatten().collect();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(
        store.revocations_after(0, 1_100, 100).await.unwrap(),
        records
    );
}

pub async fn concurrent_secret_one_winner(store: Arc<dyn Store>) {
    let barrier = Arc::new(tokio::sync::Barrier::new(N));
    let got = race(N, |i| {
        let store = Arc::clone(&store);
        let barrier = Arc::clone(&barrier);
        async move {
            barrier.wait().await;
            store
                .secret_or_insert("master-check", format!("v{i}").as_bytes(), 100)
                .await
                .unwrap()
        }
    })
    .await;
    let winners: BTreeSet<Vec<u8>> = got.into_iter().collect();
    assert_eq!(winners.len(), 1, "{winners:?}");
    let winner = winners.into_iter().next().unwrap();
    assert!((0..N).any(|i| format!("v{i}").into_bytes() == winner));
    assert_eq!(
        store
            .secret_or_insert("master-check", b"late", 200)
            .await
            .unwrap(),
        winner
    );
}

/// A feed reader that follows the cursor while writers add records sees every record:
/// no id becomes visible after a higher one was read.
pub async fn concurrent_revocations_feed_never_skips(store: Arc<dyn Store>) {
    const WRITERS: usize = 8;
    const EACH: usize = 40;
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let reader = {
        let store = Arc::clone(&store);
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            let mut cursor = 0;
            let mut seen = Vec::new();
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst) == WRITERS;
                let page = store.revocations_after(cursor, 1_000, 7).await.unwrap();
                if page.is_empty() && finished {
                    return seen;
                }
                for r in page {
                    assert!(r.id > cursor);
                    cursor = r.id;
                    seen.push(r.id);
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let written = race(WRITERS, |w| {
        let store = Arc::clone(&store);
        let done = Arc::clone(&done);
        async move {
            let mut ids = Vec::new();
            for i in 0..EACH {
                let kind = if i % 2 == 0 {
                    RevocationKind::Jti
                } else {
                    RevocationKind::Sid
                };
                let r = store
                    .add_revocation(kind, &format!("w{w}-{i}"), None, None, 1_000, 9_000)
                    .await
                    .unwrap();
                ids.push(r.id);
            }
            done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            ids
        }
    })
    .await;
    let seen = reader.await.expect("reader");
    let mut all: Vec<i64> = written.into_iter().flatten().collect();
    all.sort_unstable();
    assert_eq!(all.len(), WRITERS * EACH);
    assert_eq!(seen, all, "the reader missed or repeated records");
}
