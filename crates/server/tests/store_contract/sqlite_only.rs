//! What only the SQLite store has: the request path's connections, their checkpoints.

use std::time::Duration;

use wristband_server::store::{SqliteStore, Store};

use crate::fixtures::{session, user};

/// The request path's writer does not checkpoint when it commits; the checkpoint thread
/// does, so committed rows reach the database file itself, not only its WAL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_path_writes_reach_the_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store.create_user(&user("u1", "alice")).await.unwrap();
    for i in 0..200 {
        let s = session(&format!("s{i}"), "u1", 1_000 + i);
        store
            .create_session(&s, format!("h{i}").as_bytes())
            .await
            .unwrap();
    }
    assert!(store.rotate("s7", 0, b"h7-next", 2_000).await.unwrap());

    // The database file alone, as a copy taken while the store is open: what a crash
    // that also lost the WAL would leave.
    let copy = tempfile::tempdir().unwrap();
    let copied = copy.path().join("store.db");
    let mut found = None;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        std::fs::copy(&path, &copied).unwrap();
        // Before the first checkpoint the file does not even hold the schema.
        let Ok(read) = SqliteStore::open_read_only(&copied).await else {
            continue;
        };
        let last = read.session("s199").await.unwrap();
        let rotated = read.refresh_token(b"h7-next").await.unwrap();
        read.close().await;
        if let (Some(last), Some(rotated)) = (last, rotated) {
            found = Some((last, rotated));
            break;
        }
    }
    let (last, rotated) = found.expect("no checkpoint within 4 s");
    assert_eq!(last.user_id, "u1");
    assert_eq!((rotated.session_id.as_str(), rotated.generation), ("s7", 1));
    store.close().await;
}
