//! The revocation feed's one tail and ring, on each engine: a whole auth service on the
//! store, read through in-process subscriptions (the feed is public here, so no token).

use std::sync::Arc;
use std::time::{Duration, Instant};

use wristband_jose::{FixedClock, UnixTime};
use wristband_server::config::{Argon2Config, Config};
use wristband_server::domain::{AuthService, FeedItem, FeedSubscription};
use wristband_server::metrics::FeedReader;
use wristband_server::startup::App;
use wristband_server::store::{RevocationKind, Store};

const NOW: i64 = 1_800_000_000;

/// An auth service on `store`, serving (with its tail) until the returned sender drops.
async fn service(
    store: Arc<dyn Store>,
    dir: &tempfile::TempDir,
) -> (Arc<AuthService>, tokio::sync::oneshot::Sender<()>) {
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_path_buf(),
        argon2: Argon2Config {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        },
        revocation_feed_public: true,
        ..Config::default()
    };
    let clock = Arc::new(FixedClock::new(UnixTime::from_secs(
        u64::try_from(NOW).unwrap(),
    )));
    let app = App::build_with_store(config, store, clock).await.unwrap();
    let svc = Arc::clone(app.service());
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(app.run(async {
        let _ = rx.await;
    }));
    let deadline = Instant::now() + Duration::from_secs(5);
    while svc.feed_hub().head().is_none() {
        assert!(Instant::now() < deadline, "the tail did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (svc, tx)
}

async fn add(store: &dyn Store, value: &str) -> i64 {
    store
        .add_revocation(RevocationKind::Jti, value, None, None, NOW, NOW + 3600)
        .await
        .unwrap()
        .id
}

fn reads(svc: &AuthService) -> u64 {
    let m = &svc.metrics().feed.store_reads;
    ["tail", "catch_up"]
        .into_iter()
        .map(|reader| m.get_or_create(&FeedReader { reader }).get())
        .sum()
}

async fn next_id(sub: &mut FeedSubscription) -> i64 {
    let record = async {
        loop {
            match sub.next().await.expect("the stream is open") {
                FeedItem::Record(entry) => return entry.id(),
                FeedItem::Heartbeat => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), record)
        .await
        .expect("a record within 5 s")
}

/// One revocation reaches 1 and then 50 subscriptions for the same few store reads; a
/// subscription that is not polled while the ring moves past it later catches up from the
/// store and gets every record once, in order.
pub async fn feed_one_tail_and_a_ring(store: Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let (svc, _stop) = service(Arc::clone(&store), &dir).await;
    let mut per_count = Vec::new();
    for n in [1usize, 50] {
        let head = svc.feed_hub().head().unwrap();
        let mut subs = Vec::new();
        for _ in 0..n {
            subs.push(svc.subscribe_feed(None, head).await.unwrap());
        }
        let before = reads(&svc);
        let id = add(&*store, &format!("one-{n}")).await;
        svc.feed_changed();
        for s in &mut subs {
            assert_eq!(next_id(s).await, id);
        }
        per_count.push(reads(&svc) - before);
    }
    // A read per subscription would be 50 or more. How many wake-ups the tail gets for one
    // record (the notification, PostgreSQL's NOTIFY, a poll) varies with timing: a few.
    assert!(
        per_count.iter().all(|r| (1..=3).contains(r)),
        "store reads for one revocation, 1 and 50 subscriptions: {per_count:?}"
    );

    svc.feed_hub().set_capacity(4);
    let after = svc.feed_hub().head().unwrap();
    let mut stuck = svc.subscribe_feed(None, after).await.unwrap();
    let mut healthy = svc.subscribe_feed(None, after).await.unwrap();
    let mut written = Vec::new();
    for i in 0..30 {
        written.push(add(&*store, &format!("lag-{i}")).await);
        svc.feed_changed();
        assert_eq!(next_id(&mut healthy).await, written[i]);
    }
    let (floor, held) = svc.feed_hub().span();
    assert!(held <= 4 && floor.unwrap() > after, "{floor:?} {held}");
    let mut got = Vec::new();
    for _ in 0..30 {
        got.push(next_id(&mut stuck).await);
    }
    assert_eq!(got, written);
    assert!(
        tokio::time::timeout(Duration::from_millis(100), stuck.next())
            .await
            .is_err(),
        "nothing repeated"
    );
    assert!(svc
        .metrics()
        .encode()
        .contains("wristband_feed_catch_ups_total 1"));
}

/// A record written by another instance on the same database (or the CLI) reaches this
/// instance's streams: by NOTIFY on PostgreSQL, by the tail's 1 s poll on SQLite.
pub async fn feed_other_writers_reach_the_tail(store: Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let (svc, _stop) = service(Arc::clone(&store), &dir).await;
    let mut sub = svc.subscribe_feed(None, 0).await.unwrap();
    let started = Instant::now();
    // Not through the service: nothing here wakes the tail.
    let id = add(&*store, "elsewhere").await;
    assert_eq!(next_id(&mut sub).await, id);
    let took = started.elapsed();
    assert!(took < Duration::from_millis(2500), "took {took:?}");
}
