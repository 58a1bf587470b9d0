//! The SQL both engines share, written once. sqlx binds `$N` placeholders on SQLite too, so
//! one statement text serves both; [`impl_store!`] instantiates every shared [`Store`]
//! method for an engine's store type. What really differs stays in the engine files:
//! connecting and migrations, which errors mean "unavailable", array parameters, byte-order
//! collation, `GREATEST` vs `max`, the revocation lock, leadership and LISTEN/NOTIFY.
//!
//! [`Store`]: super::Store

use super::StoreError;

/// The columns of a [`UserRecord`](super::UserRecord).
pub(super) const USER_COLS: &str = "id, username, password_hash, role, disabled, created_at";
/// The columns of a [`SessionRecord`](super::SessionRecord).
pub(super) const SESSION_COLS: &str = "id, user_id, client_id, created_at, last_used_at, \
     absolute_expires_at, generation, rotated_at, revoked_at, user_agent, ip";
/// The columns of a [`RevocationRecord`](super::RevocationRecord).
pub(super) const REVOCATION_COLS: &str =
    "id, kind, value, before, before_ms, created_at, expires_at";
/// The columns of a [`ClientRecord`](super::ClientRecord).
pub(super) const CLIENT_COLS: &str =
    "id, name, kind, secret_hash, scopes, audiences, token_format, created_at";
/// The columns of a [`KeyRecord`](super::KeyRecord).
pub(super) const KEY_COLS: &str = "kid, alg, state, private_key, public_jwk, created_at, \
     activates_at, activated_at, retired_at, removes_at, revoked_at";
/// The columns of a [`ThrottleRecord`](super::ThrottleRecord), with its key.
pub(super) const THROTTLE_COLS: &str = "key, failures, window_start, last_failure";
/// The newest migration applied, for the read-only openers.
pub(super) const APPLIED_MIGRATION: &str =
    "SELECT MAX(version) FROM _sqlx_migrations WHERE success";

/// Maps a database error to a [`StoreError`], keeping it as the source. `unavailable` is
/// the engine's word on which of its errors mean "try again later", beyond a lost pool
/// or connection.
pub(super) fn map_sqlx(e: sqlx::Error, unavailable: fn(&sqlx::Error) -> bool) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e),
        _ if unavailable(&e) => StoreError::Unavailable(e),
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => StoreError::Corrupt(e),
        _ => StoreError::Database(e),
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
/// the shared statements. The calling module provides `map_err(sqlx::Error) -> StoreError`
/// and `Self::lock_revocations(&mut Transaction)`, which serialises the transactions that
/// add revocations where the engine needs it; `byte_order` is appended to an `ORDER BY`
/// of text so that both engines sort by bytes, and `greatest` names the two-argument
/// maximum. The tokens after them are the engine's own methods of the trait.
macro_rules! impl_store {
    (
        store: $store:ty,
        database: $db:ty,
        byte_order: $bytes:literal,
        greatest: $greatest:literal,
        $($engine:tt)*
    ) => {
        impl $store {
            /// Runs a query with one text parameter and maps the row, if any.
            async fn one<T>(&self, sql: &str, key: &str) -> $crate::store::StoreResult<Option<T>>
            where
                T: for<'r> sqlx::FromRow<'r, <$db as sqlx::Database>::Row> + Send + Unpin,
            {
                sqlx::query_as(sql).bind(key).fetch_optional(&self.pool).await.map_err(map_err)
            }

            /// Runs a query without parameters and maps every row.
            async fn all<T>(&self, sql: &str) -> $crate::store::StoreResult<Vec<T>>
            where
                T: for<'r> sqlx::FromRow<'r, <$db as sqlx::Database>::Row> + Send + Unpin,
            {
                sqlx::query_as(sql).fetch_all(&self.pool).await.map_err(map_err)
            }

            /// Runs a statement and counts the rows it changed.
            async fn changed<'q>(
                &self,
                query: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>>,
            ) -> $crate::store::StoreResult<u64> {
                query
                    .execute(&self.pool)
                    .await
                    .map(|r| r.rows_affected())
                    .map_err(map_err)
            }

            /// Runs `sql`, an `UPDATE users SET <column> = $1, updated_at = $2 WHERE id = $3`.
            async fn update_user<'q, T>(
                &self,
                sql: &'static str,
                value: T,
                id: &'q str,
                now: i64,
            ) -> $crate::store::StoreResult<bool>
            where
                T: 'q + Send + sqlx::Encode<'q, $db> + sqlx::Type<$db>,
            {
                let query = sqlx::query(sql).bind(value).bind(now).bind(id);
                Ok(self.changed(query).await? == 1)
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            async fn ping(&self) -> $crate::store::StoreResult<()> {
                self.changed(sqlx::query("SELECT 1")).await.map(drop)
            }

            async fn create_user(
                &self,
                u: &$crate::store::UserRecord,
            ) -> $crate::store::StoreResult<()> {
                let query = sqlx::query(
                    "INSERT INTO users (id, username, password_hash, role, disabled, \
                     created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
                )
                .bind(&u.id)
                .bind(&u.username)
                .bind(&u.password_hash)
                .bind(&u.role)
                .bind(u.disabled)
                .bind(u.created_at);
                self.changed(query).await.map(drop)
            }

            async fn user_by_name(
                &self,
                username: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::UserRecord>> {
                let sql = format!("SELECT {} FROM users WHERE lower(username) = $1", $crate::store::core::USER_COLS);
                self.one(&sql, &username.to_ascii_lowercase()).await
            }

            async fn user_by_id(
                &self,
                id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::UserRecord>> {
                let sql = format!("SELECT {} FROM users WHERE id = $1", $crate::store::core::USER_COLS);
                self.one(&sql, id).await
            }

            async fn list_users(
                &self,
            ) -> $crate::store::StoreResult<Vec<$crate::store::UserRecord>> {
                let sql = format!(
                    "SELECT {} FROM users ORDER BY username{}",
                    $crate::store::core::USER_COLS,
                    $bytes
                );
                self.all(&sql).await
            }

            async fn set_disabled(
                &self,
                id: &str,
                disabled: bool,
                now: i64,
            ) -> $crate::store::StoreResult<bool> {
                self.update_user(
                    "UPDATE users SET disabled = $1, updated_at = $2 WHERE id = $3",
                    disabled,
                    id,
                    now,
                )
                .await
            }

            async fn set_password_hash(
                &self,
                id: &str,
                hash: &str,
                now: i64,
            ) -> $crate::store::StoreResult<bool> {
                self.update_user(
                    "UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3",
                    hash,
                    id,
                    now,
                )
                .await
            }

            async fn set_role(
                &self,
                id: &str,
                role: &str,
                now: i64,
            ) -> $crate::store::StoreResult<bool> {
                self.update_user(
                    "UPDATE users SET role = $1, updated_at = $2 WHERE id = $3",
                    role,
                    id,
                    now,
                )
                .await
            }

            async fn create_session(
                &self,
                s: &$crate::store::SessionRecord,
                token_hash: &[u8],
            ) -> $crate::store::StoreResult<()> {
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

            async fn session(
                &self,
                id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::SessionRecord>> {
                let sql = format!("SELECT {} FROM sessions WHERE id = $1", $crate::store::core::SESSION_COLS);
                self.one(&sql, id).await
            }

            async fn refresh_token(
                &self,
                token_hash: &[u8],
            ) -> $crate::store::StoreResult<Option<$crate::store::RefreshRecord>> {
                sqlx::query_as("SELECT session_id, generation FROM refresh_tokens WHERE hash = $1")
                    .bind(token_hash)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)
            }

            async fn rotate(
                &self,
                session_id: &str,
                expected_generation: i64,
                new_hash: &[u8],
                now: i64,
            ) -> $crate::store::StoreResult<bool> {
                let mut tx = self.pool.begin().await.map_err(map_err)?;
                // PostgreSQL, under READ COMMITTED: a concurrent rotation of the same session
                // waits for this row lock, then re-checks the generation on the new row
                // version and matches nothing. SQLite: one writer at a time. Either way,
                // exactly one caller wins.
                let updated = sqlx::query(
                    "UPDATE sessions SET generation = generation + 1, rotated_at = $1, \
                     last_used_at = $1 WHERE id = $2 AND generation = $3 AND revoked_at IS NULL",
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

            async fn touch_session(
                &self,
                session_id: &str,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                let sql = format!(
                    "UPDATE sessions SET last_used_at = {}(last_used_at, $1) WHERE id = $2",
                    $greatest
                );
                self.changed(sqlx::query(&sql).bind(now).bind(session_id)).await.map(drop)
            }

            async fn revoke_session(
                &self,
                session_id: &str,
                reason: &str,
                now: i64,
            ) -> $crate::store::StoreResult<bool> {
                let query = sqlx::query(
                    "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 \
                     WHERE id = $3 AND revoked_at IS NULL",
                )
                .bind(now)
                .bind(reason)
                .bind(session_id);
                Ok(self.changed(query).await? == 1)
            }

            async fn revoke_session_recorded(
                &self,
                session_id: &str,
                reason: &str,
                now: i64,
                expires_at: i64,
            ) -> $crate::store::StoreResult<Option<$crate::store::RevocationRecord>> {
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
                Self::lock_revocations(&mut tx).await?;
                let record = sqlx::query_as(&format!(
                    "INSERT INTO revocations (kind, value, before, created_at, expires_at) \
                     VALUES ('sid', $1, NULL, $2, $3) RETURNING {}",
                    $crate::store::core::REVOCATION_COLS
                ))
                .bind(session_id)
                .bind(now)
                .bind(expires_at)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                Ok(Some(record))
            }

            async fn revoke_user_sessions(
                &self,
                user_id: &str,
                reason: &str,
                now: i64,
            ) -> $crate::store::StoreResult<u64> {
                let query = sqlx::query(
                    "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 \
                     WHERE user_id = $3 AND revoked_at IS NULL",
                )
                .bind(now)
                .bind(reason)
                .bind(user_id);
                self.changed(query).await
            }

            async fn throttle(
                &self,
                key: &str,
            ) -> $crate::store::StoreResult<$crate::store::ThrottleRecord> {
                let sql = format!(
                    "SELECT {} FROM login_throttle WHERE key = $1",
                    $crate::store::core::THROTTLE_COLS
                );
                Ok(self.one(&sql, key).await?.unwrap_or_default())
            }

            async fn record_failure(
                &self,
                key: &str,
                now: i64,
                window_secs: i64,
            ) -> $crate::store::StoreResult<$crate::store::ThrottleRecord> {
                // An upsert is atomic under concurrency: a conflicting insert waits for the
                // other transaction and then updates the committed row.
                sqlx::query_as(
                    "INSERT INTO login_throttle AS t (key, failures, window_start, last_failure) \
                     VALUES ($1, 1, $2, $2) \
                     ON CONFLICT (key) DO UPDATE SET \
                       failures = CASE WHEN t.window_start + $3 <= $2 THEN 1 \
                         ELSE t.failures + 1 END, \
                       window_start = CASE WHEN t.window_start + $3 <= $2 THEN $2 \
                         ELSE t.window_start END, \
                       last_failure = $2 \
                     RETURNING failures, window_start, last_failure",
                )
                .bind(key)
                .bind(now)
                .bind(window_secs)
                .fetch_one(&self.pool)
                .await
                .map_err(map_err)
            }

            async fn clear_throttle(&self, key: &str) -> $crate::store::StoreResult<()> {
                let query = sqlx::query("DELETE FROM login_throttle WHERE key = $1").bind(key);
                self.changed(query).await.map(drop)
            }

            async fn prune_throttle(
                &self,
                now: i64,
                window_secs: i64,
            ) -> $crate::store::StoreResult<u64> {
                let query = sqlx::query("DELETE FROM login_throttle WHERE window_start <= $1")
                    .bind(now.saturating_sub(window_secs));
                self.changed(query).await
            }

            async fn user_sessions(
                &self,
                user_id: &str,
                now: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::store::SessionRecord>> {
                let sql = format!(
                    "SELECT {} FROM sessions WHERE user_id = $1 AND revoked_at IS NULL \
                     AND absolute_expires_at > $2 ORDER BY created_at DESC, id{}",
                    $crate::store::core::SESSION_COLS,
                    $bytes
                );
                sqlx::query_as(&sql)
                    .bind(user_id)
                    .bind(now)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)
            }

            async fn add_revocation(
                &self,
                kind: $crate::store::RevocationKind,
                value: &str,
                before: Option<i64>,
                before_ms: Option<i64>,
                now: i64,
                expires_at: i64,
            ) -> $crate::store::StoreResult<$crate::store::RevocationRecord> {
                let mut tx = self.pool.begin().await.map_err(map_err)?;
                Self::lock_revocations(&mut tx).await?;
                let record = sqlx::query_as(&format!(
                    "INSERT INTO revocations (kind, value, before, before_ms, created_at, \
                     expires_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING {}",
                    $crate::store::core::REVOCATION_COLS
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
                tx.commit().await.map_err(map_err)?;
                Ok(record)
            }

            async fn revocations_after(
                &self,
                after: i64,
                now: i64,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<$crate::store::RevocationRecord>> {
                sqlx::query_as(&format!(
                    "SELECT {} FROM revocations WHERE id > $1 AND expires_at > $2 \
                     ORDER BY id LIMIT $3",
                    $crate::store::core::REVOCATION_COLS
                ))
                .bind(after)
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
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
            ) -> $crate::store::StoreResult<bool> {
                sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM revocations WHERE expires_at > $1 AND ( \
                       (kind = 'jti' AND value = $2) OR (kind = 'sid' AND value = $3) OR \
                       (kind = 'sub' AND value = $4 AND CASE \
                         WHEN before_ms IS NOT NULL AND CAST($6 AS BIGINT) IS NOT NULL \
                         THEN before_ms >= CAST($6 AS BIGINT) ELSE before >= $5 END)))",
                )
                .bind(now)
                .bind(jti)
                .bind(sid)
                .bind(sub)
                .bind(iat)
                .bind(iat_ms)
                .fetch_one(&self.pool)
                .await
                .map_err(map_err)
            }

            async fn prune(&self, now: i64) -> $crate::store::StoreResult<u64> {
                let revocations = sqlx::query("DELETE FROM revocations WHERE expires_at <= $1");
                let tokens = sqlx::query("DELETE FROM opaque_tokens WHERE exp <= $1");
                Ok(self.changed(revocations.bind(now)).await? + self.changed(tokens.bind(now)).await?)
            }

            async fn create_client(
                &self,
                c: &$crate::store::ClientRecord,
            ) -> $crate::store::StoreResult<()> {
                let query = sqlx::query(
                    "INSERT INTO clients (id, name, kind, secret_hash, scopes, audiences, \
                     token_format, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&c.id)
                .bind(&c.name)
                .bind(c.kind.as_str())
                .bind(&c.secret_hash)
                .bind(c.scopes.join(" "))
                .bind(c.audiences.join(" "))
                .bind(c.token_format.as_str())
                .bind(c.created_at);
                self.changed(query).await.map(drop)
            }

            async fn client(
                &self,
                id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::ClientRecord>> {
                let sql = format!("SELECT {} FROM clients WHERE id = $1", $crate::store::core::CLIENT_COLS);
                self.one(&sql, id).await
            }

            async fn client_by_name(
                &self,
                name: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::ClientRecord>> {
                let sql = format!("SELECT {} FROM clients WHERE name = $1", $crate::store::core::CLIENT_COLS);
                self.one(&sql, name).await
            }

            async fn list_clients(
                &self,
            ) -> $crate::store::StoreResult<Vec<$crate::store::ClientRecord>> {
                let sql = format!(
                    "SELECT {} FROM clients ORDER BY name{}",
                    $crate::store::core::CLIENT_COLS,
                    $bytes
                );
                self.all(&sql).await
            }

            async fn remove_client(&self, id: &str) -> $crate::store::StoreResult<bool> {
                let query = sqlx::query("DELETE FROM clients WHERE id = $1").bind(id);
                Ok(self.changed(query).await? == 1)
            }

            async fn set_client_secret(
                &self,
                id: &str,
                secret_hash: &[u8],
            ) -> $crate::store::StoreResult<bool> {
                let query = sqlx::query("UPDATE clients SET secret_hash = $1 WHERE id = $2")
                    .bind(secret_hash)
                    .bind(id);
                Ok(self.changed(query).await? == 1)
            }

            async fn put_opaque_token(
                &self,
                hash: &[u8],
                t: &$crate::store::OpaqueTokenRecord,
            ) -> $crate::store::StoreResult<()> {
                let query = sqlx::query(
                    "INSERT INTO opaque_tokens (hash, jti, sub, client_id, aud, scope, role, sid, \
                     iat, iat_ms, exp) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
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
                .bind(t.exp);
                self.changed(query).await.map(drop)
            }

            async fn opaque_token(
                &self,
                hash: &[u8],
            ) -> $crate::store::StoreResult<Option<$crate::store::OpaqueTokenRecord>> {
                sqlx::query_as(
                    "SELECT jti, sub, client_id, aud, scope, role, sid, iat, iat_ms, exp \
                     FROM opaque_tokens WHERE hash = $1",
                )
                .bind(hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)
            }

            async fn list_keys(&self) -> $crate::store::StoreResult<Vec<$crate::store::KeyRecord>> {
                let sql = format!(
                    "SELECT {} FROM signing_keys ORDER BY created_at, kid{}",
                    $crate::store::core::KEY_COLS,
                    $bytes
                );
                self.all(&sql).await
            }

            async fn insert_key(
                &self,
                k: &$crate::store::KeyRecord,
            ) -> $crate::store::StoreResult<()> {
                let query = sqlx::query(
                    "INSERT INTO signing_keys (kid, alg, state, private_key, public_jwk, \
                     created_at, activates_at, activated_at, retired_at, removes_at, revoked_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(&k.kid)
                .bind(k.alg.as_str())
                .bind(k.state.as_str())
                .bind(&k.private_key)
                .bind(&k.public_jwk)
                .bind(k.created_at)
                .bind(k.activates_at)
                .bind(k.activated_at)
                .bind(k.retired_at)
                .bind(k.removes_at)
                .bind(k.revoked_at);
                self.changed(query).await.map(drop)
            }

            async fn change_keys(
                &self,
                changes: &[$crate::store::KeyChange],
            ) -> $crate::store::StoreResult<bool> {
                use $crate::store::KeyState;
                let mut tx = self.pool.begin().await.map_err(map_err)?;
                // Taken before any key row, so that the lock order is always revocations
                // first.
                if changes.iter().any(|c| c.to == KeyState::Revoked) {
                    Self::lock_revocations(&mut tx).await?;
                }
                for c in changes {
                    // $1 when, $2 until, $3 kid, $4 the state it must be in.
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
                        KeyState::Next => return Err($crate::store::StoreError::InvalidKeyChange),
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

            async fn secret_or_insert(
                &self,
                name: &str,
                value: &[u8],
                now: i64,
            ) -> $crate::store::StoreResult<Vec<u8>> {
                // A concurrent insert of the same name makes this one wait for its outcome;
                // the SELECT, a new statement, then sees the winner.
                let insert = sqlx::query(
                    "INSERT INTO secrets (name, value, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO NOTHING",
                );
                self.changed(insert.bind(name).bind(value).bind(now)).await?;
                sqlx::query_scalar("SELECT value FROM secrets WHERE name = $1")
                    .bind(name)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(map_err)
            }

            async fn secrets(&self) -> $crate::store::StoreResult<Vec<(String, Vec<u8>)>> {
                self.all("SELECT name, value FROM secrets ORDER BY name").await
            }

            async fn reseal(
                &self,
                keys: &[(String, Vec<u8>)],
                secrets: &[(String, Vec<u8>)],
            ) -> $crate::store::StoreResult<()> {
                let mut tx = self.pool.begin().await.map_err(map_err)?;
                let statements = [
                    (
                        "UPDATE signing_keys SET private_key = $1 \
                         WHERE kid = $2 AND private_key IS NOT NULL",
                        keys,
                    ),
                    ("UPDATE secrets SET value = $1 WHERE name = $2", secrets),
                ];
                for (sql, values) in statements {
                    for (name, sealed) in values {
                        sqlx::query(sql)
                            .bind(sealed)
                            .bind(name)
                            .execute(&mut *tx)
                            .await
                            .map_err(map_err)?;
                    }
                }
                tx.commit().await.map_err(map_err)
            }

            $($engine)*
        }
    };
}

pub(super) use impl_store;
