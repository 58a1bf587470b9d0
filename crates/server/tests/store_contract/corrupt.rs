//! What the store's types cannot express is refused below them too: the tables check a
//! client's kind and token format, and a stored value this version cannot read (an
//! unknown algorithm) is a corrupt row, never replaced by another value.

use sqlx::{Database, Executor, Pool};
use wristband_server::store::{KeyState, SqliteStore, Store, StoreError};
use wristband_testkit::postgres;

use crate::fixtures::key;
use crate::harness::chain;

const CLIENT: &str = "INSERT INTO clients (id, name, kind, secret_hash, scopes, audiences, \
     token_format, created_at) VALUES";

/// Runs the checks against `store`, writing below it through `pool`.
async fn check<DB: Database>(store: &dyn Store, pool: &Pool<DB>)
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    let good = format!("{CLIENT} ('c1', 'svc', 'service', 'h', '', 'api', 'jwt', 1)");
    pool.execute(good.as_str()).await.unwrap();
    for (bad, what) in [
        (
            "('c2', 'bad', 'superuser', 'h', '', 'api', 'jwt', 1)",
            "kind",
        ),
        (
            "('c3', 'bad2', 'service', 'h', '', 'api', 'paseto', 1)",
            "token format",
        ),
    ] {
        let sql = format!("{CLIENT} {bad}");
        assert!(
            pool.execute(sql.as_str()).await.is_err(),
            "the {what} is checked"
        );
    }
    assert_eq!(store.list_clients().await.unwrap().len(), 1);

    store
        .insert_key(&key("k1", KeyState::Current, 10))
        .await
        .unwrap();
    assert_eq!(store.list_keys().await.unwrap().len(), 1);
    pool.execute("UPDATE signing_keys SET alg = 'XS999' WHERE kid = 'k1'")
        .await
        .unwrap();
    let r = store.list_keys().await;
    let Err(err) = r else {
        panic!("an unknown algorithm was read: {r:?}");
    };
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    let text = chain(&err);
    assert!(text.contains("unknown alg \"XS999\""), "{text}");
}

#[tokio::test]
async fn sqlite_refuses_unknown_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    check(&store, &pool).await;
    pool.close().await;
}

#[tokio::test]
async fn postgres_refuses_unknown_values() {
    let test = "store_contract::corrupt::postgres";
    let Some((store, schema)) = crate::harness::postgres_in_schema(test).await else {
        return;
    };
    let url = postgres::url();
    let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options.options([("search_path", schema.as_str())]))
        .await
        .unwrap();
    check(&store, &pool).await;
    pool.close().await;
    store.drop_schema().await.unwrap();
}
