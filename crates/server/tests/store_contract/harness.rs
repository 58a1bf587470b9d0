//! Opens a fresh store per test.

use std::sync::Arc;

use wristband_server::store::{PgStore, SqliteStore, Store};
use wristband_testkit::postgres;

/// A SQLite store in a new file; the directory lives as long as the returned guard.
pub async fn sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("store.db"))
        .await
        .expect("open sqlite store");
    (Arc::new(store), dir)
}

/// A PostgreSQL store in a new schema, or `None` (after a loud warning) when no server
/// answers and PostgreSQL is not required.
pub async fn postgres(test: &str) -> Option<PgStore> {
    postgres_in_schema(test).await.map(|(store, _)| store)
}

/// Like [`postgres`], with the name of the new schema, for tests that also reach its
/// tables with SQL of their own.
pub async fn postgres_in_schema(test: &str) -> Option<(PgStore, String)> {
    let schema = postgres::schema_name(test);
    match PgStore::connect_with_schema(&postgres::url(), &schema).await {
        Ok(store) => Some((store, schema)),
        Err(e) => {
            postgres::not_run(test, &chain(&e));
            None
        }
    }
}

/// An error and its sources, on one line.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        out.push_str(": ");
        out.push_str(&s.to_string());
        next = s.source();
    }
    out
}
