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

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{Connection, PgConnection, PgPool, Postgres, Row, Transaction};

use super::{
    ClientRecord, KeyChange, KeyRecord, KeyState, OpaqueTokenRecord, RefreshRecord, RevocationKind,
    RevocationRecord, SessionRecord, Store, StoreError, StoreResult, ThrottleRecord, UserRecord,
};

/// Connections per pool.
const MAX_CONNECTIONS: u32 = 16;
/// How long a caller waits for a free connection before the store reports itself unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// PostgreSQL-backed [`Store`].
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
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        // A protocol error is a conversation with the server that broke off (for example a
        // connection cut while it negotiates TLS): like an I/O error, the database cannot be
        // reached right now.
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(Box::new(e)),
        sqlx::Error::Database(db) if db.code().as_deref().is_some_and(unavailable_code) => {
            StoreError::Unavailable(Box::new(e))
        }
        _ => StoreError::Other(Box::new(e)),
    }
}

/// SQLSTATEs after which the caller may retry later: connection exceptions (class 08),
/// insufficient resources (class 53), administrator shutdown and "cannot connect now".
fn unavailable_code(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("53") || matches!(code, "57P01" | "57P03")
}

/// A schema name that needs no quoting: lower-case ASCII letters, digits and `_`, not
/// starting with a digit, at most 63 bytes.
fn check_schema(schema: &str) -> StoreResult<()> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && !schema.starts_with(|c: char| c.is_ascii_digit())
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::Other(
            format!("invalid schema name {schema:?}").into(),
        ))
    }
}

/// Serialises the transactions that add revocations, so that ids commit in order (see the
/// module documentation). Released at commit or rollback.
async fn lock_revocations(tx: &mut Transaction<'_, Postgres>) -> StoreResult<()> {
    sqlx::query("LOCK TABLE revocations IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut **tx)
        .await
        .map(|_| ())
        .map_err(map_err)
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
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(map_err)?;
        let applied: Option<i64> =
            match sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&pool)
                .await
            {
                Ok(v) => v,
                // undefined_table: never migrated at all.
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => None,
                Err(e) => return Err(map_err(e)),
            };
        super::check_schema_version(applied, &sqlx::migrate!("./migrations/postgres"))?;
        Ok(PgStore {
            pool,
            schema: None,
            leader: std::sync::Arc::default(),
        })
    }

    async fn open(options: PgConnectOptions, schema: Option<String>) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(map_err)?;
        Self::check_username_collisions(&pool).await?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| match e {
                sqlx::migrate::MigrateError::Execute(e) => map_err(e),
                e => StoreError::Other(Box::new(e)),
            })?;
        Ok(PgStore {
            pool,
            schema,
            leader: std::sync::Arc::default(),
        })
    }

    /// Before migration 0003 makes usernames unique regardless of case: refuses a database
    /// where two users differ only by case, naming them.
    async fn check_username_collisions(pool: &PgPool) -> StoreResult<()> {
        let groups = sqlx::query(
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
        let groups = groups
            .fetch_all(pool)
            .await
            .map_err(map_err)?
            .iter()
            .map(|row| row.try_get::<String, _>("names"))
            .collect::<Result<Vec<_>, _>>()
            .map_err(map_err)?;
        super::refuse_collisions(groups)
    }

    /// Drops the schema this store was opened in, with everything in it, and closes the
    /// pool. Only for stores opened with [`PgStore::connect_with_schema`].
    pub async fn drop_schema(self) -> StoreResult<()> {
        let Some(schema) = &self.schema else {
            return Err(StoreError::Other(
                "only a store opened in its own schema can drop it".into(),
            ));
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

    /// Runs a query with one text parameter and maps the row, if any.
    async fn one<T>(
        &self,
        sql: &str,
        key: &str,
        map: fn(&PgRow) -> Result<T, sqlx::Error>,
    ) -> StoreResult<Option<T>> {
        sqlx::query(sql)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .and_then(|r| r.as_ref().map(map).transpose())
            .map_err(map_err)
    }

    /// Runs a query without parameters and maps every row.
    async fn all<T>(
        &self,
        sql: &str,
        map: fn(&PgRow) -> Result<T, sqlx::Error>,
    ) -> StoreResult<Vec<T>> {
        let rows = sqlx::query(sql)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(map)
            .collect::<Result<_, _>>()
            .map_err(map_err)
    }

    /// Runs `sql`, an `UPDATE users SET <column> = $1, updated_at = $2 WHERE id = $3`.
    async fn update_user<'q, T>(
        &self,
        sql: &'static str,
        value: T,
        id: &'q str,
        now: i64,
    ) -> StoreResult<bool>
    where
        T: 'q + Send + sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres>,
    {
        sqlx::query(sql)
            .bind(value)
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected() == 1)
            .map_err(map_err)
    }
}

fn user_from_row(row: &PgRow) -> Result<UserRecord, sqlx::Error> {
    Ok(UserRecord {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        password_hash: row.try_get("password_hash")?,
        role: row.try_get("role")?,
        disabled: row.try_get("disabled")?,
        created_at: row.try_get("created_at")?,
    })
}

fn session_from_row(row: &PgRow) -> Result<SessionRecord, sqlx::Error> {
    Ok(SessionRecord {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        client_id: row.try_get("client_id")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        absolute_expires_at: row.try_get("absolute_expires_at")?,
        generation: row.try_get("generation")?,
        rotated_at: row.try_get("rotated_at")?,
        revoked_at: row.try_get("revoked_at")?,
        user_agent: row.try_get("user_agent")?,
        ip: row.try_get("ip")?,
    })
}

fn throttle_from_row(row: &PgRow) -> Result<ThrottleRecord, sqlx::Error> {
    Ok(ThrottleRecord {
        failures: row.try_get("failures")?,
        window_start: row.try_get("window_start")?,
        last_failure: row.try_get("last_failure")?,
    })
}

fn revocation_from_row(row: &PgRow) -> Result<RevocationRecord, sqlx::Error> {
    let kind: String = row.try_get("kind")?;
    Ok(RevocationRecord {
        id: row.try_get("id")?,
        kind: RevocationKind::parse(&kind).ok_or_else(|| {
            sqlx::Error::Decode(format!("unknown revocation kind {kind:?}").into())
        })?,
        value: row.try_get("value")?,
        before: row.try_get("before")?,
        before_ms: row.try_get("before_ms")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

fn client_from_row(row: &PgRow) -> Result<ClientRecord, sqlx::Error> {
    Ok(ClientRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        kind: row.try_get("kind")?,
        secret_hash: row.try_get("secret_hash")?,
        scopes: words(&row.try_get::<String, _>("scopes")?),
        audiences: words(&row.try_get::<String, _>("audiences")?),
        token_format: row.try_get("token_format")?,
        created_at: row.try_get("created_at")?,
    })
}

fn opaque_from_row(row: &PgRow) -> Result<OpaqueTokenRecord, sqlx::Error> {
    Ok(OpaqueTokenRecord {
        jti: row.try_get("jti")?,
        sub: row.try_get("sub")?,
        client_id: row.try_get("client_id")?,
        aud: row.try_get("aud")?,
        scope: row.try_get("scope")?,
        role: row.try_get("role")?,
        sid: row.try_get("sid")?,
        iat: row.try_get("iat")?,
        iat_ms: row.try_get("iat_ms")?,
        exp: row.try_get("exp")?,
    })
}

fn key_from_row(r: &PgRow) -> Result<KeyRecord, sqlx::Error> {
    let state: String = r.try_get("state")?;
    Ok(KeyRecord {
        kid: r.try_get("kid")?,
        alg: r.try_get("alg")?,
        state: KeyState::parse(&state)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown key state {state:?}").into()))?,
        private_key: r.try_get("private_key")?,
        public_jwk: r.try_get("public_jwk")?,
        created_at: r.try_get("created_at")?,
        activates_at: r.try_get("activates_at")?,
        activated_at: r.try_get("activated_at")?,
        retired_at: r.try_get("retired_at")?,
        removes_at: r.try_get("removes_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

const CLIENT_COLS: &str =
    "id, name, kind, secret_hash, scopes, audiences, token_format, created_at";
const USER_COLS: &str = "id, username, password_hash, role, disabled, created_at";
const SESSION_COLS: &str = "id, user_id, client_id, created_at, last_used_at, \
     absolute_expires_at, generation, rotated_at, revoked_at, user_agent, ip";
const REVOCATION_COLS: &str = "id, kind, value, before, before_ms, created_at, expires_at";
const KEY_COLS: &str = "kid, alg, state, private_key, public_jwk, created_at, activates_at, \
                        activated_at, retired_at, removes_at, revoked_at";

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(map_err)
    }

    async fn create_user(&self, u: &UserRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO users (id, username, password_hash, role, disabled, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(&u.id)
        .bind(&u.username)
        .bind(&u.password_hash)
        .bind(&u.role)
        .bind(u.disabled)
        .bind(u.created_at)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(map_err)
    }

    async fn user_by_name(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        self.one(
            &format!("SELECT {USER_COLS} FROM users WHERE lower(username) = $1"),
            &username.to_ascii_lowercase(),
            user_from_row,
        )
        .await
    }

    async fn user_by_id(&self, id: &str) -> StoreResult<Option<UserRecord>> {
        self.one(
            &format!("SELECT {USER_COLS} FROM users WHERE id = $1"),
            id,
            user_from_row,
        )
        .await
    }

    async fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
        // COLLATE "C": byte order, as SQLite sorts, whatever the database's locale.
        self.all(
            &format!("SELECT {USER_COLS} FROM users ORDER BY username COLLATE \"C\""),
            user_from_row,
        )
        .await
    }

    async fn set_disabled(&self, id: &str, disabled: bool, now: i64) -> StoreResult<bool> {
        self.update_user(
            "UPDATE users SET disabled = $1, updated_at = $2 WHERE id = $3",
            disabled,
            id,
            now,
        )
        .await
    }

    async fn set_password_hash(&self, id: &str, hash: &str, now: i64) -> StoreResult<bool> {
        self.update_user(
            "UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3",
            hash,
            id,
            now,
        )
        .await
    }

    async fn set_role(&self, id: &str, role: &str, now: i64) -> StoreResult<bool> {
        self.update_user(
            "UPDATE users SET role = $1, updated_at = $2 WHERE id = $3",
            role,
            id,
            now,
        )
        .await
    }

    async fn create_session(&self, s: &SessionRecord, token_hash: &[u8]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query(
            "INSERT INTO sessions (id, user_id, client_id, created_at, last_used_at, \
             absolute_expires_at, generation, rotated_at, revoked_at, user_agent, ip) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&s.id)
        .bind(&s.user_id)
        .bind(&s.client_id)
        .bind(s.created_at)
        .bind(s.last_used_at)
        .bind(s.absolute_expires_at)
        .bind(s.generation)
        .bind(s.rotated_at)
        .bind(s.revoked_at)
        .bind(&s.user_agent)
        .bind(&s.ip)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query(
            "INSERT INTO refresh_tokens (hash, session_id, generation, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(&s.id)
        .bind(s.generation)
        .bind(s.created_at)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn session(&self, id: &str) -> StoreResult<Option<SessionRecord>> {
        self.one(
            &format!("SELECT {SESSION_COLS} FROM sessions WHERE id = $1"),
            id,
            session_from_row,
        )
        .await
    }

    async fn refresh_token(&self, token_hash: &[u8]) -> StoreResult<Option<RefreshRecord>> {
        sqlx::query("SELECT session_id, generation FROM refresh_tokens WHERE hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await
            .and_then(|r| {
                r.map(|row| {
                    Ok(RefreshRecord {
                        session_id: row.try_get("session_id")?,
                        generation: row.try_get("generation")?,
                    })
                })
                .transpose()
            })
            .map_err(map_err)
    }

    async fn rotate(
        &self,
        session_id: &str,
        expected_generation: i64,
        new_hash: &[u8],
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // Under READ COMMITTED a concurrent rotation of the same session waits for this
        // row lock, then re-checks the generation on the new row version and matches
        // nothing: exactly one caller wins.
        let updated = sqlx::query(
            "UPDATE sessions SET generation = generation + 1, rotated_at = $1, last_used_at = $1 \
             WHERE id = $2 AND generation = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(session_id)
        .bind(expected_generation)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?
        .rows_affected();
        if updated != 1 {
            tx.rollback().await.map_err(map_err)?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO refresh_tokens (hash, session_id, generation, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(new_hash)
        .bind(session_id)
        .bind(expected_generation + 1)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn touch_session(&self, session_id: &str, now: i64) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET last_used_at = GREATEST(last_used_at, $1) WHERE id = $2")
            .bind(now)
            .bind(session_id)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(map_err)
    }

    async fn revoke_session(&self, session_id: &str, reason: &str, now: i64) -> StoreResult<bool> {
        sqlx::query(
            "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 \
             WHERE id = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(reason)
        .bind(session_id)
        .execute(&self.pool)
        .await
        .map(|r| r.rows_affected() == 1)
        .map_err(map_err)
    }

    async fn revoke_session_recorded(
        &self,
        session_id: &str,
        reason: &str,
        now: i64,
        expires_at: i64,
    ) -> StoreResult<Option<RevocationRecord>> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let ended = sqlx::query(
            "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 \
             WHERE id = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(reason)
        .bind(session_id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?
        .rows_affected();
        if ended != 1 {
            tx.rollback().await.map_err(map_err)?;
            return Ok(None);
        }
        lock_revocations(&mut tx).await?;
        let row = sqlx::query(&format!(
            "INSERT INTO revocations (kind, value, before, created_at, expires_at) \
             VALUES ('sid', $1, NULL, $2, $3) RETURNING {REVOCATION_COLS}"
        ))
        .bind(session_id)
        .bind(now)
        .bind(expires_at)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        let record = revocation_from_row(&row).map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(Some(record))
    }

    async fn revoke_user_sessions(
        &self,
        user_id: &str,
        reason: &str,
        now: i64,
    ) -> StoreResult<u64> {
        sqlx::query(
            "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 \
             WHERE user_id = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(reason)
        .bind(user_id)
        .execute(&self.pool)
        .await
        .map(|r| r.rows_affected())
        .map_err(map_err)
    }

    async fn throttles(&self, keys: &[&str]) -> StoreResult<Vec<ThrottleRecord>> {
        let wanted: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        let rows = sqlx::query(
            "SELECT key, failures, window_start, last_failure FROM login_throttle \
             WHERE key = ANY($1)",
        )
        .bind(&wanted)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        let found = rows
            .iter()
            .map(|row| Ok((row.try_get("key")?, throttle_from_row(row)?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(map_err)?;
        Ok(super::in_key_order(keys, found))
    }

    async fn throttle(&self, key: &str) -> StoreResult<ThrottleRecord> {
        let row = sqlx::query(
            "SELECT failures, window_start, last_failure FROM login_throttle WHERE key = $1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref()
            .map(throttle_from_row)
            .transpose()
            .map(Option::unwrap_or_default)
            .map_err(map_err)
    }

    async fn record_failure(
        &self,
        key: &str,
        now: i64,
        window_secs: i64,
    ) -> StoreResult<ThrottleRecord> {
        // An upsert is atomic under concurrency: a conflicting insert waits for the other
        // transaction and then updates the committed row.
        let row = sqlx::query(
            "INSERT INTO login_throttle AS t (key, failures, window_start, last_failure) \
             VALUES ($1, 1, $2, $2) \
             ON CONFLICT (key) DO UPDATE SET \
               failures = CASE WHEN t.window_start + $3 <= $2 THEN 1 ELSE t.failures + 1 END, \
               window_start = CASE WHEN t.window_start + $3 <= $2 THEN $2 ELSE t.window_start END, \
               last_failure = $2 \
             RETURNING failures, window_start, last_failure",
        )
        .bind(key)
        .bind(now)
        .bind(window_secs)
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        throttle_from_row(&row).map_err(map_err)
    }

    async fn clear_throttle(&self, key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM login_throttle WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(map_err)
    }

    async fn prune_throttle(&self, now: i64, window_secs: i64) -> StoreResult<u64> {
        sqlx::query("DELETE FROM login_throttle WHERE window_start <= $1")
            .bind(now.saturating_sub(window_secs))
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
            .map_err(map_err)
    }

    async fn user_sessions(&self, user_id: &str, now: i64) -> StoreResult<Vec<SessionRecord>> {
        let sql = format!(
            "SELECT {SESSION_COLS} FROM sessions WHERE user_id = $1 AND revoked_at IS NULL \
             AND absolute_expires_at > $2 ORDER BY created_at DESC, id COLLATE \"C\""
        );
        let rows = sqlx::query(&sql)
            .bind(user_id)
            .bind(now)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(session_from_row)
            .collect::<Result<_, _>>()
            .map_err(map_err)
    }

    async fn add_revocation(
        &self,
        kind: RevocationKind,
        value: &str,
        before: Option<i64>,
        before_ms: Option<i64>,
        now: i64,
        expires_at: i64,
    ) -> StoreResult<RevocationRecord> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        lock_revocations(&mut tx).await?;
        let row = sqlx::query(&format!(
            "INSERT INTO revocations (kind, value, before, before_ms, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {REVOCATION_COLS}"
        ))
        .bind(kind.as_str())
        .bind(value)
        .bind(before)
        .bind(before_ms)
        .bind(now)
        .bind(expires_at)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        let record = revocation_from_row(&row).map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(record)
    }

    async fn revocations_after(
        &self,
        after: i64,
        now: i64,
        limit: u32,
    ) -> StoreResult<Vec<RevocationRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {REVOCATION_COLS} FROM revocations \
             WHERE id > $1 AND expires_at > $2 ORDER BY id LIMIT $3"
        ))
        .bind(after)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(revocation_from_row)
            .collect::<Result<_, _>>()
            .map_err(map_err)
    }

    async fn is_revoked(
        &self,
        jti: &str,
        sid: Option<&str>,
        sub: &str,
        iat: i64,
        iat_ms: Option<i64>,
        now: i64,
    ) -> StoreResult<bool> {
        let row = sqlx::query(
            "SELECT EXISTS (SELECT 1 FROM revocations WHERE expires_at > $1 AND ( \
               (kind = 'jti' AND value = $2) OR (kind = 'sid' AND value = $3) OR \
               (kind = 'sub' AND value = $4 AND CASE WHEN before_ms IS NOT NULL AND $6::BIGINT IS NOT NULL \
                 THEN before_ms >= $6::BIGINT ELSE before >= $5 END)))",
        )
        .bind(now)
        .bind(jti)
        .bind(sid)
        .bind(sub)
        .bind(iat)
        .bind(iat_ms)
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        row.try_get::<bool, _>(0).map_err(map_err)
    }

    async fn prune(&self, now: i64) -> StoreResult<u64> {
        let a = sqlx::query("DELETE FROM revocations WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(map_err)?
            .rows_affected();
        let b = sqlx::query("DELETE FROM opaque_tokens WHERE exp <= $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(map_err)?
            .rows_affected();
        Ok(a + b)
    }

    async fn create_client(&self, c: &ClientRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO clients (id, name, kind, secret_hash, scopes, audiences, token_format, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&c.id)
        .bind(&c.name)
        .bind(&c.kind)
        .bind(&c.secret_hash)
        .bind(c.scopes.join(" "))
        .bind(c.audiences.join(" "))
        .bind(&c.token_format)
        .bind(c.created_at)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(map_err)
    }

    async fn client(&self, id: &str) -> StoreResult<Option<ClientRecord>> {
        self.one(
            &format!("SELECT {CLIENT_COLS} FROM clients WHERE id = $1"),
            id,
            client_from_row,
        )
        .await
    }

    async fn client_by_name(&self, name: &str) -> StoreResult<Option<ClientRecord>> {
        self.one(
            &format!("SELECT {CLIENT_COLS} FROM clients WHERE name = $1"),
            name,
            client_from_row,
        )
        .await
    }

    async fn list_clients(&self) -> StoreResult<Vec<ClientRecord>> {
        self.all(
            &format!("SELECT {CLIENT_COLS} FROM clients ORDER BY name COLLATE \"C\""),
            client_from_row,
        )
        .await
    }

    async fn remove_client(&self, id: &str) -> StoreResult<bool> {
        sqlx::query("DELETE FROM clients WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected() == 1)
            .map_err(map_err)
    }

    async fn set_client_secret(&self, id: &str, secret_hash: &[u8]) -> StoreResult<bool> {
        sqlx::query("UPDATE clients SET secret_hash = $1 WHERE id = $2")
            .bind(secret_hash)
            .bind(id)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected() == 1)
            .map_err(map_err)
    }

    async fn put_opaque_token(&self, hash: &[u8], t: &OpaqueTokenRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO opaque_tokens (hash, jti, sub, client_id, aud, scope, role, sid, iat, iat_ms, exp) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(hash)
        .bind(&t.jti)
        .bind(&t.sub)
        .bind(&t.client_id)
        .bind(&t.aud)
        .bind(&t.scope)
        .bind(&t.role)
        .bind(&t.sid)
        .bind(t.iat)
        .bind(t.iat_ms)
        .bind(t.exp)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(map_err)
    }

    async fn opaque_token(&self, hash: &[u8]) -> StoreResult<Option<OpaqueTokenRecord>> {
        sqlx::query(
            "SELECT jti, sub, client_id, aud, scope, role, sid, iat, iat_ms, exp \
             FROM opaque_tokens WHERE hash = $1",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await
        .and_then(|r| r.as_ref().map(opaque_from_row).transpose())
        .map_err(map_err)
    }

    async fn list_keys(&self) -> StoreResult<Vec<KeyRecord>> {
        self.all(
            &format!("SELECT {KEY_COLS} FROM signing_keys ORDER BY created_at, kid COLLATE \"C\""),
            key_from_row,
        )
        .await
    }

    async fn insert_key(&self, k: &KeyRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, state, private_key, public_jwk, created_at, \
             activates_at, activated_at, retired_at, removes_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&k.kid)
        .bind(&k.alg)
        .bind(k.state.as_str())
        .bind(&k.private_key)
        .bind(&k.public_jwk)
        .bind(k.created_at)
        .bind(k.activates_at)
        .bind(k.activated_at)
        .bind(k.retired_at)
        .bind(k.removes_at)
        .bind(k.revoked_at)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(map_err)
    }

    async fn change_keys(&self, changes: &[KeyChange]) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // Taken before any key row, so that the lock order is always revocations first.
        if changes.iter().any(|c| c.to == KeyState::Revoked) {
            lock_revocations(&mut tx).await?;
        }
        for c in changes {
            let sql = match c.to {
                KeyState::Current => {
                    "UPDATE signing_keys SET state = 'current', activated_at = $1 \
                     WHERE kid = $2 AND state = $3"
                }
                KeyState::Retired => {
                    "UPDATE signing_keys SET state = 'retired', retired_at = $1, removes_at = $4 \
                     WHERE kid = $2 AND state = $3"
                }
                KeyState::Removed => {
                    "UPDATE signing_keys SET state = 'removed', private_key = NULL, removes_at = $1 \
                     WHERE kid = $2 AND state = $3"
                }
                KeyState::Revoked => {
                    "UPDATE signing_keys SET state = 'revoked', private_key = NULL, revoked_at = $1 \
                     WHERE kid = $2 AND state = $3"
                }
                KeyState::Next => {
                    return Err(StoreError::Other("a key becomes next only when added".into()))
                }
            };
            let mut query = sqlx::query(sql)
                .bind(c.at)
                .bind(&c.kid)
                .bind(c.from.as_str());
            if c.to == KeyState::Retired {
                query = query.bind(c.until);
            }
            let done = query
                .execute(&mut *tx)
                .await
                .map_err(map_err)?
                .rows_affected();
            if done != 1 {
                tx.rollback().await.map_err(map_err)?;
                return Ok(false);
            }
            if c.to == KeyState::Revoked {
                sqlx::query(
                    "INSERT INTO revocations (kind, value, before, created_at, expires_at) \
                     VALUES ('kid', $1, NULL, $2, $3)",
                )
                .bind(&c.kid)
                .bind(c.at)
                .bind(c.until.unwrap_or(c.at))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            }
        }
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn secrets(&self) -> StoreResult<Vec<(String, Vec<u8>)>> {
        let rows = sqlx::query("SELECT name, value FROM secrets ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|r| Ok((r.try_get("name")?, r.try_get("value")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(map_err)
    }

    async fn reseal(
        &self,
        keys: &[(String, Vec<u8>)],
        secrets: &[(String, Vec<u8>)],
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        for (kid, sealed) in keys {
            sqlx::query(
                "UPDATE signing_keys SET private_key = $1 WHERE kid = $2 AND private_key IS NOT NULL",
            )
            .bind(sealed)
            .bind(kid)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        for (name, sealed) in secrets {
            sqlx::query("UPDATE secrets SET value = $1 WHERE name = $2")
                .bind(sealed)
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn secret_or_insert(&self, name: &str, value: &[u8], now: i64) -> StoreResult<Vec<u8>> {
        // A concurrent insert of the same name makes this one wait for its outcome; the
        // SELECT, a new statement, then sees the winner.
        sqlx::query(
            "INSERT INTO secrets (name, value, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(value)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        let row = sqlx::query("SELECT value FROM secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        row.try_get::<Vec<u8>, _>(0).map_err(map_err)
    }

    async fn try_lead(&self, name: &str) -> StoreResult<bool> {
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
            sqlx::query("SELECT pg_try_advisory_lock($1)")
                .bind(lock_key(schema, name))
                .fetch_one(&mut leader.conn)
                .await
                .and_then(|row| row.try_get::<bool, _>(0))
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

    fn revocation_wakeups(&self) -> Option<tokio::sync::mpsc::Receiver<()>> {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let pool = self.pool.clone();
        let schema = self.schema.clone().unwrap_or_default();
        tokio::spawn(async move {
            loop {
                let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::warn!(error = %e, "revocation notifications: cannot listen; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                if let Err(e) = listener.listen(REVOCATIONS_CHANNEL).await {
                    tracing::warn!(error = %e, "revocation notifications: LISTEN failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
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
                        Ok(()) | Err(tokio::sync::mpsc::error::TrySendError::Full(())) => {}
                        Err(tokio::sync::mpsc::error::TrySendError::Closed(())) => return,
                    }
                }
                if tx.is_closed() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        Some(rx)
    }
}
