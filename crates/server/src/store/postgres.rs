//! The PostgreSQL store, for running several auth instances on one database. Same
//! semantics as the SQLite store; migrations compiled into the binary.
//!
//! Revocation ids are the verifiers' feed cursor, so a reader must never see id `n + 1`
//! committed while id `n` is still to come. A sequence alone does not promise that under
//! concurrent transactions, so every transaction that adds a revocation first takes a
//! lock on the `revocations` table that only other writers of revocations wait for:
//! ids are then assigned and committed in the same order. Readers are not blocked.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Postgres, Transaction};
use tokio::sync::mpsc::error::TrySendError;

use super::core::{self, hot};
use super::{StoreError, StoreResult};

/// Connections per pool.
const MAX_CONNECTIONS: u32 = 16;
/// How long a caller waits for a free connection before the store reports itself unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// PostgreSQL-backed [`Store`](super::Store).
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The schema the store lives in, when it was opened with [`PgStore::connect_with_schema`].
    schema: Option<String>,
    /// The connection that holds (or tries for) the advisory locks of [`Store::try_lead`]:
    /// a session-level lock lives as long as its connection, so it is kept out of the pool.
    leader: std::sync::Arc<tokio::sync::Mutex<Option<Leader>>>,
}

/// A dedicated connection and the leaderships it holds.
struct Leader {
    conn: PgConnection,
    held: Vec<String>,
}

/// The channel the revocations trigger notifies (migration 0002).
const REVOCATIONS_CHANNEL: &str = "wristband_revocations";

/// A stable 64-bit advisory-lock key for a leadership name within a schema (FNV-1a).
fn lock_key(schema: &str, name: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in "wristband:"
        .bytes()
        .chain(schema.bytes())
        .chain(":".bytes())
        .chain(name.bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(h.to_ne_bytes())
}

impl std::fmt::Debug for PgStore {
    // The connect options hold the password: they are left out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

fn map_err(e: sqlx::Error) -> StoreError {
    core::map_sqlx(e, |e| match e {
        // A protocol error is a conversation with the server that broke off (for example a
        // connection cut while it negotiates TLS): like an I/O error, the database cannot be
        // reached right now.
        sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().as_deref().is_some_and(unavailable_code),
        _ => false,
    })
}

/// SQLSTATEs after which the caller may retry later: connection exceptions (class 08),
/// insufficient resources (class 53), administrator shutdown and "cannot connect now".
fn unavailable_code(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("53") || matches!(code, "57P01" | "57P03")
}

/// A schema name that needs no quoting: lower-case ASCII letters, digits and `_`, not
/// starting with a digit, at most 63 bytes.
fn check_schema(schema: &str) -> StoreResult<()> {
    let plain = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_';
    let ok = (1..=63).contains(&schema.len())
        && !schema.starts_with(|c: char| c.is_ascii_digit())
        && schema.bytes().all(plain);
    ok.then_some(())
        .ok_or_else(|| StoreError::InvalidSchemaName(schema.to_owned()))
}

impl PgStore {
    /// Connects to a `postgres://` or `postgresql://` URL and runs the embedded migrations.
    /// The tables live in the connection's default schema (usually `public`; a
    /// `?options=-c%20search_path%3D...` URL parameter chooses another).
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url).map_err(map_err)?;
        Self::open(options, None).await
    }

    /// Like [`PgStore::connect`], but in `schema`, which is created when missing. Lets
    /// several stores (such as one per test) share a database without seeing each other.
    pub async fn connect_with_schema(url: &str, schema: &str) -> StoreResult<Self> {
        check_schema(schema)?;
        let options = PgConnectOptions::from_str(url).map_err(map_err)?;
        let mut conn = PgConnection::connect_with(&options)
            .await
            .map_err(map_err)?;
        sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .execute(&mut conn)
            .await
            .map_err(map_err)?;
        conn.close().await.map_err(map_err)?;
        let options = options.options([("search_path", schema)]);
        Self::open(options, Some(schema.to_owned())).await
    }

    /// Connects for commands that only read: every session is read-only
    /// (`default_transaction_read_only`), no migration runs, and a schema older than this
    /// binary's is refused.
    pub async fn connect_read_only(url: &str) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(map_err)?
            .options([("default_transaction_read_only", "on")]);
        let pool = Self::pool(options, 1).await?;
        super::check_schema_version(
            sqlx::query_scalar(core::APPLIED_MIGRATION)
                .fetch_one(&pool)
                .await,
            |e| e.code().as_deref() == Some("42P01"), // undefined_table
            map_err,
            &sqlx::migrate!("./migrations/postgres"),
        )?;
        Ok(Self::with(pool, None))
    }

    async fn pool(options: PgConnectOptions, connections: u32) -> StoreResult<PgPool> {
        PgPoolOptions::new()
            .max_connections(connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(map_err)
    }

    fn with(pool: PgPool, schema: Option<String>) -> Self {
        let leader = std::sync::Arc::default();
        PgStore {
            pool,
            schema,
            leader,
        }
    }

    async fn open(options: PgConnectOptions, schema: Option<String>) -> StoreResult<Self> {
        let pool = Self::pool(options, MAX_CONNECTIONS).await?;
        Self::check_username_collisions(&pool).await?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| core::map_migrate(e, map_err))?;
        Ok(Self::with(pool, schema))
    }

    /// Before migration 0003 makes usernames unique regardless of case: refuses a database
    /// where two users differ only by case, naming them.
    async fn check_username_collisions(pool: &PgPool) -> StoreResult<()> {
        let groups = sqlx::query_scalar(
            "SELECT string_agg(username, ', ' ORDER BY username COLLATE \"C\") AS names \
             FROM users GROUP BY lower(username) HAVING count(*) > 1 ORDER BY lower(username)",
        );
        // A new database has no users table yet.
        let has_users: bool = sqlx::query_scalar("SELECT to_regclass('users') IS NOT NULL")
            .fetch_one(pool)
            .await
            .map_err(map_err)?;
        if !has_users {
            return Ok(());
        }
        let groups = groups.fetch_all(pool).await.map_err(map_err)?;
        super::refuse_collisions(groups)
    }

    /// Drops the schema this store was opened in, with everything in it, and closes the
    /// pool. Only for stores opened with [`PgStore::connect_with_schema`].
    pub async fn drop_schema(self) -> StoreResult<()> {
        let Some(schema) = &self.schema else {
            return Err(StoreError::NotOwnSchema);
        };
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        self.pool.close().await;
        Ok(())
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// [`Store::try_lead`](super::Store::try_lead): a session-level advisory lock, held by
    /// a connection kept out of the pool.
    async fn lead(&self, name: &str) -> StoreResult<bool> {
        let mut slot = self.leader.lock().await;
        if slot.is_none() {
            let conn = self.pool.acquire().await.map_err(map_err)?.detach();
            *slot = Some(Leader {
                conn,
                held: Vec::new(),
            });
        }
        let Some(leader) = slot.as_mut() else {
            return Ok(false);
        };
        let result = if leader.held.iter().any(|h| h == name) {
            // Still ours as long as the connection lives.
            sqlx::query("SELECT 1")
                .execute(&mut leader.conn)
                .await
                .map(|_| true)
        } else {
            let schema = self.schema.as_deref().unwrap_or("public");
            sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(lock_key(schema, name))
                .fetch_one(&mut leader.conn)
                .await
        };
        match result {
            Ok(true) => {
                if !leader.held.iter().any(|h| h == name) {
                    tracing::info!(leadership = name, "this instance now leads");
                    leader.held.push(name.to_owned());
                }
                Ok(true)
            }
            Ok(false) => Ok(false),
            Err(e) => {
                // The connection is gone, and with it any lock it held.
                *slot = None;
                Err(map_err(e))
            }
        }
    }

    /// [`Store::revocation_wakeups`](super::Store::revocation_wakeups), from LISTEN.
    fn listen_revocations(&self) -> tokio::sync::mpsc::Receiver<()> {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let pool = self.pool.clone();
        let schema = self.schema.clone().unwrap_or_default();
        tokio::spawn(async move {
            loop {
                let listener = async {
                    let mut listener = PgListener::connect_with(&pool).await?;
                    listener
                        .listen(REVOCATIONS_CHANNEL)
                        .await
                        .map(|()| listener)
                };
                let mut listener = match listener.await {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::warn!(error = %e, "revocation notifications: cannot listen; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                loop {
                    match listener.try_recv().await {
                        Ok(Some(n)) => {
                            // Another deployment's schema in the same database: not ours.
                            if !schema.is_empty() && n.payload() != schema {
                                continue;
                            }
                        }
                        // The connection was lost (and notifications with it): wake the
                        // feed anyway, and listen again.
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "revocation notifications lost; reconnecting");
                            break;
                        }
                    }
                    match tx.try_send(()) {
                        Ok(()) | Err(TrySendError::Full(())) => {}
                        Err(TrySendError::Closed(())) => return,
                    }
                }
                if tx.is_closed() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        rx
    }

    /// Serialises the transactions that add revocations, so that ids commit in order (see
    /// the module documentation). Released at commit or rollback.
    async fn lock_revocations(tx: &mut Transaction<'_, Postgres>) -> StoreResult<()> {
        sqlx::query("LOCK TABLE revocations IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut **tx)
            .await
            .map(drop)
            .map_err(map_err)
    }
}

core::impl_store! {
    store: PgStore,
    database: Postgres,
    // Byte order, as SQLite sorts, whatever the database's locale.
    byte_order: " COLLATE \"C\"",
    greatest: "GREATEST",

    async fn try_lead(&self, name: &str) -> StoreResult<bool> {
        self.lead(name).await
    }

    fn revocation_wakeups(&self) -> Option<tokio::sync::mpsc::Receiver<()>> {
        Some(self.listen_revocations())
    }

    // The request path's statements (shared text in `core::hot`), through sqlx.

    async fn user_by_id(&self, id: &str) -> StoreResult<Option<UserRecord>> {
        self.one(&hot::USER_BY_ID, id).await
    }

    async fn session(&self, id: &str) -> StoreResult<Option<SessionRecord>> {
        self.one(&hot::SESSION, id).await
    }

    async fn client(&self, id: &str) -> StoreResult<Option<ClientRecord>> {
        self.one(&hot::CLIENT, id).await
    }

    async fn create_session(&self, s: &SessionRecord, token_hash: &[u8]) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let query = sqlx::query(&hot::INSERT_SESSION);
        let query = query.bind(&s.id).bind(&s.user_id).bind(&s.client_id);
        let query = query.bind(s.created_at).bind(s.last_used_at);
        let query = query.bind(s.absolute_expires_at).bind(s.generation);
        let query = query.bind(s.rotated_at).bind(s.revoked_at);
        let query = query.bind(&s.user_agent).bind(&s.ip);
        let query = query.bind(&s.parent_id).bind(s.offline).bind(&s.scope);
        let query = query.bind(&s.amr).bind(s.auth_time);
        changed_in(&mut tx, query).await?;
        let query = sqlx::query(hot::INSERT_REFRESH);
        let query = query.bind(token_hash).bind(&s.id).bind(s.generation);
        changed_in(&mut tx, query.bind(s.created_at)).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn refresh_token(&self, token_hash: &[u8]) -> StoreResult<Option<RefreshRecord>> {
        let query = sqlx::query_as(hot::REFRESH_TOKEN).bind(token_hash);
        query.fetch_optional(&self.pool).await.map_err(map_err)
    }

    async fn rotate(
        &self,
        session_id: &str,
        expected_generation: i64,
        new_hash: &[u8],
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let query = sqlx::query(hot::ROTATE).bind(now).bind(session_id);
        if changed_in(&mut tx, query.bind(expected_generation)).await? != 1 {
            tx.rollback().await.map_err(map_err)?;
            return Ok(false);
        }
        let query = sqlx::query(hot::INSERT_REFRESH).bind(new_hash).bind(session_id);
        changed_in(&mut tx, query.bind(expected_generation + 1).bind(now)).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
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
        let query = sqlx::query_scalar(hot::TOKEN_ENDED);
        let query = query.bind(now).bind(jti).bind(sid).bind(sub);
        let query = query.bind(iat).bind(iat_ms);
        query.fetch_one(&self.pool).await.map_err(map_err)
    }

    async fn put_opaque_token(&self, hash: &[u8], t: &OpaqueTokenRecord) -> StoreResult<()> {
        let query = sqlx::query(hot::INSERT_OPAQUE);
        let query = query.bind(hash).bind(&t.jti).bind(&t.sub).bind(&t.client_id);
        let query = query.bind(&t.aud).bind(&t.scope).bind(&t.role).bind(&t.sid);
        self.changed(query.bind(t.iat).bind(t.iat_ms).bind(t.exp)).await.map(drop)
    }

    async fn opaque_token(&self, hash: &[u8]) -> StoreResult<Option<OpaqueTokenRecord>> {
        let query = sqlx::query_as(hot::OPAQUE).bind(hash);
        query.fetch_optional(&self.pool).await.map_err(map_err)
    }

    async fn use_auth_code(
        &self,
        hash: &[u8],
        child_session_id: &str,
        now: i64,
    ) -> StoreResult<Option<AuthCodeRecord>> {
        let query = sqlx::query_as(&hot::USE_CODE).bind(now).bind(child_session_id);
        let found = query.bind(hash).fetch_optional(&self.pool).await.map_err(map_err)?;
        Ok(hot::first_use_as_unused(found, child_session_id))
    }
}
