//! Login throttling.

use std::sync::Arc;

use wristband_server::store::{Store, ThrottleRecord};

fn rec(failures: i64, window_start: i64, last_failure: i64) -> ThrottleRecord {
    ThrottleRecord {
        failures,
        window_start,
        last_failure,
    }
}

pub async fn throttle_counts_and_resets(store: Arc<dyn Store>) {
    assert_eq!(
        store.throttle("acct:alice").await.unwrap(),
        ThrottleRecord::default()
    );

    assert_eq!(
        store.record_failure("acct:alice", 100, 60).await.unwrap(),
        rec(1, 100, 100)
    );
    assert_eq!(
        store.record_failure("acct:alice", 130, 60).await.unwrap(),
        rec(2, 100, 130)
    );
    assert_eq!(
        store.record_failure("acct:alice", 159, 60).await.unwrap(),
        rec(3, 100, 159)
    );
    assert_eq!(
        store.throttle("acct:alice").await.unwrap(),
        rec(3, 100, 159)
    );
    // The window is over at window_start + window_secs: a new one starts.
    assert_eq!(
        store.record_failure("acct:alice", 160, 60).await.unwrap(),
        rec(1, 160, 160)
    );
    assert_eq!(
        store.record_failure("acct:alice", 161, 60).await.unwrap(),
        rec(2, 160, 161)
    );
    assert_eq!(
        store.throttle("acct:alice").await.unwrap(),
        rec(2, 160, 161)
    );

    // Keys are independent.
    assert_eq!(
        store.record_failure("ip:192.0.2.1", 161, 60).await.unwrap(),
        rec(1, 161, 161)
    );
    assert_eq!(
        store.throttle("acct:alice").await.unwrap(),
        rec(2, 160, 161)
    );
}

pub async fn throttle_clear(store: Arc<dyn Store>) {
    store.record_failure("a", 100, 60).await.unwrap();
    store.record_failure("a", 101, 60).await.unwrap();
    store.record_failure("b", 100, 60).await.unwrap();
    store.clear_throttle("a").await.unwrap();
    assert_eq!(
        store.throttle("a").await.unwrap(),
        ThrottleRecord::default()
    );
    assert_eq!(store.throttle("b").await.unwrap(), rec(1, 100, 100));
    store.clear_throttle("never").await.unwrap();
    assert_eq!(
        store.record_failure("a", 102, 60).await.unwrap(),
        rec(1, 102, 102)
    );
}

pub async fn throttle_reads_several_keys_at_once(store: Arc<dyn Store>) {
    store.record_failure("acct:bob", 100, 60).await.unwrap();
    store.record_failure("acct:bob", 101, 60).await.unwrap();
    store.record_failure("ip:10.0.0.1", 102, 60).await.unwrap();
    let got = store
        .throttles(&["pair:bob|10.0.0.1", "acct:bob", "ip:10.0.0.1", "acct:bob"])
        .await
        .unwrap();
    assert_eq!(
        got,
        vec![
            ThrottleRecord::default(),
            rec(2, 100, 101),
            rec(1, 102, 102),
            rec(2, 100, 101),
        ],
        "in the order asked, unknown keys empty, repeats answered"
    );
    assert!(store.throttles(&[]).await.unwrap().is_empty());
}

pub async fn throttle_prune_expired(store: Arc<dyn Store>) {
    // Windows of 60 s: "old" started at 100, "fresh" at 130, "renewed" at 100 but began a
    // new window at 165.
    store.record_failure("old", 100, 60).await.unwrap();
    store.record_failure("old", 150, 60).await.unwrap();
    store.record_failure("fresh", 130, 60).await.unwrap();
    store.record_failure("renewed", 100, 60).await.unwrap();
    store.record_failure("renewed", 165, 60).await.unwrap();
    assert_eq!(store.prune_throttle(159, 60).await.unwrap(), 0);
    assert_eq!(store.prune_throttle(160, 60).await.unwrap(), 1);
    let got = store.throttles(&["old", "fresh", "renewed"]).await.unwrap();
    assert_eq!(
        got,
        vec![
            ThrottleRecord::default(),
            rec(1, 130, 130),
            rec(1, 165, 165)
        ],
        "only the window that is over went"
    );
    assert_eq!(store.prune_throttle(1_000, 60).await.unwrap(), 2);
    assert_eq!(store.prune_throttle(1_000, 60).await.unwrap(), 0);
}
