//! The embedded SQLite store: one file, WAL journal, migrations compiled into the binary.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

use super::core;
use super::direct::Direct;
use super::{StoreError, StoreResult};

/// SQLite-backed [`Store`](super::Store). The request path's statements run on the calling
/// thread (`direct`), the rest through sqlx's pool; both on the same file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    direct: Arc<Direct>,
}

fn map_err(e: sqlx::Error) -> StoreError {
    core::map_sqlx(e, |e| match e {
        // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN
        sqlx::Error::Database(db) => {
            matches!(db.code().as_deref(), Some("5" | "6" | "10" | "13" | "14"))
        }
        _ => false,
    })
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and runs the embedded migrations.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        Self::connect(SqliteConnectOptions::new().filename(path)).await
    }

    /// Opens a database from a `sqlite:` URL.
    pub async fn open_url(url: &str) -> StoreResult<Self> {
        Self::connect(SqliteConnectOptions::from_str(url).map_err(map_err)?).await
    }

    /// Opens an existing database file read-only, for commands that only list: nothing is
    /// created, no migration runs, and a schema older than this binary's is refused.
    pub async fn open_read_only(path: &Path) -> StoreResult<Self> {
        Self::connect_read_only(SqliteConnectOptions::new().filename(path)).await
    }

    /// Like [`SqliteStore::open_read_only`], from a `sqlite:` URL.
    pub async fn open_url_read_only(url: &str) -> StoreResult<Self> {
        Self::connect_read_only(SqliteConnectOptions::from_str(url).map_err(map_err)?).await
    }

    async fn pool(options: SqliteConnectOptions, connections: u32) -> StoreResult<SqlitePool> {
        SqlitePoolOptions::new()
            .max_connections(connections)
            // A connection to a local file does not go stale: no ping (a round trip to the
            // connection's worker thread) before every query. A failing connection still
            // fails its query, and the error maps as any other.
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(
                options
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(5)),
            )
            .await
            .map_err(map_err)
    }

    async fn connect_read_only(options: SqliteConnectOptions) -> StoreResult<Self> {
        // The journal mode is left as the file has it (WAL, set by the writers).
        let options = options.read_only(true).create_if_missing(false);
        let direct = Arc::new(Direct::new(options.get_filename(), true));
        let pool = Self::pool(options, 1).await?;
        super::check_schema_version(
            sqlx::query_scalar(core::APPLIED_MIGRATION)
                .fetch_one(&pool)
                .await,
            |e| e.message().contains("no such table"),
            map_err,
            &sqlx::migrate!("./migrations/sqlite"),
        )?;
        Ok(SqliteStore { pool, direct })
    }

    async fn connect(options: SqliteConnectOptions) -> StoreResult<Self> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL survives a process crash (SIGKILL) without losing committed
            // transactions; FULL also survives power loss at a cost per commit.
            .synchronous(SqliteSynchronous::Normal);
        let direct = Arc::new(Direct::new(options.get_filename(), false));
        let pool = Self::pool(options, 8).await?;
        Self::check_username_collisions(&pool).await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| core::map_migrate(e, map_err))?;
        Direct::start_checkpoints(&direct).map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        Ok(SqliteStore { pool, direct })
    }

    /// Before migration 0004 makes usernames unique regardless of case: refuses a database
    /// where two users differ only by case, naming them.
    async fn check_username_collisions(pool: &SqlitePool) -> StoreResult<()> {
        let has_users =
            sqlx::query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'users'")
                .fetch_optional(pool)
                .await
                .map_err(map_err)?
                .is_some();
        if !has_users {
            return Ok(());
        }
        let groups = sqlx::query_scalar(
            "SELECT group_concat(username, ', ') AS names FROM \
               (SELECT username FROM users WHERE lower(username) IN \
                 (SELECT lower(username) FROM users GROUP BY lower(username) HAVING count(*) > 1) \
               ORDER BY lower(username), username) \
             GROUP BY lower(username) ORDER BY lower(username)",
        )
        .fetch_all(pool)
        .await
        .map_err(map_err)?;
        super::refuse_collisions(groups)
    }

    /// Runs `PRAGMA integrity_check` and returns its first line (`ok` when healthy).
    pub async fn integrity_check(&self) -> StoreResult<String> {
        sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)
    }

    /// Closes the pool and the request path's connections, checkpointing the WAL; later
    /// calls fail as unavailable.
    pub async fn close(&self) {
        self.direct.close();
        self.pool.close().await;
    }

    /// A single writer at a time already commits revocation ids in order: nothing to lock.
    async fn lock_revocations(_: &mut Transaction<'_, Sqlite>) -> StoreResult<()> {
        Ok(())
    }
}

core::impl_store! {
    store: SqliteStore,
    database: Sqlite,
    byte_order: "",
    greatest: "max",

    // The request path's statements (shared text in `core::hot`), on the calling thread.

    async fn user_by_id(&self, id: &str) -> StoreResult<Option<UserRecord>> {
        self.direct.user_by_id(id)
    }

    async fn session(&self, id: &str) -> StoreResult<Option<SessionRecord>> {
        self.direct.session(id)
    }

    async fn client(&self, id: &str) -> StoreResult<Option<ClientRecord>> {
        self.direct.client(id)
    }

    async fn create_session(&self, s: &SessionRecord, token_hash: &[u8]) -> StoreResult<()> {
        self.direct.create_session(s, token_hash)
    }

    async fn refresh_token(&self, token_hash: &[u8]) -> StoreResult<Option<RefreshRecord>> {
        self.direct.refresh_token(token_hash)
    }

    async fn rotate(
        &self,
        session_id: &str,
        expected_generation: i64,
        new_hash: &[u8],
        now: i64,
    ) -> StoreResult<bool> {
        self.direct.rotate(session_id, expected_generation, new_hash, now)
    }

    async fn token_ended(
        &self,
        jti: &str,
        sid: Option<&str>,
        sub: &str,
        iat: i64,
        iat_ms: Option<i64>,
        now: i64,
    ) -> StoreResult<bool> {
        self.direct.token_ended(jti, sid, sub, iat, iat_ms, now)
    }

    async fn put_opaque_token(&self, hash: &[u8], t: &OpaqueTokenRecord) -> StoreResult<()> {
        self.direct.put_opaque_token(hash, t)
    }

    async fn opaque_token(&self, hash: &[u8]) -> StoreResult<Option<OpaqueTokenRecord>> {
        self.direct.opaque_token(hash)
    }

    async fn use_auth_code(
        &self,
        hash: &[u8],
        child_session_id: &str,
        now: i64,
    ) -> StoreResult<Option<AuthCodeRecord>> {
        self.direct.use_auth_code(hash, child_session_id, now)
    }
}
