//! SQLite on the calling thread, for the statements of the request path.
//!
//! sqlx runs each SQLite connection on a thread of its own, behind a channel: every
//! statement is a hand-off to that thread and back, and under load those hand-offs, not
//! SQLite, were most of a token grant's CPU time (BENCHMARKS.md, issue 15). The statements
//! that the token grants, userinfo and every check of an access token run (`core::hot`)
//! come here instead: rusqlite connections to the same file, statements prepared once per
//! connection, each call a few microseconds of SQLite on the task's own thread.
//!
//! - **Reads** take a connection from a small pool. In WAL mode a reader never waits for
//!   the writer.
//! - **Writes** share one connection behind a lock and run as one `BEGIN IMMEDIATE`
//!   transaction each, so that this process's writers queue on the lock (microseconds)
//!   rather than in SQLite's busy handler. A writer of another connection (sqlx's, or
//!   another process) can still hold the database; then the busy timeout applies, as it
//!   does to sqlx's connections.
//!
//! - **Checkpoints** (copying the WAL back into the database file, with its fsyncs) run on
//!   a thread of their own every [`CHECKPOINT_EVERY`]. The writer's automatic checkpoint
//!   is off: it would run inside the committing call, holding the write lock for
//!   milliseconds while every other writer, and so every runtime thread, waits.
//!
//! Migrations, administration and everything off the request path stay on sqlx; both use
//! the same file, journal and synchronous settings.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use rusqlite::types::Type;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, Row, Transaction};

use super::rows::UnknownValue;
use super::{AuthCodeRecord, OpaqueTokenRecord, RefreshRecord};
use super::{ClientKind, ClientRecord, SessionRecord, StoreError, StoreResult, UserRecord};
use crate::config::TokenFormat;

/// How long a statement waits for a database another connection holds, as sqlx's.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle read connections kept open.
const IDLE_READERS: usize = 8;
/// Prepared statements kept per connection (more than the request path has).
const STATEMENTS: usize = 32;
/// How often the checkpoint thread copies the WAL back into the database file.
pub(super) const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// The connections of one SQLite file.
pub(super) struct Direct {
    path: PathBuf,
    read_only: bool,
    closed: AtomicBool,
    readers: Mutex<Vec<Connection>>,
    writer: Mutex<Option<Connection>>,
    /// Dropped to stop the checkpoint thread.
    stop_checkpoints: Mutex<Option<mpsc::Sender<()>>>,
}

/// The store was closed: every later call is unavailable, as sqlx's closed pool.
#[derive(Debug, thiserror::Error)]
#[error("the store is closed")]
struct Closed;

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Direct")
            .field("path", &self.path)
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
}

/// A lock whose holder panicked still guards a usable connection: a transaction it left
/// open was rolled back when the holder's `Transaction` was dropped.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The shared statement text, with sqlx's `$N` parameters as SQLite's `?N` (the same
/// numbered parameters; SQLite would read `$1` as a name).
fn sqlite(sql: &str) -> String {
    sql.replace('$', "?")
}

/// Maps a rusqlite error as `sqlite::map_err` maps sqlx's.
pub(super) fn map_err(e: rusqlite::Error) -> StoreError {
    use rusqlite::ffi;
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            StoreError::Conflict
        }
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                ErrorCode::DatabaseBusy
                    | ErrorCode::DatabaseLocked
                    | ErrorCode::SystemIoFailure
                    | ErrorCode::DiskFull
                    | ErrorCode::CannotOpen
            ) =>
        {
            StoreError::Unavailable(Box::new(e))
        }
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..) => StoreError::Corrupt(Box::new(e)),
        _ => StoreError::Database(Box::new(e)),
    }
}

impl Direct {
    /// The connections of the file at `path` (opened on first use).
    pub(super) fn new(path: &Path, read_only: bool) -> Self {
        Direct {
            path: path.to_owned(),
            read_only,
            closed: AtomicBool::new(false),
            readers: Mutex::new(Vec::new()),
            writer: Mutex::new(None),
            stop_checkpoints: Mutex::new(None),
        }
    }

    /// Starts the checkpoint thread of a writable store; it ends when the store is closed
    /// or its last handle dropped.
    pub(super) fn start_checkpoints(direct: &Arc<Direct>) -> std::io::Result<()> {
        let weak: Weak<Direct> = Arc::downgrade(direct);
        let (stop, stopped) = mpsc::channel::<()>();
        *lock(&direct.stop_checkpoints) = Some(stop);
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                let mut conn = None;
                // A message never comes: the sender's drop (close, or the store's drop)
                // ends the wait.
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
                    let Some(direct) = weak.upgrade() else { return };
                    if let Err(e) = direct.checkpoint(&mut conn) {
                        tracing::warn!(error = %e, "SQLite checkpoint failed; retrying");
                        conn = None;
                    }
                }
            })
            .map(drop)
    }

    /// One passive checkpoint: as much of the WAL as no reader still needs, without
    /// waiting for readers or writers.
    fn checkpoint(&self, conn: &mut Option<Connection>) -> rusqlite::Result<()> {
        let conn = match conn {
            Some(c) => c,
            empty => empty.insert(self.open()?),
        };
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
    }

    /// Closes every connection; later calls fail as unavailable.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        lock(&self.stop_checkpoints).take();
        lock(&self.readers).clear();
        *lock(&self.writer) = None;
    }

    fn check_open(&self) -> StoreResult<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable(Box::new(Closed)));
        }
        Ok(())
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let flags = if self.read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
        };
        let conn =
            Connection::open_with_flags(&self.path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.set_prepared_statement_cache_capacity(STATEMENTS);
        // Per connection, as sqlx sets them on its own (the WAL journal is the file's).
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(conn)
    }

    /// Runs `f` on an idle read connection.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        self.check_open()?;
        let idle = lock(&self.readers).pop();
        let conn = match idle {
            Some(c) => c,
            None => self.open().map_err(map_err)?,
        };
        let out = f(&conn);
        let mut idle = lock(&self.readers);
        if idle.len() < IDLE_READERS && !self.closed.load(Ordering::SeqCst) {
            idle.push(conn);
        }
        out.map_err(map_err)
    }

    /// Runs `f` in one write transaction, committed when `f` returns `Ok`, rolled back
    /// otherwise.
    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>) -> StoreResult<T> {
        let mut writer = lock(&self.writer);
        self.check_open()?;
        let conn = match &mut *writer {
            Some(c) => c,
            empty => {
                let c = self.open().map_err(map_err)?;
                // Checkpoints are the checkpoint thread's (see the module's note).
                c.pragma_update_and_check(None, "wal_autocheckpoint", 0, |_| Ok(()))
                    .map_err(map_err)?;
                empty.insert(c)
            }
        };
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(map_err)?;
        let out = f(&tx).map_err(map_err)?;
        tx.commit().map_err(map_err)?;
        Ok(out)
    }

    /// The first row of `sql` (shared text) with `params`, mapped, if any.
    fn one<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> StoreResult<Option<T>> {
        self.read(|c| {
            c.prepare_cached(&sqlite(sql))?
                .query_row(params, map)
                .optional()
        })
    }

    pub(super) fn user_by_id(&self, id: &str) -> StoreResult<Option<UserRecord>> {
        self.one(&super::core::hot::USER_BY_ID, [id], user)
    }

    pub(super) fn session(&self, id: &str) -> StoreResult<Option<SessionRecord>> {
        self.one(&super::core::hot::SESSION, [id], session)
    }

    pub(super) fn client(&self, id: &str) -> StoreResult<Option<ClientRecord>> {
        self.one(&super::core::hot::CLIENT, [id], client)
    }

    pub(super) fn refresh_token(&self, hash: &[u8]) -> StoreResult<Option<RefreshRecord>> {
        self.one(super::core::hot::REFRESH_TOKEN, [hash], |r| {
            Ok(RefreshRecord {
                session_id: r.get(0)?,
                generation: r.get(1)?,
            })
        })
    }

    pub(super) fn opaque_token(&self, hash: &[u8]) -> StoreResult<Option<OpaqueTokenRecord>> {
        self.one(super::core::hot::OPAQUE, [hash], |r| {
            Ok(OpaqueTokenRecord {
                jti: r.get(0)?,
                sub: r.get(1)?,
                client_id: r.get(2)?,
                aud: r.get(3)?,
                scope: r.get(4)?,
                role: r.get(5)?,
                sid: r.get(6)?,
                iat: r.get(7)?,
                iat_ms: r.get(8)?,
                exp: r.get(9)?,
            })
        })
    }

    pub(super) fn token_ended(
        &self,
        jti: &str,
        sid: Option<&str>,
        sub: &str,
        iat: i64,
        iat_ms: Option<i64>,
        now: i64,
    ) -> StoreResult<bool> {
        let params = rusqlite::params![now, jti, sid, sub, iat, iat_ms];
        let ended = self.one(super::core::hot::TOKEN_ENDED, params, |r| r.get(0))?;
        Ok(ended.unwrap_or(false))
    }

    pub(super) fn create_session(&self, s: &SessionRecord, token_hash: &[u8]) -> StoreResult<()> {
        self.write(|tx| {
            tx.prepare_cached(&sqlite(&super::core::hot::INSERT_SESSION))?
                .execute(rusqlite::params![
                    s.id,
                    s.user_id,
                    s.client_id,
                    s.created_at,
                    s.last_used_at,
                    s.absolute_expires_at,
                    s.generation,
                    s.rotated_at,
                    s.revoked_at,
                    s.user_agent,
                    s.ip,
                    s.parent_id,
                    s.offline,
                    s.scope,
                    s.amr,
                    s.auth_time,
                ])?;
            insert_refresh(tx, token_hash, &s.id, s.generation, s.created_at)
        })
    }

    pub(super) fn rotate(
        &self,
        session_id: &str,
        expected_generation: i64,
        new_hash: &[u8],
        now: i64,
    ) -> StoreResult<bool> {
        self.write(|tx| {
            let changed = tx
                .prepare_cached(&sqlite(super::core::hot::ROTATE))?
                .execute(rusqlite::params![now, session_id, expected_generation])?;
            if changed != 1 {
                return Ok(false);
            }
            insert_refresh(tx, new_hash, session_id, expected_generation + 1, now)?;
            Ok(true)
        })
    }

    pub(super) fn put_opaque_token(&self, hash: &[u8], t: &OpaqueTokenRecord) -> StoreResult<()> {
        self.write(|tx| {
            tx.prepare_cached(&sqlite(super::core::hot::INSERT_OPAQUE))?
                .execute(rusqlite::params![
                    hash,
                    t.jti,
                    t.sub,
                    t.client_id,
                    t.aud,
                    t.scope,
                    t.role,
                    t.sid,
                    t.iat,
                    t.iat_ms,
                    t.exp,
                ])
                .map(drop)
        })
    }

    pub(super) fn use_auth_code(
        &self,
        hash: &[u8],
        child_session_id: &str,
        now: i64,
    ) -> StoreResult<Option<AuthCodeRecord>> {
        let found = self.write(|tx| {
            tx.prepare_cached(&sqlite(&super::core::hot::USE_CODE))?
                .query_row(rusqlite::params![now, child_session_id, hash], code)
                .optional()
        })?;
        Ok(super::core::hot::first_use_as_unused(
            found,
            child_session_id,
        ))
    }
}

fn insert_refresh(
    tx: &Transaction<'_>,
    hash: &[u8],
    session_id: &str,
    generation: i64,
    now: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(&sqlite(super::core::hot::INSERT_REFRESH))?
        .execute(rusqlite::params![hash, session_id, generation, now])
        .map(drop)
}

/// Parses text column `index` (named `column`); a value `parse` refuses is a conversion
/// error of that column (a corrupt row), never a silent default.
fn parsed<T>(
    row: &Row<'_>,
    index: usize,
    column: &'static str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> rusqlite::Result<T> {
    let value: String = row.get(index)?;
    parse(&value).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            Type::Text,
            Box::new(UnknownValue { column, value }),
        )
    })
}

/// Bytes from a blob column, or from text, as sqlx reads them.
fn bytes(row: &Row<'_>, index: usize) -> rusqlite::Result<Vec<u8>> {
    use rusqlite::types::ValueRef;
    match row.get_ref(index)? {
        ValueRef::Blob(b) | ValueRef::Text(b) => Ok(b.to_vec()),
        other => Err(rusqlite::Error::InvalidColumnType(
            index,
            "bytes".to_owned(),
            other.data_type(),
        )),
    }
}

/// The words of a space-separated list in text column `index`.
fn words(row: &Row<'_>, index: usize) -> rusqlite::Result<Vec<String>> {
    let text: String = row.get(index)?;
    Ok(text.split_whitespace().map(str::to_owned).collect())
}

/// A row of `core::USER_COLS`.
fn user(r: &Row<'_>) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        id: r.get(0)?,
        username: r.get(1)?,
        password_hash: r.get(2)?,
        role: r.get(3)?,
        disabled: r.get(4)?,
        created_at: r.get(5)?,
    })
}

/// A row of `core::SESSION_COLS`.
fn session(r: &Row<'_>) -> rusqlite::Result<SessionRecord> {
    Ok(SessionRecord {
        id: r.get(0)?,
        user_id: r.get(1)?,
        client_id: r.get(2)?,
        created_at: r.get(3)?,
        last_used_at: r.get(4)?,
        absolute_expires_at: r.get(5)?,
        generation: r.get(6)?,
        rotated_at: r.get(7)?,
        revoked_at: r.get(8)?,
        user_agent: r.get(9)?,
        ip: r.get(10)?,
        parent_id: r.get(11)?,
        offline: r.get(12)?,
        scope: r.get(13)?,
        amr: r.get(14)?,
        auth_time: r.get(15)?,
    })
}

/// A row of `core::CLIENT_COLS`.
fn client(r: &Row<'_>) -> rusqlite::Result<ClientRecord> {
    Ok(ClientRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        kind: parsed(r, 2, "kind", ClientKind::parse)?,
        secret_hash: bytes(r, 3)?,
        scopes: words(r, 4)?,
        audiences: words(r, 5)?,
        token_format: parsed(r, 6, "token_format", TokenFormat::parse)?,
        created_at: r.get(7)?,
        redirect_uris: words(r, 8)?,
        post_logout_redirect_uris: words(r, 9)?,
        backchannel_logout_uri: r.get(10)?,
        first_party: r.get(11)?,
    })
}

/// A row of `core::CODE_COLS`.
fn code(r: &Row<'_>) -> rusqlite::Result<AuthCodeRecord> {
    Ok(AuthCodeRecord {
        client_id: r.get(0)?,
        user_id: r.get(1)?,
        session_id: r.get(2)?,
        redirect_uri: r.get(3)?,
        scope: r.get(4)?,
        nonce: r.get(5)?,
        code_challenge: r.get(6)?,
        auth_time: r.get(7)?,
        amr: r.get(8)?,
        created_at: r.get(9)?,
        expires_at: r.get(10)?,
        used_at: r.get(11)?,
        child_session_id: r.get(12)?,
    })
}
