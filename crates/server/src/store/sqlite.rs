//! The embedded SQLite store: one file, WAL journal, migrations compiled into the binary.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, SqlitePool};

use super::{
    ClientRecord, KeyChange, KeyRecord, KeyState, OpaqueTokenRecord, RefreshRecord, RevocationKind,
    RevocationRecord, SessionRecord, Store, StoreError, StoreResult, ThrottleRecord, UserRecord,
};

/// SQLite-backed [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(Box::new(e)),
        sqlx::Error::Database(db)
            if matches!(db.code().as_deref(), Some("5" | "6" | "10" | "13" | "14")) =>
        {
            // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN
            StoreError::Unavailable(Box::new(e))
        }
        _ => StoreError::Other(Box::new(e)),
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and runs the embedded migrations.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL survives a process crash (SIGKILL) without losing committed
            // transactions; FULL also survives power loss at a cost per commit.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        Self::connect(options).await
    }

    /// Opens a database from a `sqlite:` URL.
    pub async fn open_url(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(map_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        Self::connect(options).await
    }

    /// Opens an existing database file read-only, for commands that only list: nothing is
    /// created, no migration runs, and a schema older than this binary's is refused.
    pub async fn open_read_only(path: &Path) -> StoreResult<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .create_if_missing(false)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        Self::connect_read_only(options).await
    }

    /// Like [`SqliteStore::open_read_only`], from a `sqlite:` URL.
    pub async fn open_url_read_only(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(map_err)?
            .read_only(true)
            .create_if_missing(false)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        Self::connect_read_only(options).await
    }

    async fn connect_read_only(options: SqliteConnectOptions) -> StoreResult<Self> {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(map_err)?;
        // The journal mode is left as the file has it (WAL, set by the writers).
        let applied: Option<i64> =
            match sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&pool)
                .await
            {
                Ok(v) => v,
                // Never migrated at all.
                Err(sqlx::Error::Database(e)) if e.message().contains("no such table") => None,
                Err(e) => return Err(map_err(e)),
            };
        super::check_schema_version(applied, &sqlx::migrate!("./migrations/sqlite"))?;
        Ok(SqliteStore { pool })
    }

    async fn connect(options: SqliteConnectOptions) -> StoreResult<Self> {
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(map_err)?;
        Self::check_username_collisions(&pool).await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Other(Box::new(e)))?;
        Ok(SqliteStore { pool })
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
        let groups = sqlx::query(
            "SELECT group_concat(username, ', ') AS names FROM \
               (SELECT username FROM users WHERE lower(username) IN \
                 (SELECT lower(username) FROM users GROUP BY lower(username) HAVING count(*) > 1) \
               ORDER BY lower(username), username) \
             GROUP BY lower(username) ORDER BY lower(username)",
        )
        .fetch_all(pool)
        .await
        .map_err(map_err)?
        .iter()
        .map(|row| row.try_get::<String, _>("names"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(map_err)?;
        super::refuse_collisions(groups)
    }

    /// Runs `PRAGMA integrity_check` and returns its first line (`ok` when healthy).
    pub async fn integrity_check(&self) -> StoreResult<String> {
        let row = sqlx::query("PRAGMA integrity_check")
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        row.try_get::<String, _>(0).map_err(map_err)
    }

    /// Runs a query with one text parameter and maps the row, if any.
    async fn one<T>(
        &self,
        sql: &str,
        key: &str,
        map: fn(&SqliteRow) -> Result<T, sqlx::Error>,
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
        map: fn(&SqliteRow) -> Result<T, sqlx::Error>,
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

    /// Runs `sql`, an `UPDATE users SET <column> = ?, updated_at = ? WHERE id = ?`.
    async fn update_user<'q, T>(
        &self,
        sql: &'static str,
        value: T,
        id: &'q str,
        now: i64,
    ) -> StoreResult<bool>
    where
        T: 'q + Send + sqlx::Encode<'q, Sqlite> + sqlx::Type<Sqlite>,
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

    /// Closes the pool, checkpointing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn user_from_row(row: &SqliteRow) -> Result<UserRecord, sqlx::Error> {
    Ok(UserRecord {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        password_hash: row.try_get("password_hash")?,
        role: row.try_get("role")?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        created_at: row.try_get("created_at")?,
    })
}

fn session_from_row(row: &SqliteRow) -> Result<SessionRecord, sqlx::Error> {
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

fn throttle_from_row(row: &SqliteRow) -> Result<ThrottleRecord, sqlx::Error> {
    Ok(ThrottleRecord {
        failures: row.try_get("failures")?,
        window_start: row.try_get("window_start")?,
        last_failure: row.try_get("last_failure")?,
    })
}

fn revocation_from_row(row: &SqliteRow) -> Result<RevocationRecord, sqlx::Error> {
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

fn client_from_row(row: &SqliteRow) -> Result<ClientRecord, sqlx::Error> {
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

fn opaque_from_row(row: &SqliteRow) -> Result<OpaqueTokenRecord, sqlx::Error> {
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

const CLIENT_COLS: &str =
    "id, name, kind, secret_hash, scopes, audiences, token_format, created_at";

const USER_COLS: &str = "id, username, password_hash, role, disabled, created_at";
const SESSION_COLS: &str = "id, user_id, client_id, created_at, last_used_at, \
     absolute_expires_at, generation, rotated_at, revoked_at, user_agent, ip";

#[async_trait]
impl Store for SqliteStore {
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
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&u.id)
        .bind(&u.username)
        .bind(&u.password_hash)
        .bind(&u.role)
        .bind(i64::from(u.disabled))
        .bind(u.created_at)
        .bind(u.created_at)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(map_err)
    }

    async fn user_by_name(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        self.one(
            &format!("SELECT {USER_COLS} FROM users WHERE lower(username) = ?"),
            &username.to_ascii_lowercase(),
            user_from_row,
        )
        .await
    }

    async fn user_by_id(&self, id: &str) -> StoreResult<Option<UserRecord>> {
        self.one(
            &format!("SELECT {USER_COLS} FROM users WHERE id = ?"),
            id,
            user_from_row,
        )
        .await
    }

    async fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
        self.all(
            &format!("SELECT {USER_COLS} FROM users ORDER BY username"),
            user_from_row,
        )
        .await
    }

    async fn set_disabled(&self, id: &str, disabled: bool, now: i64) -> StoreResult<bool> {
        self.update_user(
            "UPDATE users SET disabled = ?, updated_at = ? WHERE id = ?",
            i64::from(disabled),
            id,
            now,
        )
        .await
    }

    async fn set_password_hash(&self, id: &str, hash: &str, now: i64) -> StoreResult<bool> {
        self.update_user(
            "UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?",
            hash,
            id,
            now,
        )
        .await
    }

    async fn set_role(&self, id: &str, role: &str, now: i64) -> StoreResult<bool> {
        self.update_user(
            "UPDATE users SET role = ?, updated_at = ? WHERE id = ?",
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
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            "INSERT INTO refresh_tokens (hash, session_id, generation, created_at) VALUES (?, ?, ?, ?)",
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
            &format!("SELECT {SESSION_COLS} FROM sessions WHERE id = ?"),
            id,
            session_from_row,
        )
        .await
    }

    async fn refresh_token(&self, token_hash: &[u8]) -> StoreResult<Option<RefreshRecord>> {
        sqlx::query("SELECT session_id, generation FROM refresh_tokens WHERE hash = ?")
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
        let updated = sqlx::query(
            "UPDATE sessions SET generation = generation + 1, rotated_at = ?, last_used_at = ? \
             WHERE id = ? AND generation = ? AND revoked_at IS NULL",
        )
        .bind(now)
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
            "INSERT INTO refresh_tokens (hash, session_id, generation, created_at) VALUES (?, ?, ?, ?)",
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
        sqlx::query("UPDATE sessions SET last_used_at = max(last_used_at, ?) WHERE id = ?")
            .bind(now)
            .bind(session_id)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(map_err)
    }

    async fn revoke_session(&self, session_id: &str, reason: &str, now: i64) -> StoreResult<bool> {
        sqlx::query(
            "UPDATE sessions SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND revoked_at IS NULL",
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
            "UPDATE sessions SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND revoked_at IS NULL",
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
        let row = sqlx::query(
            "INSERT INTO revocations (kind, value, before, created_at, expires_at) \
             VALUES ('sid', ?, NULL, ?, ?) RETURNING id, kind, value, before, before_ms, created_at, expires_at",
        )
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
            "UPDATE sessions SET revoked_at = ?, revoked_reason = ? WHERE user_id = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(reason)
        .bind(user_id)
        .execute(&self.pool)
        .await
        .map(|r| r.rows_affected())
        .map_err(map_err)
    }

    async fn throttle(&self, key: &str) -> StoreResult<ThrottleRecord> {
        let row = sqlx::query(
            "SELECT failures, window_start, last_failure FROM login_throttle WHERE key = ?",
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

    async fn throttles(&self, keys: &[&str]) -> StoreResult<Vec<ThrottleRecord>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = String::from(
            "SELECT key, failures, window_start, last_failure FROM login_throttle WHERE key IN (",
        );
        for i in 0..keys.len() {
            sql.push_str(if i == 0 { "?" } else { ", ?" });
        }
        sql.push(')');
        let mut query = sqlx::query(&sql);
        for key in keys {
            query = query.bind(*key);
        }
        let rows = query.fetch_all(&self.pool).await.map_err(map_err)?;
        let found = rows
            .iter()
            .map(|row| Ok((row.try_get("key")?, throttle_from_row(row)?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(map_err)?;
        Ok(super::in_key_order(keys, found))
    }

    async fn record_failure(
        &self,
        key: &str,
        now: i64,
        window_secs: i64,
    ) -> StoreResult<ThrottleRecord> {
        let row = sqlx::query(
            "INSERT INTO login_throttle (key, failures, window_start, last_failure) VALUES (?1, 1, ?2, ?2) \
             ON CONFLICT(key) DO UPDATE SET \
               failures = CASE WHEN window_start + ?3 <= ?2 THEN 1 ELSE failures + 1 END, \
               window_start = CASE WHEN window_start + ?3 <= ?2 THEN ?2 ELSE window_start END, \
               last_failure = ?2 \
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
        sqlx::query("DELETE FROM login_throttle WHERE key = ?")
            .bind(key)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(map_err)
    }

    async fn prune_throttle(&self, now: i64, window_secs: i64) -> StoreResult<u64> {
        sqlx::query("DELETE FROM login_throttle WHERE window_start <= ?")
            .bind(now.saturating_sub(window_secs))
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
            .map_err(map_err)
    }

    async fn user_sessions(&self, user_id: &str, now: i64) -> StoreResult<Vec<SessionRecord>> {
        let sql = format!(
            "SELECT {SESSION_COLS} FROM sessions WHERE user_id = ? AND revoked_at IS NULL \
             AND absolute_expires_at > ? ORDER BY created_at DESC, id"
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
        let row = sqlx::query(
            "INSERT INTO revocations (kind, value, before, before_ms, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?) RETURNING id, kind, value, before, before_ms, created_at, expires_at",
        )
        .bind(kind.as_str())
        .bind(value)
        .bind(before)
        .bind(before_ms)
        .bind(now)
        .bind(expires_at)
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        revocation_from_row(&row).map_err(map_err)
    }

    async fn revocations_after(
        &self,
        after: i64,
        now: i64,
        limit: u32,
    ) -> StoreResult<Vec<RevocationRecord>> {
        let rows = sqlx::query(
            "SELECT id, kind, value, before, before_ms, created_at, expires_at FROM revocations \
             WHERE id > ? AND expires_at > ? ORDER BY id LIMIT ?",
        )
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
            "SELECT EXISTS (SELECT 1 FROM revocations WHERE expires_at > ?1 AND ( \
               (kind = 'jti' AND value = ?2) OR (kind = 'sid' AND value = ?3) OR \
               (kind = 'sub' AND value = ?4 AND CASE WHEN before_ms IS NOT NULL AND ?6 IS NOT NULL \
                 THEN before_ms >= ?6 ELSE before >= ?5 END)))",
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
        Ok(row.try_get::<i64, _>(0).map_err(map_err)? != 0)
    }

    async fn prune(&self, now: i64) -> StoreResult<u64> {
        let a = sqlx::query("DELETE FROM revocations WHERE expires_at <= ?")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(map_err)?
            .rows_affected();
        let b = sqlx::query("DELETE FROM opaque_tokens WHERE exp <= ?")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(map_err)?
            .rows_affected();
        Ok(a + b)
    }

    async fn create_client(&self, c: &ClientRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO clients (id, name, kind, secret_hash, scopes, audiences, token_format, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
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
            &format!("SELECT {CLIENT_COLS} FROM clients WHERE id = ?"),
            id,
            client_from_row,
        )
        .await
    }

    async fn client_by_name(&self, name: &str) -> StoreResult<Option<ClientRecord>> {
        self.one(
            &format!("SELECT {CLIENT_COLS} FROM clients WHERE name = ?"),
            name,
            client_from_row,
        )
        .await
    }

    async fn list_clients(&self) -> StoreResult<Vec<ClientRecord>> {
        self.all(
            &format!("SELECT {CLIENT_COLS} FROM clients ORDER BY name"),
            client_from_row,
        )
        .await
    }

    async fn remove_client(&self, id: &str) -> StoreResult<bool> {
        sqlx::query("DELETE FROM clients WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected() == 1)
            .map_err(map_err)
    }

    async fn set_client_secret(&self, id: &str, secret_hash: &[u8]) -> StoreResult<bool> {
        sqlx::query("UPDATE clients SET secret_hash = ? WHERE id = ?")
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
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            "SELECT jti, sub, client_id, aud, scope, role, sid, iat, iat_ms, exp FROM opaque_tokens WHERE hash = ?",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await
        .and_then(|r| r.as_ref().map(opaque_from_row).transpose())
        .map_err(map_err)
    }

    async fn list_keys(&self) -> StoreResult<Vec<KeyRecord>> {
        self.all(
            &format!("SELECT {KEY_COLS} FROM signing_keys ORDER BY created_at, kid"),
            key_from_row,
        )
        .await
    }

    async fn insert_key(&self, k: &KeyRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, state, private_key, public_jwk, created_at, \
             activates_at, activated_at, retired_at, removes_at, revoked_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        for c in changes {
            let sql = match c.to {
                KeyState::Current => {
                    "UPDATE signing_keys SET state = 'current', activated_at = ?1 \
                     WHERE kid = ?3 AND state = ?4"
                }
                KeyState::Retired => {
                    "UPDATE signing_keys SET state = 'retired', retired_at = ?1, removes_at = ?2 \
                     WHERE kid = ?3 AND state = ?4"
                }
                KeyState::Removed => {
                    "UPDATE signing_keys SET state = 'removed', private_key = NULL, removes_at = ?1 \
                     WHERE kid = ?3 AND state = ?4"
                }
                KeyState::Revoked => {
                    "UPDATE signing_keys SET state = 'revoked', private_key = NULL, revoked_at = ?1 \
                     WHERE kid = ?3 AND state = ?4"
                }
                KeyState::Next => {
                    return Err(StoreError::Other("a key becomes next only when added".into()))
                }
            };
            let done = sqlx::query(sql)
                .bind(c.at)
                .bind(c.until)
                .bind(&c.kid)
                .bind(c.from.as_str())
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
                     VALUES ('kid', ?, NULL, ?, ?)",
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
                "UPDATE signing_keys SET private_key = ? WHERE kid = ? AND private_key IS NOT NULL",
            )
            .bind(sealed)
            .bind(kid)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        for (name, sealed) in secrets {
            sqlx::query("UPDATE secrets SET value = ? WHERE name = ?")
                .bind(sealed)
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn secret_or_insert(&self, name: &str, value: &[u8], now: i64) -> StoreResult<Vec<u8>> {
        sqlx::query("INSERT INTO secrets (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(value)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        let row = sqlx::query("SELECT value FROM secrets WHERE name = ?")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        row.try_get::<Vec<u8>, _>(0).map_err(map_err)
    }
}

const KEY_COLS: &str = "kid, alg, state, private_key, public_jwk, created_at, activates_at, \
                        activated_at, retired_at, removes_at, revoked_at";

fn key_from_row(r: &SqliteRow) -> Result<KeyRecord, sqlx::Error> {
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
