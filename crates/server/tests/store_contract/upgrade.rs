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

/// The OpenID Connect migration rebuilds SQLite's `clients` table (a CHECK constraint cannot
/// be altered): a database made before it keeps every client, with the new settings at
/// their defaults, and the service's clients work as before.
#[tokio::test]
async fn sqlite_oidc_upgrade_keeps_every_client() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    // The migrations from before OpenID Connect only.
    let mut before = sqlx::migrate!("./migrations/sqlite");
    before.migrations = std::borrow::Cow::Owned(
        before
            .migrations
            .iter()
            .filter(|m| m.version < 6)
            .cloned()
            .collect(),
    );
    before.run(&pool).await.unwrap();
    pool.execute(
        "INSERT INTO clients (id, name, kind, secret_hash, scopes, audiences, token_format, created_at) \
         VALUES ('c1', 'api', 'resource-server', X'0102', 'revocations:read', 'wristband', 'jwt', 10), \
                ('c2', 'billing', 'service', X'0304', 'read write', 'api://billing api://ledger', 'opaque', 11)",
    )
    .await
    .unwrap();
    pool.close().await;

    let store = SqliteStore::open(&path).await.unwrap();
    let mut clients = store.list_clients().await.unwrap();
    clients.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(clients.len(), 2, "{clients:?}");
    let (api, billing) = (&clients[0], &clients[1]);
    assert_eq!(
        (api.name.as_str(), api.kind.as_str()),
        ("api", "resource-server")
    );
    assert_eq!(api.secret_hash, vec![1, 2]);
    assert_eq!(api.scopes, ["revocations:read"]);
    assert_eq!(billing.kind.as_str(), "service");
    assert_eq!(billing.audiences, ["api://billing", "api://ledger"]);
    assert_eq!(billing.token_format.as_str(), "opaque");
    assert_eq!(billing.created_at, 11);
    for c in &clients {
        assert!(c.redirect_uris.is_empty() && c.post_logout_redirect_uris.is_empty());
        assert!(c.backchannel_logout_uri.is_none() && !c.first_party);
    }
    assert_eq!(
        store.client_by_name("billing").await.unwrap().unwrap().id,
        "c2"
    );
}
