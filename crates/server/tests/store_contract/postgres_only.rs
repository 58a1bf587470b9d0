//! PostgreSQL behaviour that does not need a server, and `open_store` choosing the engine.

use wristband_server::config::Config;
use wristband_server::startup::open_store;
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
        assert!(
            matches!(r, Err(StoreError::InvalidSchemaName(_))),
            "{bad:?}: {r:?}"
        );
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

/// Two stores on one schema, as two auth instances: `name`, or `None` (reported) when no
/// PostgreSQL answers outside CI.
async fn two_instances(test: &str) -> Option<(PgStore, PgStore, String)> {
    let url = postgres::url();
    let schema = postgres::schema_name(test);
    let a = match PgStore::connect_with_schema(&url, &schema).await {
        Ok(a) => a,
        Err(e) => {
            postgres::not_run(
                &format!("store_contract::postgres_only::{test}"),
                &chain(&e),
            );
            return None;
        }
    };
    let b = PgStore::connect_with_schema(&url, &schema).await.unwrap();
    Some((a, b, url))
}

#[tokio::test]
async fn one_instance_leads_and_another_takes_over_when_it_dies() {
    use wristband_server::store::Store;
    let Some((a, b, _)) = two_instances("leadership").await else {
        return;
    };
    assert!(a.try_lead("key-schedule").await.unwrap());
    assert!(
        a.try_lead("key-schedule").await.unwrap(),
        "leadership is kept"
    );
    assert!(
        !b.try_lead("key-schedule").await.unwrap(),
        "only one leader"
    );
    assert!(
        b.try_lead("other-work").await.unwrap(),
        "names are independent"
    );

    // The leader's process dies: its connections close and the lock goes with them.
    a.close().await;
    drop(a);
    let start = std::time::Instant::now();
    while !b.try_lead("key-schedule").await.unwrap() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "no takeover after the leader died"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    b.drop_schema().await.unwrap();
}

#[tokio::test]
async fn a_revocation_on_one_instance_wakes_the_others_at_once() {
    use wristband_server::store::{RevocationKind, Store};
    let Some((a, b, _)) = two_instances("wakeups").await else {
        return;
    };
    let mut wakeups = b.revocation_wakeups().expect("PostgreSQL pushes wake-ups");
    // Let the listener start, then drain anything it sent while connecting.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    while wakeups.try_recv().is_ok() {}

    let start = std::time::Instant::now();
    a.add_revocation(RevocationKind::Jti, "jti-1", None, None, 100, 200)
        .await
        .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(2), wakeups.recv())
        .await
        .expect("woken within 2 s")
        .expect("the channel is open");
    eprintln!("LISTEN/NOTIFY wake-up after {:?}", start.elapsed());
    // Nothing more without a new revocation.
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), wakeups.recv())
            .await
            .is_err()
    );
    a.close().await;
    b.drop_schema().await.unwrap();
}

/// Managed PostgreSQL services require TLS: the store speaks it (`sslmode=require`).
#[tokio::test]
async fn postgres_over_tls() {
    use wristband_server::store::Store;
    let url = postgres::url();
    let sep = if url.contains('?') { '&' } else { '?' };
    let schema = postgres::schema_name("tls");
    let store =
        match PgStore::connect_with_schema(&format!("{url}{sep}sslmode=require"), &schema).await {
            Ok(s) => s,
            Err(e) if !postgres::required() => {
                postgres::not_run(
                    "store_contract::postgres_only::postgres_over_tls",
                    &chain(&e),
                );
                return;
            }
            Err(e) => panic!("TLS connection refused: {}", chain(&e)),
        };
    store.ping().await.unwrap();
    store.drop_schema().await.unwrap();
}
