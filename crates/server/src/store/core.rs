//! The SQL both engines share, written once. sqlx binds `$N` placeholders on SQLite too, so
//! one statement text serves both; [`impl_store!`] instantiates every shared [`Store`]
//! method for an engine's store type. What really differs stays in the engine files:
//! connecting and migrations, which errors mean "unavailable", byte-order collation,
//! `GREATEST` vs `max`, the revocation lock, leadership and LISTEN/NOTIFY. (Several keys
//! are read with an `IN ($1, $2, …)` list, which both engines take, rather than an array.)
//!
//! [`Store`]: super::Store

use super::StoreError;

/// The columns of a [`UserRecord`](super::UserRecord).
pub(super) const USER_COLS: &str = "id, username, password_hash, role, disabled, created_at";
/// The columns of a [`SessionRecord`](super::SessionRecord).
pub(super) const SESSION_COLS: &str = "id, user_id, client_id, created_at, last_used_at, \
     absolute_expires_at, generation, rotated_at, revoked_at, user_agent, ip, parent_id, offline, \
     scope, amr, auth_time";
/// The columns of a [`RevocationRecord`](super::RevocationRecord).
pub(super) const REVOCATION_COLS: &str =
    "id, kind, value, before, before_ms, created_at, expires_at";
/// The columns of a [`ClientRecord`](super::ClientRecord).
pub(super) const CLIENT_COLS: &str = "id, name, kind, secret_hash, scopes, audiences, \
     token_format, created_at, redirect_uris, post_logout_redirect_uris, \
     backchannel_logout_uri, first_party";
/// The columns of an [`AuthCodeRecord`](super::AuthCodeRecord), without its hash.
pub(super) const CODE_COLS: &str = "client_id, user_id, session_id, redirect_uri, scope, \
     nonce, code_challenge, auth_time, amr, created_at, expires_at, used_at, child_session_id";
/// The columns of a [`ConsentRecord`](super::ConsentRecord).
pub(super) const CONSENT_COLS: &str = "user_id, client_id, scope, created_at";
/// The columns of a [`BackchannelRecord`](super::BackchannelRecord).
pub(super) const BACKCHANNEL_COLS: &str = "id, revocation_id, client_id, sid, sub, uri, jti, \
     created_at, attempts, next_attempt_at";
/// The columns of a [`KeyRecord`](super::KeyRecord).
pub(super) const KEY_COLS: &str = "kid, alg, state, private_key, public_jwk, created_at, \
     activates_at, activated_at, retired_at, removes_at, revoked_at";
/// The columns of a [`ThrottleRecord`](super::ThrottleRecord), with its key.
pub(super) const THROTTLE_COLS: &str = "key, failures, window_start, last_failure";
/// The newest migration applied, for the read-only openers.
pub(super) const APPLIED_MIGRATION: &str =
    "SELECT MAX(version) FROM _sqlx_migrations WHERE success";

/// The statements of the request path (token grants, userinfo, every check of an access
/// token), written once: PostgreSQL runs them through sqlx, SQLite on the calling thread
/// (see `direct`), each with its own binding code.
pub(super) mod hot {
    use std::sync::LazyLock;

    use super::{CLIENT_COLS, CODE_COLS, SESSION_COLS, USER_COLS};

    /// A user by id.
    pub(in crate::store) static USER_BY_ID: LazyLock<String> =
        LazyLock::new(|| format!("SELECT {USER_COLS} FROM users WHERE id = $1"));
    /// A session by id.
    pub(in crate::store) static SESSION: LazyLock<String> =
        LazyLock::new(|| format!("SELECT {SESSION_COLS} FROM sessions WHERE id = $1"));
    /// A relying party or other client by id.
    pub(in crate::store) static CLIENT: LazyLock<String> =
        LazyLock::new(|| format!("SELECT {CLIENT_COLS} FROM clients WHERE id = $1"));
    /// A new session, its columns in [`SESSION_COLS`] order.
    pub(in crate::store) static INSERT_SESSION: LazyLock<String> = LazyLock::new(|| {
        format!(
            "INSERT INTO sessions ({SESSION_COLS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        )
    });
    /// A refresh token's hash: hash, session, generation, created at.
    pub(in crate::store) const INSERT_REFRESH: &str =
        "INSERT INTO refresh_tokens (hash, session_id, generation, created_at) \
         VALUES ($1, $2, $3, $4)";
    /// The session and generation of a refresh token's hash.
    pub(in crate::store) const REFRESH_TOKEN: &str =
        "SELECT session_id, generation FROM refresh_tokens WHERE hash = $1";
    /// A rotation: now, session, the generation expected. PostgreSQL, under READ
    /// COMMITTED: a concurrent rotation of the same session waits for this row lock, then
    /// re-checks the generation on the new row version and matches nothing. SQLite has one
    /// writer at a time. Either way exactly one caller wins.
    pub(in crate::store) const ROTATE: &str =
        "UPDATE sessions SET generation = generation + 1, rotated_at = $1, last_used_at = $1 \
         WHERE id = $2 AND generation = $3 AND revoked_at IS NULL";
    /// Whether a token has ended: a revocation record that covers it (now, jti, sid, sub,
    /// iat, iat in ms), or, for a user token, a session that is gone, revoked or another
    /// user's. One round trip.
    pub(in crate::store) const TOKEN_ENDED: &str =
        "SELECT EXISTS (SELECT 1 FROM revocations WHERE expires_at > $1 AND ( \
           (kind = 'jti' AND value = $2) OR (kind = 'sid' AND value = $3) OR \
           (kind = 'sub' AND value = $4 AND CASE \
             WHEN before_ms IS NOT NULL AND CAST($6 AS BIGINT) IS NOT NULL \
             THEN before_ms >= CAST($6 AS BIGINT) ELSE before >= $5 END))) \
         OR (CAST($3 AS TEXT) IS NOT NULL AND NOT EXISTS (SELECT 1 FROM sessions \
           WHERE id = $3 AND revoked_at IS NULL AND user_id = $4))";
    /// An opaque access token: its hash, then the record's fields in order.
    pub(in crate::store) const INSERT_OPAQUE: &str =
        "INSERT INTO opaque_tokens (hash, jti, sub, client_id, aud, scope, role, sid, iat, \
         iat_ms, exp) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
    /// An opaque access token by hash.
    pub(in crate::store) const OPAQUE: &str =
        "SELECT jti, sub, client_id, aud, scope, role, sid, iat, iat_ms, exp \
         FROM opaque_tokens WHERE hash = $1";
    /// One use of an authorization code (now, the new child session, the hash), in one
    /// statement: the first use sets `used_at` and the child session, a later one writes
    /// the row back as it is. The SET expressions read the row before the update,
    /// RETURNING the row after, so the first use is the call that finds its own (fresh,
    /// random) child session id. PostgreSQL: a concurrent use waits for this row lock,
    /// then evaluates the SET on the new row version (used by then) and keeps the first
    /// child. SQLite has one writer at a time.
    pub(in crate::store) static USE_CODE: LazyLock<String> = LazyLock::new(|| {
        format!(
            "UPDATE oidc_codes SET used_at = COALESCE(used_at, $1), \
             child_session_id = CASE WHEN used_at IS NULL THEN $2 ELSE child_session_id END \
             WHERE hash = $3 RETURNING {CODE_COLS}"
        )
    });

    /// What [`Store::use_auth_code`](crate::store::Store::use_auth_code) returns of the
    /// row: a first use (the row holds the child session this call chose) as unused.
    pub(in crate::store) fn first_use_as_unused(
        code: Option<crate::store::AuthCodeRecord>,
        child_session_id: &str,
    ) -> Option<crate::store::AuthCodeRecord> {
        code.map(|mut c| {
            if c.child_session_id.as_deref() == Some(child_session_id) {
                c.used_at = None;
                c.child_session_id = None;
            }
            c
        })
    }
}

/// Maps a database error to a [`StoreError`], keeping it as the source. `unavailable` is
/// the engine's word on which of its errors mean "try again later", beyond a lost pool
/// or connection.
pub(super) fn map_sqlx(e: sqlx::Error, unavailable: fn(&sqlx::Error) -> bool) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(Box::new(e)),
        _ if unavailable(&e) => StoreError::Unavailable(Box::new(e)),
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            StoreError::Corrupt(Box::new(e))
        }
        _ => StoreError::Database(Box::new(e)),
    }
}

/// Maps a migration failure: a statement that failed is mapped as any other.
pub(super) fn map_migrate(
    e: sqlx::migrate::MigrateError,
    map_err: fn(sqlx::Error) -> StoreError,
) -> StoreError {
    match e {
        sqlx::migrate::MigrateError::Execute(e) => map_err(e),
        e => StoreError::Migrate(e),
    }
}

/// Implements [`Store`](super::Store) for `$store`, whose `pool` is a pool of `$db`, with
/// the shared statements, in a module `shared` of the calling module. The calling module
/// provides `map_err(sqlx::Error) -> StoreError` and `$store::lock_revocations(&mut tx)`,
/// which serialises the transactions that add revocations where the engine needs it.
/// `byte_order` follows an `ORDER BY` of text so that both engines sort by bytes;
/// `greatest` names the two-argument maximum. The tokens after them are the engine's own
/// methods of the trait, which see the calling module's names.
macro_rules! impl_store {
    (
        store: $store:ident,
        database: $db:ty,
        byte_order: $bytes:literal,
        greatest: $greatest:literal,
        $($engine:tt)*
    ) => {
        mod shared {
            #[allow(clippy::wildcard_imports)]
            use super::*;
            use $crate::store::core::{
                BACKCHANNEL_COLS, CLIENT_COLS, CODE_COLS, CONSENT_COLS, KEY_COLS, REVOCATION_COLS,
                SESSION_COLS, THROTTLE_COLS, USER_COLS,
            };
            use $crate::store::rows::{in_key_order, KeyedThrottle};
            use $crate::store::{
                AuthCodeRecord, BackchannelRecord, ClientRecord, ConsentRecord, KeyChange, KeyRecord,
                KeyState, MfaTokenRecord, OpaqueTokenRecord, RefreshRecord, TotpRecord,
                ChallengeRecord, PasskeyRecord,
                RevocationKind, RevocationRecord, SessionRecord, Store, StoreError, StoreResult,
                ThrottleRecord, UserRecord,
            };

            type Query<'q> = sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>>;
            type Tx = sqlx::Transaction<'static, $db>;

            /// Runs a statement inside `tx` and counts the rows it changed.
            async fn changed_in(tx: &mut Tx, query: Query<'_>) -> StoreResult<u64> {
                query.execute(&mut **tx).await.map(|r| r.rows_affected()).map_err(map_err)
            }

            /// What a row of this engine maps to.
            trait Record: for<'r> sqlx::FromRow<'r, <$db as sqlx::Database>::Row> + Send + Unpin {}
            impl<T: for<'r> sqlx::FromRow<'r, <$db as sqlx::Database>::Row> + Send + Unpin> Record
                for T {}

            impl $store {
                /// Runs a query with one text parameter and maps the row, if any.
                async fn one<T: Record>(&self, sql: &str, key: &str) -> StoreResult<Option<T>> {
                    let query = sqlx::query_as(sql).bind(key);
                    query.fetch_optional(&self.pool).await.map_err(map_err)
                }

                /// Runs a query without parameters and maps every row.
                async fn all<T: Record>(&self, sql: &str) -> StoreResult<Vec<T>> {
                    sqlx::query_as(sql).fetch_all(&self.pool).await.map_err(map_err)
                }

                /// Runs a statement and counts the rows it changed.
                async fn changed(&self, query: Query<'_>) -> StoreResult<u64> {
                    query.execute(&self.pool).await.map(|r| r.rows_affected()).map_err(map_err)
                }

                /// Runs `sql`, an `UPDATE users SET <column> = $1, updated_at = $2 WHERE id = $3`.
                async fn update_user<'q, T>(&self, sql: &'static str, value: T, id: &'q str,
                    now: i64) -> StoreResult<bool>
                where
                    T: 'q + Send + sqlx::Encode<'q, $db> + sqlx::Type<$db>,
                {
                    Ok(self.changed(sqlx::query(sql).bind(value).bind(now).bind(id)).await? == 1)
                }

                async fn begin(&self) -> StoreResult<Tx> {
                    self.pool.begin().await.map_err(map_err)
                }
            }

            #[async_trait::async_trait]
            impl Store for $store {
                async fn ping(&self) -> StoreResult<()> {
                    self.changed(sqlx::query("SELECT 1")).await.map(drop)
                }

                async fn create_user(&self, u: &UserRecord) -> StoreResult<()> {
                    let query = sqlx::query(
                        "INSERT INTO users (id, username, password_hash, role, disabled, \
                         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
                    );
                    let query = query.bind(&u.id).bind(&u.username).bind(&u.password_hash);
                    let query = query.bind(&u.role).bind(u.disabled).bind(u.created_at);
                    self.changed(query).await.map(drop)
                }

                async fn user_by_name(&self, username: &str) -> StoreResult<Option<UserRecord>> {
                    let sql = format!("SELECT {USER_COLS} FROM users WHERE lower(username) = $1");
                    self.one(&sql, &username.to_ascii_lowercase()).await
                }

                async fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
                    let order = concat!("username", $bytes);
                    self.all(&format!("SELECT {USER_COLS} FROM users ORDER BY {order}")).await
                }

                async fn set_disabled(&self, id: &str, disabled: bool, now: i64)
                    -> StoreResult<bool> {
                    let sql = "UPDATE users SET disabled = $1, updated_at = $2 WHERE id = $3";
                    self.update_user(sql, disabled, id, now).await
                }

                async fn set_password_hash(&self, id: &str, hash: &str, now: i64)
                    -> StoreResult<bool> {
                    let sql = "UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3";
                    self.update_user(sql, hash, id, now).await
                }

                async fn set_role(&self, id: &str, role: &str, now: i64) -> StoreResult<bool> {
                    let sql = "UPDATE users SET role = $1, updated_at = $2 WHERE id = $3";
                    self.update_user(sql, role, id, now).await
                }

                async fn touch_session(&self, session_id: &str, now: i64) -> StoreResult<()> {
                    let query = sqlx::query(concat!(
                        "UPDATE sessions SET last_used_at = ",
                        $greatest,
                        "(last_used_at, $1) WHERE id = $2"
                    ));
                    self.changed(query.bind(now).bind(session_id)).await.map(drop)
                }

                async fn revoke_session(&self, session_id: &str, reason: &str, now: i64)
                    -> StoreResult<bool> {
                    let query = sqlx::query(
                        "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 \
                         WHERE id = $3 AND revoked_at IS NULL",
                    );
                    Ok(self.changed(query.bind(now).bind(reason).bind(session_id)).await? == 1)
                }

                async fn revoke_session_recorded(&self, session_id: &str, reason: &str, now: i64,
                    expires_at: i64) -> StoreResult<Option<RevocationRecord>> {
                    let mut tx = self.begin().await?;
                    let query = sqlx::query(
                        "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 \
                         WHERE id = $3 AND revoked_at IS NULL",
                    );
                    let query = query.bind(now).bind(reason).bind(session_id);
                    if changed_in(&mut tx, query).await? != 1 {
                        tx.rollback().await.map_err(map_err)?;
                        return Ok(None);
                    }
                    $store::lock_revocations(&mut tx).await?;
                    let record = sqlx::query_as(&format!(
                        "INSERT INTO revocations (kind, value, before, created_at, expires_at) \
                         VALUES ('sid', $1, NULL, $2, $3) RETURNING {REVOCATION_COLS}"
                    ))
                    .bind(session_id).bind(now).bind(expires_at)
                    .fetch_one(&mut *tx).await.map_err(map_err)?;
                    tx.commit().await.map_err(map_err)?;
                    Ok(Some(record))
                }

                async fn revoke_user_sessions(&self, user_id: &str, reason: &str, now: i64)
                    -> StoreResult<u64> {
                    let query = sqlx::query(
                        "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 \
                         WHERE user_id = $3 AND revoked_at IS NULL",
                    );
                    self.changed(query.bind(now).bind(reason).bind(user_id)).await
                }

                async fn throttle(&self, key: &str) -> StoreResult<ThrottleRecord> {
                    let sql = format!("SELECT {THROTTLE_COLS} FROM login_throttle WHERE key = $1");
                    Ok(self.one(&sql, key).await?.unwrap_or_default())
                }

                async fn throttles(&self, keys: &[&str]) -> StoreResult<Vec<ThrottleRecord>> {
                    if keys.is_empty() {
                        return Ok(Vec::new());
                    }
                    let params: Vec<String> = (1..=keys.len()).map(|i| format!("${i}")).collect();
                    let params = params.join(", ");
                    let sql = format!(
                        "SELECT {THROTTLE_COLS} FROM login_throttle WHERE key IN ({params})"
                    );
                    let mut query = sqlx::query_as::<_, KeyedThrottle>(&sql);
                    for key in keys {
                        query = query.bind(*key);
                    }
                    let rows = query.fetch_all(&self.pool).await.map_err(map_err)?;
                    Ok(in_key_order(keys, &rows))
                }

                async fn record_failure(&self, key: &str, now: i64, window_secs: i64)
                    -> StoreResult<ThrottleRecord> {
                    // An upsert is atomic under concurrency: a conflicting insert waits for the
                    // other transaction and then updates the committed row.
                    sqlx::query_as(
                        "INSERT INTO login_throttle AS t (key, failures, window_start, \
                         last_failure) VALUES ($1, 1, $2, $2) ON CONFLICT (key) DO UPDATE SET \
                           failures = CASE WHEN t.window_start + $3 <= $2 THEN 1 \
                             ELSE t.failures + 1 END, \
                           window_start = CASE WHEN t.window_start + $3 <= $2 THEN $2 \
                             ELSE t.window_start END, \
                           last_failure = $2 \
                         RETURNING failures, window_start, last_failure",
                    )
                    .bind(key).bind(now).bind(window_secs)
                    .fetch_one(&self.pool).await.map_err(map_err)
                }

                async fn clear_throttle(&self, key: &str) -> StoreResult<()> {
                    let query = sqlx::query("DELETE FROM login_throttle WHERE key = $1");
                    self.changed(query.bind(key)).await.map(drop)
                }

                async fn prune_throttle(&self, now: i64, window_secs: i64) -> StoreResult<u64> {
                    let query = sqlx::query("DELETE FROM login_throttle WHERE window_start <= $1");
                    self.changed(query.bind(now.saturating_sub(window_secs))).await
                }

                async fn user_sessions(&self, user_id: &str, now: i64)
                    -> StoreResult<Vec<SessionRecord>> {
                    let order = concat!("created_at DESC, id", $bytes);
                    let sql = format!(
                        "SELECT {SESSION_COLS} FROM sessions WHERE user_id = $1 \
                         AND revoked_at IS NULL AND absolute_expires_at > $2 ORDER BY {order}"
                    );
                    let query = sqlx::query_as(&sql).bind(user_id).bind(now);
                    query.fetch_all(&self.pool).await.map_err(map_err)
                }

                async fn sessions_by_parent(&self, parent_id: &str)
                    -> StoreResult<Vec<SessionRecord>> {
                    let order = concat!("created_at, id", $bytes);
                    let sql = format!(
                        "SELECT {SESSION_COLS} FROM sessions WHERE parent_id = $1 ORDER BY {order}"
                    );
                    let query = sqlx::query_as(&sql).bind(parent_id);
                    query.fetch_all(&self.pool).await.map_err(map_err)
                }

                async fn add_revocation(&self, kind: RevocationKind, value: &str,
                    before: Option<i64>, before_ms: Option<i64>, now: i64, expires_at: i64,
                ) -> StoreResult<RevocationRecord> {
                    let mut tx = self.begin().await?;
                    $store::lock_revocations(&mut tx).await?;
                    let sql = format!(
                        "INSERT INTO revocations (kind, value, before, before_ms, created_at, \
                         expires_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING {REVOCATION_COLS}"
                    );
                    let query = sqlx::query_as(&sql).bind(kind.as_str()).bind(value);
                    let query = query.bind(before).bind(before_ms).bind(now).bind(expires_at);
                    let record = query.fetch_one(&mut *tx).await.map_err(map_err)?;
                    tx.commit().await.map_err(map_err)?;
                    Ok(record)
                }

                async fn last_revocation_id(&self) -> StoreResult<i64> {
                    let query = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM revocations");
                    query.fetch_one(&self.pool).await.map_err(map_err)
                }

                async fn revocations_after(&self, after: i64, now: i64, limit: u32)
                    -> StoreResult<Vec<RevocationRecord>> {
                    let sql = format!(
                        "SELECT {REVOCATION_COLS} FROM revocations \
                         WHERE id > $1 AND expires_at > $2 ORDER BY id LIMIT $3"
                    );
                    let query = sqlx::query_as(&sql).bind(after).bind(now).bind(i64::from(limit));
                    query.fetch_all(&self.pool).await.map_err(map_err)
                }

                async fn is_revoked(&self, jti: &str, sid: Option<&str>, sub: &str, iat: i64,
                    iat_ms: Option<i64>, now: i64) -> StoreResult<bool> {
                    let query = sqlx::query_scalar(
                        "SELECT EXISTS (SELECT 1 FROM revocations WHERE expires_at > $1 AND ( \
                           (kind = 'jti' AND value = $2) OR (kind = 'sid' AND value = $3) OR \
                           (kind = 'sub' AND value = $4 AND CASE \
                             WHEN before_ms IS NOT NULL AND CAST($6 AS BIGINT) IS NOT NULL \
                             THEN before_ms >= CAST($6 AS BIGINT) ELSE before >= $5 END)))",
                    );
                    let query = query.bind(now).bind(jti).bind(sid).bind(sub);
                    let query = query.bind(iat).bind(iat_ms);
                    query.fetch_one(&self.pool).await.map_err(map_err)
                }

                async fn prune(&self, now: i64) -> StoreResult<u64> {
                    let revocations = sqlx::query("DELETE FROM revocations WHERE expires_at <= $1");
                    let tokens = sqlx::query("DELETE FROM opaque_tokens WHERE exp <= $1");
                    let codes = sqlx::query("DELETE FROM oidc_codes WHERE expires_at <= $1");
                    let steps = sqlx::query("DELETE FROM mfa_tokens WHERE expires_at <= $1");
                    let ceremonies =
                        sqlx::query("DELETE FROM webauthn_challenges WHERE expires_at <= $1");
                    let revocations = self.changed(revocations.bind(now)).await?;
                    let tokens = self.changed(tokens.bind(now)).await?;
                    let codes = self.changed(codes.bind(now)).await?;
                    let steps = self.changed(steps.bind(now)).await?;
                    Ok(revocations + tokens + codes + steps
                        + self.changed(ceremonies.bind(now)).await?)
                }

                async fn create_client(&self, c: &ClientRecord) -> StoreResult<()> {
                    let sql = format!(
                        "INSERT INTO clients ({CLIENT_COLS}) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
                    );
                    let query = sqlx::query(&sql);
                    let query = query.bind(&c.id).bind(&c.name).bind(c.kind.as_str());
                    let query = query.bind(&c.secret_hash).bind(c.scopes.join(" "));
                    let query = query.bind(c.audiences.join(" ")).bind(c.token_format.as_str());
                    let query = query.bind(c.created_at).bind(c.redirect_uris.join(" "));
                    let query = query.bind(c.post_logout_redirect_uris.join(" "));
                    let query = query.bind(&c.backchannel_logout_uri).bind(c.first_party);
                    self.changed(query).await.map(drop)
                }

                async fn update_client(&self, c: &ClientRecord) -> StoreResult<bool> {
                    let query = sqlx::query(
                        "UPDATE clients SET name = $1, kind = $2, scopes = $3, audiences = $4, \
                         token_format = $5, redirect_uris = $6, post_logout_redirect_uris = $7, \
                         backchannel_logout_uri = $8, first_party = $9 WHERE id = $10",
                    );
                    let query = query.bind(&c.name).bind(c.kind.as_str()).bind(c.scopes.join(" "));
                    let query = query.bind(c.audiences.join(" ")).bind(c.token_format.as_str());
                    let query = query.bind(c.redirect_uris.join(" "));
                    let query = query.bind(c.post_logout_redirect_uris.join(" "));
                    let query = query.bind(&c.backchannel_logout_uri).bind(c.first_party);
                    Ok(self.changed(query.bind(&c.id)).await? == 1)
                }

                async fn client_by_name(&self, name: &str) -> StoreResult<Option<ClientRecord>> {
                    let sql = format!("SELECT {CLIENT_COLS} FROM clients WHERE name = $1");
                    self.one(&sql, name).await
                }

                async fn list_clients(&self) -> StoreResult<Vec<ClientRecord>> {
                    let order = concat!("name", $bytes);
                    self.all(&format!("SELECT {CLIENT_COLS} FROM clients ORDER BY {order}")).await
                }

                async fn remove_client(&self, id: &str) -> StoreResult<bool> {
                    let mut tx = self.begin().await?;
                    let consents = sqlx::query("DELETE FROM oidc_consents WHERE client_id = $1");
                    changed_in(&mut tx, consents.bind(id)).await?;
                    let query = sqlx::query("DELETE FROM clients WHERE id = $1");
                    let removed = changed_in(&mut tx, query.bind(id)).await? == 1;
                    tx.commit().await.map_err(map_err)?;
                    Ok(removed)
                }

                async fn set_client_secret(&self, id: &str, secret_hash: &[u8])
                    -> StoreResult<bool> {
                    let query = sqlx::query("UPDATE clients SET secret_hash = $1 WHERE id = $2");
                    Ok(self.changed(query.bind(secret_hash).bind(id)).await? == 1)
                }

                async fn put_auth_code(&self, hash: &[u8], c: &AuthCodeRecord)
                    -> StoreResult<()> {
                    let sql = format!(
                        "INSERT INTO oidc_codes (hash, {CODE_COLS}) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
                    );
                    let query = sqlx::query(&sql).bind(hash).bind(&c.client_id).bind(&c.user_id);
                    let query = query.bind(&c.session_id).bind(&c.redirect_uri).bind(&c.scope);
                    let query = query.bind(&c.nonce).bind(&c.code_challenge).bind(c.auth_time);
                    let query = query.bind(&c.amr).bind(c.created_at).bind(c.expires_at);
                    let query = query.bind(c.used_at).bind(&c.child_session_id);
                    self.changed(query).await.map(drop)
                }

                async fn put_consent(&self, c: &ConsentRecord) -> StoreResult<()> {
                    let sql = format!(
                        "INSERT INTO oidc_consents ({CONSENT_COLS}) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (user_id, client_id) \
                         DO UPDATE SET scope = excluded.scope, created_at = excluded.created_at"
                    );
                    let query = sqlx::query(&sql).bind(&c.user_id).bind(&c.client_id);
                    self.changed(query.bind(&c.scope).bind(c.created_at)).await.map(drop)
                }

                async fn consent(&self, user_id: &str, client_id: &str)
                    -> StoreResult<Option<ConsentRecord>> {
                    let sql = format!(
                        "SELECT {CONSENT_COLS} FROM oidc_consents \
                         WHERE user_id = $1 AND client_id = $2"
                    );
                    let query = sqlx::query_as(&sql).bind(user_id).bind(client_id);
                    query.fetch_optional(&self.pool).await.map_err(map_err)
                }

                async fn user_consents(&self, user_id: &str) -> StoreResult<Vec<ConsentRecord>> {
                    let order = concat!("created_at, client_id", $bytes);
                    let sql = format!(
                        "SELECT {CONSENT_COLS} FROM oidc_consents WHERE user_id = $1 \
                         ORDER BY {order}"
                    );
                    let query = sqlx::query_as(&sql).bind(user_id);
                    query.fetch_all(&self.pool).await.map_err(map_err)
                }

                async fn remove_consent(&self, user_id: &str, client_id: &str)
                    -> StoreResult<bool> {
                    let query = sqlx::query(
                        "DELETE FROM oidc_consents WHERE user_id = $1 AND client_id = $2",
                    );
                    Ok(self.changed(query.bind(user_id).bind(client_id)).await? == 1)
                }

                async fn list_keys(&self) -> StoreResult<Vec<KeyRecord>> {
                    let order = concat!("created_at, kid", $bytes);
                    self.all(&format!("SELECT {KEY_COLS} FROM signing_keys ORDER BY {order}")).await
                }

                async fn insert_key(&self, k: &KeyRecord) -> StoreResult<()> {
                    let sql = format!(
                        "INSERT INTO signing_keys ({KEY_COLS}) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                    );
                    let query = sqlx::query(&sql);
                    let query = query.bind(&k.kid).bind(k.alg.as_str()).bind(k.state.as_str());
                    let query = query.bind(&k.private_key).bind(&k.public_jwk).bind(k.created_at);
                    let query = query.bind(k.activates_at).bind(k.activated_at);
                    let query = query.bind(k.retired_at).bind(k.removes_at).bind(k.revoked_at);
                    self.changed(query).await.map(drop)
                }

                async fn change_keys(&self, changes: &[KeyChange]) -> StoreResult<bool> {
                    let mut tx = self.begin().await?;
                    // Taken before any key row, so that the lock order is always revocations
                    // first.
                    if changes.iter().any(|c| c.to == KeyState::Revoked) {
                        $store::lock_revocations(&mut tx).await?;
                    }
                    for c in changes {
                        // Every statement binds the same four: $1 when, $2 until, $3 the kid,
                        // $4 the state the key must be in.
                        let sql = match c.to {
                            KeyState::Current => {
                                "UPDATE signing_keys SET state = 'current', activated_at = $1 \
                                 WHERE kid = $3 AND state = $4"
                            }
                            KeyState::Retired => {
                                "UPDATE signing_keys SET state = 'retired', retired_at = $1, \
                                 removes_at = $2 WHERE kid = $3 AND state = $4"
                            }
                            KeyState::Removed => {
                                "UPDATE signing_keys SET state = 'removed', private_key = NULL, \
                                 removes_at = $1 WHERE kid = $3 AND state = $4"
                            }
                            KeyState::Revoked => {
                                "UPDATE signing_keys SET state = 'revoked', private_key = NULL, \
                                 revoked_at = $1 WHERE kid = $3 AND state = $4"
                            }
                            KeyState::Next => return Err(StoreError::InvalidKeyChange),
                        };
                        let query = sqlx::query(sql).bind(c.at).bind(c.until);
                        let query = query.bind(&c.kid).bind(c.from.as_str());
                        if changed_in(&mut tx, query).await? != 1 {
                            tx.rollback().await.map_err(map_err)?;
                            return Ok(false);
                        }
                        if c.to == KeyState::Revoked {
                            let query = sqlx::query(
                                "INSERT INTO revocations (kind, value, before, created_at, \
                                 expires_at) VALUES ('kid', $1, NULL, $2, $3)",
                            );
                            let query = query.bind(&c.kid).bind(c.at).bind(c.until.unwrap_or(c.at));
                            changed_in(&mut tx, query).await?;
                        }
                    }
                    tx.commit().await.map_err(map_err)?;
                    Ok(true)
                }

                async fn secret_or_insert(&self, name: &str, value: &[u8], now: i64)
                    -> StoreResult<Vec<u8>> {
                    // A concurrent insert of the same name makes this one wait for its outcome;
                    // the SELECT, a new statement, then sees the winner.
                    let insert = sqlx::query(
                        "INSERT INTO secrets (name, value, created_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (name) DO NOTHING",
                    );
                    self.changed(insert.bind(name).bind(value).bind(now)).await?;
                    let query = sqlx::query_scalar("SELECT value FROM secrets WHERE name = $1");
                    query.bind(name).fetch_one(&self.pool).await.map_err(map_err)
                }

                async fn secrets(&self) -> StoreResult<Vec<(String, Vec<u8>)>> {
                    self.all("SELECT name, value FROM secrets ORDER BY name").await
                }

                async fn reseal(&self, keys: &[(String, Vec<u8>)], secrets: &[(String, Vec<u8>)])
                    -> StoreResult<()> {
                    let mut tx = self.begin().await?;
                    let keys_sql = "UPDATE signing_keys SET private_key = $1 \
                                    WHERE kid = $2 AND private_key IS NOT NULL";
                    let secrets_sql = "UPDATE secrets SET value = $1 WHERE name = $2";
                    for (sql, values) in [(keys_sql, keys), (secrets_sql, secrets)] {
                        for (name, sealed) in values {
                            changed_in(&mut tx, sqlx::query(sql).bind(sealed).bind(name)).await?;
                        }
                    }
                    tx.commit().await.map_err(map_err)
                }

                async fn sign_in_sessions_at(&self, user_id: &str, at: i64)
                    -> StoreResult<Vec<SessionRecord>> {
                    let order = concat!("created_at, id", $bytes);
                    let sql = format!(
                        "SELECT {SESSION_COLS} FROM sessions WHERE user_id = $1 \
                         AND parent_id IS NULL AND created_at <= $2 \
                         AND (revoked_at IS NULL OR revoked_at >= $2) \
                         AND absolute_expires_at > $2 ORDER BY {order}"
                    );
                    let query = sqlx::query_as(&sql).bind(user_id).bind(at);
                    query.fetch_all(&self.pool).await.map_err(map_err)
                }

                async fn backchannel_cursor(&self) -> StoreResult<i64> {
                    let query = sqlx::query_scalar(
                        "SELECT COALESCE(MAX(value), 0) FROM backchannel_state WHERE name = 'cursor'",
                    );
                    query.fetch_one(&self.pool).await.map_err(map_err)
                }

                async fn advance_backchannel_cursor(&self, to: i64) -> StoreResult<()> {
                    let query = sqlx::query(concat!(
                        "INSERT INTO backchannel_state AS s (name, value) VALUES ('cursor', $1) \
                         ON CONFLICT (name) DO UPDATE SET value = ",
                        $greatest,
                        "(s.value, $1)"
                    ));
                    self.changed(query.bind(to)).await.map(drop)
                }

                async fn enqueue_backchannel(&self, d: &BackchannelRecord) -> StoreResult<bool> {
                    let query = sqlx::query(
                        "INSERT INTO backchannel_deliveries (revocation_id, client_id, sid, sub, \
                         uri, jti, created_at, next_attempt_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                         ON CONFLICT (revocation_id, client_id, sid) DO NOTHING",
                    );
                    let query = query.bind(d.revocation_id).bind(&d.client_id).bind(&d.sid);
                    let query = query.bind(&d.sub).bind(&d.uri).bind(&d.jti);
                    let query = query.bind(d.created_at).bind(d.next_attempt_at);
                    Ok(self.changed(query).await? == 1)
                }

                async fn claim_backchannel(&self, now: i64, lease_until: i64, limit: u32)
                    -> StoreResult<Vec<BackchannelRecord>> {
                    // The conditions are checked again on the row being updated: under
                    // PostgreSQL's READ COMMITTED a concurrent claim that leased the row
                    // first makes this one skip it (the re-check sees its lease); SQLite has
                    // one writer at a time.
                    let due = "delivered_at IS NULL AND gave_up_at IS NULL \
                               AND next_attempt_at <= $1 \
                               AND (lease_until IS NULL OR lease_until <= $1)";
                    let sql = format!(
                        "UPDATE backchannel_deliveries SET lease_until = $2, \
                         attempts = attempts + 1 \
                         WHERE id IN (SELECT id FROM backchannel_deliveries WHERE {due} \
                           ORDER BY next_attempt_at, id LIMIT $3) AND {due} \
                         RETURNING {BACKCHANNEL_COLS}"
                    );
                    let query = sqlx::query_as(&sql).bind(now).bind(lease_until);
                    let mut rows: Vec<BackchannelRecord> = query
                        .bind(i64::from(limit)).fetch_all(&self.pool).await.map_err(map_err)?;
                    rows.sort_by_key(|r| (r.next_attempt_at, r.id));
                    Ok(rows)
                }

                async fn backchannel_delivered(&self, id: i64, now: i64) -> StoreResult<bool> {
                    let query = sqlx::query(
                        "UPDATE backchannel_deliveries SET delivered_at = $1, lease_until = NULL \
                         WHERE id = $2 AND delivered_at IS NULL AND gave_up_at IS NULL",
                    );
                    Ok(self.changed(query.bind(now).bind(id)).await? == 1)
                }

                async fn backchannel_retry_at(&self, id: i64, next_attempt_at: i64)
                    -> StoreResult<bool> {
                    let query = sqlx::query(
                        "UPDATE backchannel_deliveries SET next_attempt_at = $1, \
                         lease_until = NULL \
                         WHERE id = $2 AND delivered_at IS NULL AND gave_up_at IS NULL",
                    );
                    Ok(self.changed(query.bind(next_attempt_at).bind(id)).await? == 1)
                }

                async fn backchannel_gave_up(&self, id: i64, now: i64) -> StoreResult<bool> {
                    let query = sqlx::query(
                        "UPDATE backchannel_deliveries SET gave_up_at = $1, lease_until = NULL \
                         WHERE id = $2 AND delivered_at IS NULL AND gave_up_at IS NULL",
                    );
                    Ok(self.changed(query.bind(now).bind(id)).await? == 1)
                }

                async fn pending_backchannel(&self) -> StoreResult<Vec<BackchannelRecord>> {
                    self.all(&format!(
                        "SELECT {BACKCHANNEL_COLS} FROM backchannel_deliveries \
                         WHERE delivered_at IS NULL AND gave_up_at IS NULL ORDER BY id"
                    )).await
                }

                async fn prune_backchannel(&self, before: i64) -> StoreResult<u64> {
                    let query = sqlx::query(
                        "DELETE FROM backchannel_deliveries \
                         WHERE delivered_at <= $1 OR gave_up_at <= $1",
                    );
                    self.changed(query.bind(before)).await
                }

                async fn begin_totp(&self, user_id: &str, sealed_secret: &[u8], now: i64)
                    -> StoreResult<bool> {
                    let query = sqlx::query(
                        "INSERT INTO mfa_totp (user_id, secret, created_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, \
                         created_at = excluded.created_at, last_step = NULL \
                         WHERE mfa_totp.confirmed_at IS NULL",
                    );
                    Ok(self.changed(query.bind(user_id).bind(sealed_secret).bind(now)).await? == 1)
                }

                async fn totp(&self, user_id: &str) -> StoreResult<Option<TotpRecord>> {
                    let sql = "SELECT user_id, secret, created_at, confirmed_at, last_step \
                               FROM mfa_totp WHERE user_id = $1";
                    self.one(sql, user_id).await
                }

                async fn use_totp_step(&self, user_id: &str, step: i64, now: i64)
                    -> StoreResult<bool> {
                    let query = sqlx::query(
                        "UPDATE mfa_totp SET last_step = $1, \
                         confirmed_at = COALESCE(confirmed_at, $2) \
                         WHERE user_id = $3 AND (last_step IS NULL OR last_step < $1)",
                    );
                    Ok(self.changed(query.bind(step).bind(now).bind(user_id)).await? == 1)
                }

                async fn remove_totp(&self, user_id: &str) -> StoreResult<bool> {
                    let query = sqlx::query("DELETE FROM mfa_totp WHERE user_id = $1");
                    Ok(self.changed(query.bind(user_id)).await? == 1)
                }

                async fn replace_recovery_codes(&self, user_id: &str, hashes: &[Vec<u8>],
                    now: i64) -> StoreResult<()> {
                    let mut tx = self.begin().await?;
                    let query = sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1");
                    changed_in(&mut tx, query.bind(user_id)).await?;
                    for hash in hashes {
                        let query = sqlx::query(
                            "INSERT INTO recovery_codes (user_id, hash, created_at) \
                             VALUES ($1, $2, $3)",
                        );
                        changed_in(&mut tx, query.bind(user_id).bind(hash).bind(now)).await?;
                    }
                    tx.commit().await.map_err(map_err)
                }

                async fn use_recovery_code(&self, user_id: &str, hash: &[u8], now: i64)
                    -> StoreResult<Option<i64>> {
                    let mut tx = self.begin().await?;
                    let query = sqlx::query(
                        "UPDATE recovery_codes SET used_at = $1 \
                         WHERE user_id = $2 AND hash = $3 AND used_at IS NULL",
                    );
                    if changed_in(&mut tx, query.bind(now).bind(user_id).bind(hash)).await? != 1 {
                        tx.rollback().await.map_err(map_err)?;
                        return Ok(None);
                    }
                    let left: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
                    )
                    .bind(user_id).fetch_one(&mut *tx).await.map_err(map_err)?;
                    tx.commit().await.map_err(map_err)?;
                    Ok(Some(left))
                }

                async fn recovery_codes_left(&self, user_id: &str) -> StoreResult<i64> {
                    sqlx::query_scalar(
                        "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
                    )
                    .bind(user_id).fetch_one(&self.pool).await.map_err(map_err)
                }

                async fn put_mfa_token(&self, hash: &[u8], t: &MfaTokenRecord) -> StoreResult<()> {
                    let query = sqlx::query(
                        "INSERT INTO mfa_tokens (hash, user_id, amr, created_at, expires_at, \
                         failures, enrol, used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    );
                    let query = query.bind(hash).bind(&t.user_id).bind(&t.amr);
                    let query = query.bind(t.created_at).bind(t.expires_at).bind(t.failures);
                    self.changed(query.bind(t.enrol).bind(t.used_at)).await.map(drop)
                }

                async fn mfa_token(&self, hash: &[u8]) -> StoreResult<Option<MfaTokenRecord>> {
                    sqlx::query_as(
                        "SELECT user_id, amr, created_at, expires_at, failures, enrol, used_at \
                         FROM mfa_tokens WHERE hash = $1",
                    )
                    .bind(hash).fetch_optional(&self.pool).await.map_err(map_err)
                }

                async fn fail_mfa_token(&self, hash: &[u8]) -> StoreResult<i64> {
                    let failures: Option<i64> = sqlx::query_scalar(
                        "UPDATE mfa_tokens SET failures = failures + 1 \
                         WHERE hash = $1 AND used_at IS NULL RETURNING failures",
                    )
                    .bind(hash).fetch_optional(&self.pool).await.map_err(map_err)?;
                    Ok(failures.unwrap_or(0))
                }

                async fn finish_mfa_token(&self, hash: &[u8], now: i64, max_failures: i64)
                    -> StoreResult<bool> {
                    let query = sqlx::query(
                        "UPDATE mfa_tokens SET used_at = $1 WHERE hash = $2 \
                         AND used_at IS NULL AND expires_at > $1 AND failures < $3",
                    );
                    Ok(self.changed(query.bind(now).bind(hash).bind(max_failures)).await? == 1)
                }

                async fn add_passkey(&self, p: &PasskeyRecord) -> StoreResult<()> {
                    let query = sqlx::query(
                        "INSERT INTO webauthn_credentials (id, user_id, name, passkey, \
                         created_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6)",
                    );
                    let query = query.bind(&p.id).bind(&p.user_id).bind(&p.name);
                    let query = query.bind(&p.passkey).bind(p.created_at).bind(p.last_used_at);
                    self.changed(query).await.map(drop)
                }

                async fn passkeys(&self, user_id: &str) -> StoreResult<Vec<PasskeyRecord>> {
                    let order = concat!("created_at, id", $bytes);
                    let sql = format!(
                        "SELECT id, user_id, name, passkey, created_at, last_used_at \
                         FROM webauthn_credentials WHERE user_id = $1 ORDER BY {order}"
                    );
                    sqlx::query_as(&sql).bind(user_id).fetch_all(&self.pool).await
                        .map_err(map_err)
                }

                async fn passkey(&self, id: &str) -> StoreResult<Option<PasskeyRecord>> {
                    let sql = "SELECT id, user_id, name, passkey, created_at, last_used_at \
                               FROM webauthn_credentials WHERE id = $1";
                    self.one(sql, id).await
                }

                async fn passkey_used(&self, id: &str, passkey: &str, now: i64)
                    -> StoreResult<bool> {
                    let query = sqlx::query(
                        "UPDATE webauthn_credentials SET passkey = $1, last_used_at = $2 \
                         WHERE id = $3",
                    );
                    Ok(self.changed(query.bind(passkey).bind(now).bind(id)).await? == 1)
                }

                async fn remove_passkey(&self, user_id: &str, id: &str) -> StoreResult<bool> {
                    let query = sqlx::query(
                        "DELETE FROM webauthn_credentials WHERE user_id = $1 AND id = $2",
                    );
                    Ok(self.changed(query.bind(user_id).bind(id)).await? == 1)
                }

                async fn put_challenge(&self, c: &ChallengeRecord) -> StoreResult<()> {
                    let query = sqlx::query(
                        "INSERT INTO webauthn_challenges (id, kind, binding, user_id, state, \
                         created_at, expires_at, used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    );
                    let query = query.bind(&c.id).bind(&c.kind).bind(&c.binding);
                    let query = query.bind(&c.user_id).bind(&c.state).bind(c.created_at);
                    self.changed(query.bind(c.expires_at).bind(c.used_at)).await.map(drop)
                }

                async fn take_challenge(&self, id: &str, kind: &str, binding: &str, now: i64)
                    -> StoreResult<Option<ChallengeRecord>> {
                    sqlx::query_as(
                        "UPDATE webauthn_challenges SET used_at = $1 WHERE id = $2 \
                         AND kind = $3 AND binding = $4 AND used_at IS NULL AND expires_at > $1 \
                         RETURNING id, kind, binding, user_id, state, created_at, expires_at, \
                         used_at",
                    )
                    .bind(now).bind(id).bind(kind).bind(binding)
                    .fetch_optional(&self.pool).await.map_err(map_err)
                }

                async fn reset_mfa(&self, user_id: &str) -> StoreResult<u64> {
                    let mut tx = self.begin().await?;
                    let mut gone = 0;
                    for table in
                        ["mfa_totp", "recovery_codes", "mfa_tokens", "webauthn_credentials"]
                    {
                        let sql = format!("DELETE FROM {table} WHERE user_id = $1");
                        gone += changed_in(&mut tx, sqlx::query(&sql).bind(user_id)).await?;
                    }
                    tx.commit().await.map_err(map_err)?;
                    Ok(gone)
                }

                $($engine)*
            }
        }
    };
}

pub(super) use impl_store;
