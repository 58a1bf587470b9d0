//! PostgreSQL behaviour that does not need a server, and `open_store` choosing the engine.

use wristband_server::config::Config;
use wristband_server::http::open_store;
use wristband_server::store::{PgStore, StoreError};
use wristband_testkit::postgres;

use crate::harness::chain;

#[tokio::test]
async fn postgres_unreachable_is_unavailable() {
    // Nothing listens on port 1.
    let r = PgStore::connect_with_schema("postgres://postgres@127.0.0.1:1/postgres", "wbt_x").await;
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
}

#[tokio::test]
async fn postgres_schema_names_are_checked() {
    for bad in [
        "",
        "Upper",
        "1abc",
        "a;drop table users",
        "a\"b",
        &"x".repeat(64),
    ] {
        let r = PgStore::connect_with_schema(&postgres::url(), bad).await;
        assert!(matches!(r, Err(StoreError::Other(_))), "{bad:?}: {r:?}");
    }
}

#[tokio::test]
async fn open_store_refuses_other_schemes() {
    let config = Config {
        database: Some("mysql://root@localhost/wristband".to_owned()),
        ..Config::default()
    };
    let err = open_store(&config)
        .await
        .err()
        .expect("a mysql URL is refused");
    let text = chain(&err);
    assert!(text.contains("postgres://"), "{text}");
}

/// `open_store` opens PostgreSQL for both URL schemes (in the server's default schema, so
/// only a read-only check runs there).
#[tokio::test]
async fn open_store_accepts_postgres_urls() {
    let url = postgres::url();
    let Some(rest) = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
    else {
        panic!("{} must be a postgres:// URL", postgres::URL_VAR);
    };
    // The migrations run in a schema of the test's own, chosen through the URL.
    let schema = postgres::schema_name("open_store");
    if let Err(e) = PgStore::connect_with_schema(&url, &schema).await {
        postgres::not_run(
            "store_contract::postgres_only::open_store_accepts_postgres_urls",
            &chain(&e),
        );
        return;
    }
    let sep = if rest.contains('?') { '&' } else { '?' };
    for scheme in ["postgres://", "postgresql://"] {
        let config = Config {
            database: Some(format!(
                "{scheme}{rest}{sep}options=-c%20search_path%3D{schema}"
            )),
            ..Config::default()
        };
        let store = open_store(&config)
            .await
            .expect("open_store with a PostgreSQL URL");
        store.ping().await.unwrap();
        assert!(store.list_users().await.unwrap().is_empty());
    }
    PgStore::connect_with_schema(&url, &schema)
        .await
        .unwrap()
        .drop_schema()
        .await
        .unwrap();
}
