//! Upgrading a database made before usernames became case-insensitive: users whose names
//! differ only by case stop the store from opening, with a message that names them.

use sqlx::Executor;
use wristband_server::store::{PgStore, SqliteStore, Store};
use wristband_testkit::postgres;

use crate::harness::chain;

/// Turns a freshly migrated database back into one from before the case-insensitive
/// index, holding `alice`, `ALICE`, `Bob` and `bob`.
const DOWNGRADE: [&str; 2] = [
    "DROP INDEX users_username_folded",
    "INSERT INTO users (id, username, password_hash, role, disabled, created_at, updated_at) \
     VALUES ('u1', 'alice', 'h', 'user', FALSE, 1, 1), ('u2', 'ALICE', 'h', 'user', FALSE, 1, 1), \
     ('u3', 'Bob', 'h', 'user', FALSE, 1, 1), ('u4', 'bob', 'h', 'user', FALSE, 1, 1), \
     ('u5', 'carol', 'h', 'user', FALSE, 1, 1)",
];
const RENAME: &str = "UPDATE users SET username = 'alice2' WHERE username = 'ALICE'";
const RENAME_BOB: &str = "UPDATE users SET username = 'bob2' WHERE username = 'bob'";

fn assert_refusal(text: &str) {
    for name in ["ALICE, alice", "Bob, bob", "Rename"] {
        assert!(text.contains(name), "{name:?} missing from: {text}");
    }
    assert!(!text.contains("carol"), "{text}");
}

#[tokio::test]
async fn sqlite_refuses_to_open_with_users_differing_only_by_case() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    drop(SqliteStore::open(&path).await.unwrap());
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    for sql in DOWNGRADE {
        pool.execute(sql).await.unwrap();
    }
    pool.execute("DELETE FROM _sqlx_migrations WHERE version = 4")
        .await
        .unwrap();

    let Err(err) = SqliteStore::open(&path).await else {
        panic!("the store opened with colliding usernames");
    };
    assert_refusal(&chain(&err));

    // The fix the message gives works: rename, and the store opens and upgrades.
    pool.execute(RENAME).await.unwrap();
    pool.execute(RENAME_BOB).await.unwrap();
    pool.close().await;
    let store = SqliteStore::open(&path).await.unwrap();
    let found = store.user_by_name("ALICE").await.unwrap().unwrap();
    assert_eq!(found.id, "u1");
}

#[tokio::test]
async fn postgres_refuses_to_open_with_users_differing_only_by_case() {
    let test = "store_contract::upgrade::postgres";
    let Some((store, schema)) = crate::harness::postgres_in_schema(test).await else {
        return;
    };
    let url = postgres::url();
    drop(store);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .after_connect({
            let schema = schema.clone();
            move |conn, _| {
                let schema = schema.clone();
                Box::pin(async move {
                    conn.execute(format!("SET search_path TO {schema}").as_str())
                        .await
                        .map(|_| ())
                })
            }
        })
        .connect(&url)
        .await
        .unwrap();
    for sql in DOWNGRADE {
        pool.execute(sql).await.unwrap();
    }
    pool.execute("DELETE FROM _sqlx_migrations WHERE version = 3")
        .await
        .unwrap();

    let Err(err) = PgStore::connect_with_schema(&url, &schema).await else {
        panic!("the store opened with colliding usernames");
    };
    assert_refusal(&chain(&err));

    pool.execute(RENAME).await.unwrap();
    pool.execute(RENAME_BOB).await.unwrap();
    let store = PgStore::connect_with_schema(&url, &schema).await.unwrap();
    let found = store.user_by_name("ALICE").await.unwrap().unwrap();
    assert_eq!(found.id, "u1");
    pool.close().await;
    store.drop_schema().await.unwrap();
}
