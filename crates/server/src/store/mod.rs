//! Storage: one trait, chosen at start-up. SQLite is the embedded default; PostgreSQL lets
//! several auth instances share one database.

use async_trait::async_trait;

use crate::config::TokenFormat;

mod core;
mod direct;
mod postgres;
mod rows;
mod sqlite;

pub use postgres::PgStore;
pub use rows::UnknownValue;
pub use sqlite::SqliteStore;

/// `as_str` (the stored name, which is also the wire name where there is one), `parse`
/// (`None` for an unknown name) and `Display` for an enum stored as text.
macro_rules! text_enum {
    ($ty:ident { $($variant:ident = $text:literal),* $(,)? }) => {
        impl $ty {
            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text,)* }
            }

            /// Parses a stored name.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($ty::$variant),)* _ => None }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }
    };
}

mod records;
pub use records::*;

/// The database driver's error behind a [`StoreError`] (sqlx's, or rusqlite's on SQLite's
/// request path).
pub type DbError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A storage failure, as the domain sees it. The database's own error, when there is one,
/// is the [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A unique constraint was violated (e.g. a username that is taken).
    #[error("already exists")]
    Conflict,
    /// The database cannot be reached or is overloaded; the caller may retry later.
    #[error("store unavailable")]
    Unavailable(#[source] DbError),
    /// A stored row holds a value this version cannot read, such as an unknown algorithm:
    /// the row is corrupt (its column and value are in the source).
    #[error("a stored row cannot be read")]
    Corrupt(#[source] DbError),
    /// The database refused a statement, for a reason other than the ones above.
    #[error("store error")]
    Database(#[source] DbError),
    /// A migration failed.
    #[error("store error")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// The schema is older than this binary's, and the store was opened read-only.
    #[error("store error")]
    SchemaTooOld(#[source] SchemaTooOld),
    /// Users that differ only by case stop an old database from being upgraded.
    #[error("store error")]
    UsernameCollision(#[source] UsernameCollision),
    /// A PostgreSQL schema name that is not plain lower-case ASCII.
    #[error("invalid schema name {0:?}")]
    InvalidSchemaName(String),
    /// A [`KeyChange`] to [`KeyState::Next`]: a key becomes next only when it is added.
    #[error("a key becomes next only when added")]
    InvalidKeyChange,
    /// [`PgStore::drop_schema`] on a store that was not opened in its own schema.
    #[error("only a store opened in its own schema can drop it")]
    NotOwnSchema,
}

/// The database schema is older than this binary's: a command that only reads does not
/// migrate it.
#[derive(Debug, thiserror::Error)]
#[error(
    "the database schema (migration {applied}) is older than this version of wristband \
     (migration {expected}); run `wristband serve`, or any command that changes the store, \
     once to migrate it"
)]
pub struct SchemaTooOld {
    /// The newest migration applied to the database (0: none).
    pub applied: i64,
    /// The newest migration of this binary.
    pub expected: i64,
}

/// Refuses a database whose newest applied migration, as [`core::APPLIED_MIGRATION`]
/// answered, is older than the newest of `migrator`. A database where `missing_table`
/// holds for the error was never migrated at all.
pub(crate) fn check_schema_version(
    answer: Result<Option<i64>, sqlx::Error>,
    missing_table: fn(&dyn sqlx::error::DatabaseError) -> bool,
    map_err: fn(sqlx::Error) -> StoreError,
    migrator: &sqlx::migrate::Migrator,
) -> StoreResult<()> {
    let applied = match answer {
        Ok(applied) => applied.unwrap_or(0),
        Err(sqlx::Error::Database(e)) if missing_table(&*e) => 0,
        Err(e) => return Err(map_err(e)),
    };
    let expected = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    if applied < expected {
        return Err(StoreError::SchemaTooOld(SchemaTooOld { applied, expected }));
    }
    Ok(())
}

/// Result alias for storage calls.
pub type StoreResult<T> = Result<T, StoreError>;

/// Everything the auth service keeps.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Checks that the store answers.
    async fn ping(&self) -> StoreResult<()>;

    /// Adds a user; [`StoreError::Conflict`] when the name is taken in any case (`ALICE`
    /// when `alice` exists). The name is stored as typed.
    async fn create_user(&self, user: &UserRecord) -> StoreResult<()>;
    /// A user by login name, whatever its case (ASCII).
    async fn user_by_name(&self, username: &str) -> StoreResult<Option<UserRecord>>;
    /// A user by id.
    async fn user_by_id(&self, id: &str) -> StoreResult<Option<UserRecord>>;
    /// All users, by name.
    async fn list_users(&self) -> StoreResult<Vec<UserRecord>>;
    /// Enables or disables a user. False when there is no such user.
    async fn set_disabled(&self, id: &str, disabled: bool, now: i64) -> StoreResult<bool>;
    /// Replaces a password hash.
    async fn set_password_hash(&self, id: &str, hash: &str, now: i64) -> StoreResult<bool>;
    /// Changes a role.
    async fn set_role(&self, id: &str, role: &str, now: i64) -> StoreResult<bool>;

    /// Starts a session whose generation-0 refresh token has `token_hash`.
    async fn create_session(&self, session: &SessionRecord, token_hash: &[u8]) -> StoreResult<()>;
    /// A session by id.
    async fn session(&self, id: &str) -> StoreResult<Option<SessionRecord>>;
    /// Where a refresh-token hash belongs.
    async fn refresh_token(&self, token_hash: &[u8]) -> StoreResult<Option<RefreshRecord>>;
    /// Atomically moves the session from `expected_generation` to the next one, recording
    /// `new_hash` for it. False (and no change) when the generation moved already or the
    /// session is revoked.
    async fn rotate(
        &self,
        session_id: &str,
        expected_generation: i64,
        new_hash: &[u8],
        now: i64,
    ) -> StoreResult<bool>;
    /// Marks the session used now (grace-window exchanges).
    async fn touch_session(&self, session_id: &str, now: i64) -> StoreResult<()>;
    /// Revokes a session. False when it was already revoked or does not exist.
    async fn revoke_session(&self, session_id: &str, reason: &str, now: i64) -> StoreResult<bool>;
    /// Revokes a session and records a `sid` revocation for it, in one transaction, so that
    /// a crash cannot end the session without telling the verifiers. `None` when it was
    /// already revoked or does not exist.
    async fn revoke_session_recorded(
        &self,
        session_id: &str,
        reason: &str,
        now: i64,
        expires_at: i64,
    ) -> StoreResult<Option<RevocationRecord>>;
    /// Revokes every live session of a user; returns how many.
    async fn revoke_user_sessions(&self, user_id: &str, reason: &str, now: i64)
        -> StoreResult<u64>;

    /// Throttle state for a key.
    async fn throttle(&self, key: &str) -> StoreResult<ThrottleRecord>;
    /// Throttle state for several keys, in the order given, in one round trip (every login
    /// reads three keys).
    async fn throttles(&self, keys: &[&str]) -> StoreResult<Vec<ThrottleRecord>>;
    /// Atomically counts one failure for a key, starting a new window when the current one
    /// is older than `window_secs`, and returns the new state.
    async fn record_failure(
        &self,
        key: &str,
        now: i64,
        window_secs: i64,
    ) -> StoreResult<ThrottleRecord>;
    /// Forgets a key's throttle state.
    async fn clear_throttle(&self, key: &str) -> StoreResult<()>;
    /// Drops throttle records whose window is over (`window_start + window_secs <= now`):
    /// they no longer count. Returns how many went.
    async fn prune_throttle(&self, now: i64, window_secs: i64) -> StoreResult<u64>;

    /// Every session whose `parent_id` is `parent_id` (revoked or not), oldest first.
    async fn sessions_by_parent(&self, parent_id: &str) -> StoreResult<Vec<SessionRecord>>;

    /// The live sessions of a user, newest first.
    async fn user_sessions(&self, user_id: &str, now: i64) -> StoreResult<Vec<SessionRecord>>;

    /// Records a revocation (its `id` is assigned by the store) and returns it.
    async fn add_revocation(
        &self,
        kind: RevocationKind,
        value: &str,
        before: Option<i64>,
        before_ms: Option<i64>,
        now: i64,
        expires_at: i64,
    ) -> StoreResult<RevocationRecord>;
    /// The highest revocation id recorded so far (0 when there is none): where the feed's
    /// tail starts reading.
    async fn last_revocation_id(&self) -> StoreResult<i64>;
    /// Unexpired revocations with an id above `after`, in id order, at most `limit`.
    async fn revocations_after(
        &self,
        after: i64,
        now: i64,
        limit: u32,
    ) -> StoreResult<Vec<RevocationRecord>>;
    /// True when an unexpired record covers a token with this `jti`, `sid`, `sub` and `iat`.
    /// A subject cut-off compares milliseconds when both the record and the token have
    /// them (`iat_ms <= before_ms` is revoked), else whole seconds (`iat <= before`).
    async fn is_revoked(
        &self,
        jti: &str,
        sid: Option<&str>,
        sub: &str,
        iat: i64,
        iat_ms: Option<i64>,
        now: i64,
    ) -> StoreResult<bool>;
    /// True when an access token is no longer live: [`Store::is_revoked`], or, with a
    /// `sid`, that session is unknown, revoked, or another subject's. The engines answer
    /// in one query; this default asks the two questions one after the other.
    async fn token_ended(
        &self,
        jti: &str,
        sid: Option<&str>,
        sub: &str,
        iat: i64,
        iat_ms: Option<i64>,
        now: i64,
    ) -> StoreResult<bool> {
        if self.is_revoked(jti, sid, sub, iat, iat_ms, now).await? {
            return Ok(true);
        }
        let Some(sid) = sid else {
            return Ok(false);
        };
        Ok(!matches!(
            self.session(sid).await?,
            Some(s) if s.revoked_at.is_none() && s.user_id == sub
        ))
    }
    /// Drops expired revocations, opaque tokens, authorization codes, second steps of
    /// sign-ins and WebAuthn ceremonies; returns how many rows went.
    async fn prune(&self, now: i64) -> StoreResult<u64>;

    /// Registers a client; [`StoreError::Conflict`] when the name is taken.
    async fn create_client(&self, client: &ClientRecord) -> StoreResult<()>;
    /// A client by `client_id`.
    async fn client(&self, id: &str) -> StoreResult<Option<ClientRecord>>;
    /// A client by name.
    async fn client_by_name(&self, name: &str) -> StoreResult<Option<ClientRecord>>;
    /// All clients, by name.
    async fn list_clients(&self) -> StoreResult<Vec<ClientRecord>>;
    /// Replaces everything of a client but its id, secret and creation time. False when
    /// there is none; [`StoreError::Conflict`] when the new name is taken.
    async fn update_client(&self, client: &ClientRecord) -> StoreResult<bool>;
    /// Removes a client, and the consents given to it. False when there is none.
    async fn remove_client(&self, id: &str) -> StoreResult<bool>;
    /// Replaces a client's secret hash.
    async fn set_client_secret(&self, id: &str, secret_hash: &[u8]) -> StoreResult<bool>;

    /// Stores an opaque access token under its hash.
    async fn put_opaque_token(&self, hash: &[u8], token: &OpaqueTokenRecord) -> StoreResult<()>;
    /// An opaque access token by hash.
    async fn opaque_token(&self, hash: &[u8]) -> StoreResult<Option<OpaqueTokenRecord>>;

    /// Stores an authorization code under its hash.
    async fn put_auth_code(&self, hash: &[u8], code: &AuthCodeRecord) -> StoreResult<()>;
    /// Uses an authorization code: the first call marks it used at `now` with the child
    /// session `child_session_id` it creates, and returns it as it was before (`used_at`
    /// `None`). Later calls change nothing and return it as used, with the child session
    /// of the first. Exactly one caller sees an unused code. `None` for an unknown hash.
    async fn use_auth_code(
        &self,
        hash: &[u8],
        child_session_id: &str,
        now: i64,
    ) -> StoreResult<Option<AuthCodeRecord>>;

    /// Records (or replaces) a user's consent to a client.
    async fn put_consent(&self, consent: &ConsentRecord) -> StoreResult<()>;
    /// A user's consent to a client.
    async fn consent(&self, user_id: &str, client_id: &str) -> StoreResult<Option<ConsentRecord>>;
    /// A user's consents, oldest first.
    async fn user_consents(&self, user_id: &str) -> StoreResult<Vec<ConsentRecord>>;
    /// Withdraws a user's consent to a client. False when there was none.
    async fn remove_consent(&self, user_id: &str, client_id: &str) -> StoreResult<bool>;

    /// Every signing key, oldest first.
    async fn list_keys(&self) -> StoreResult<Vec<KeyRecord>>;
    /// Adds a signing key; [`StoreError::Conflict`] when its kid exists, or when it would be
    /// a second current or next key.
    async fn insert_key(&self, key: &KeyRecord) -> StoreResult<()>;
    /// Applies key changes in order, in one transaction: all of them or none. False (and no
    /// change) when a key is not in its expected state. A change to
    /// [`KeyState::Revoked`] also records a `kid` revocation; removal and revocation erase
    /// the private key.
    async fn change_keys(&self, changes: &[KeyChange]) -> StoreResult<bool>;
    /// The sealed secret stored under `name`; when there is none, stores `value` first.
    /// Concurrent callers all get the same winner.
    async fn secret_or_insert(&self, name: &str, value: &[u8], now: i64) -> StoreResult<Vec<u8>>;
    /// Every sealed secret, by name.
    async fn secrets(&self) -> StoreResult<Vec<(String, Vec<u8>)>>;
    /// Replaces sealed values in one transaction (all or none): the private keys of the
    /// named signing keys, and the named secrets. For moving to a new master key.
    async fn reseal(
        &self,
        keys: &[(String, Vec<u8>)],
        secrets: &[(String, Vec<u8>)],
    ) -> StoreResult<()>;

    /// The sign-in sessions (no parent) of a user that a subject cut-off at `at` ends:
    /// created at or before `at`, not revoked before `at`, not past their absolute expiry
    /// at `at`. Oldest first.
    async fn sign_in_sessions_at(&self, user_id: &str, at: i64) -> StoreResult<Vec<SessionRecord>>;

    /// Starts (or restarts) a user's TOTP enrolment with a sealed secret. False, and no
    /// change, when the user has a confirmed authenticator already.
    async fn begin_totp(&self, user_id: &str, sealed_secret: &[u8], now: i64) -> StoreResult<bool>;
    /// A user's TOTP authenticator, confirmed or not.
    async fn totp(&self, user_id: &str) -> StoreResult<Option<TotpRecord>>;
    /// Accepts a code of time step `step`: records the step as the last used, and confirms
    /// the authenticator at `now` when it was not. False, and no change, when a code of
    /// this step or a later one was accepted already: of concurrent callers with the same
    /// step exactly one wins.
    async fn use_totp_step(&self, user_id: &str, step: i64, now: i64) -> StoreResult<bool>;
    /// Removes a user's TOTP authenticator. False when there was none.
    async fn remove_totp(&self, user_id: &str) -> StoreResult<bool>;
    /// Replaces a user's recovery codes (their hashes), in one transaction.
    async fn replace_recovery_codes(
        &self,
        user_id: &str,
        hashes: &[Vec<u8>],
        now: i64,
    ) -> StoreResult<()>;
    /// Uses one of a user's recovery codes, by hash: the number of unused codes left
    /// after it, or `None` when the hash is no unused code of this user. Of concurrent
    /// callers with the same code exactly one gets `Some`.
    async fn use_recovery_code(
        &self,
        user_id: &str,
        hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<i64>>;
    /// How many unused recovery codes a user has.
    async fn recovery_codes_left(&self, user_id: &str) -> StoreResult<i64>;
    /// Stores the second step of a sign-in under the hash of its token.
    async fn put_mfa_token(&self, hash: &[u8], token: &MfaTokenRecord) -> StoreResult<()>;
    /// The second step of a sign-in, by hash.
    async fn mfa_token(&self, hash: &[u8]) -> StoreResult<Option<MfaTokenRecord>>;
    /// Counts a wrong code against an unfinished second step; the failures after it (0
    /// for an unknown or finished one).
    async fn fail_mfa_token(&self, hash: &[u8]) -> StoreResult<i64>;
    /// Finishes a second step at `now`: true for the one caller that finds it unused,
    /// unexpired and with fewer than `max_failures` wrong codes.
    async fn finish_mfa_token(&self, hash: &[u8], now: i64, max_failures: i64)
        -> StoreResult<bool>;
    /// Adds a passkey; [`StoreError::Conflict`] when its credential id is registered.
    async fn add_passkey(&self, passkey: &PasskeyRecord) -> StoreResult<()>;
    /// A user's passkeys, oldest first.
    async fn passkeys(&self, user_id: &str) -> StoreResult<Vec<PasskeyRecord>>;
    /// A passkey by credential id.
    async fn passkey(&self, id: &str) -> StoreResult<Option<PasskeyRecord>>;
    /// Records a use of a passkey: its updated credential (counter) and the time. False
    /// when it is gone.
    async fn passkey_used(&self, id: &str, passkey: &str, now: i64) -> StoreResult<bool>;
    /// Removes one of a user's passkeys. False when the user has no such passkey.
    async fn remove_passkey(&self, user_id: &str, id: &str) -> StoreResult<bool>;
    /// Stores a WebAuthn ceremony in progress.
    async fn put_challenge(&self, challenge: &ChallengeRecord) -> StoreResult<()>;
    /// Uses a ceremony: the one caller that finds it of this `kind` and `binding`, unused
    /// and unexpired at `now` gets it (and marks it used); everyone else `None`.
    async fn take_challenge(
        &self,
        id: &str,
        kind: &str,
        binding: &str,
        now: i64,
    ) -> StoreResult<Option<ChallengeRecord>>;
    /// Removes a user's second factors (TOTP, recovery codes, passkeys) and unfinished
    /// second steps, in one transaction; how many rows went.
    async fn reset_mfa(&self, user_id: &str) -> StoreResult<u64>;

    /// The back-channel follower's durable cursor: the id of the last revocation record it
    /// handled.
    async fn backchannel_cursor(&self) -> StoreResult<i64>;
    /// Moves the back-channel follower's cursor forward to `to` (never back: with several
    /// instances following, the furthest wins).
    async fn advance_backchannel_cursor(&self, to: i64) -> StoreResult<()>;
    /// Queues a logout token (`id`, `attempts` and the lease are the store's; the delivery
    /// is due at `next_attempt_at`). False when the same revocation, client and session
    /// were queued already (by this instance or another).
    async fn enqueue_backchannel(&self, delivery: &BackchannelRecord) -> StoreResult<bool>;
    /// Claims up to `limit` deliveries that are due at `now`, neither delivered nor given
    /// up, and not leased by another claim: each gets a lease until `lease_until` and one
    /// more attempt. Two concurrent claims never get the same row.
    async fn claim_backchannel(
        &self,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> StoreResult<Vec<BackchannelRecord>>;
    /// Marks a delivery done. False when it is unknown or already finished.
    async fn backchannel_delivered(&self, id: i64, now: i64) -> StoreResult<bool>;
    /// Releases a delivery after a failed attempt, due again at `next_attempt_at`.
    async fn backchannel_retry_at(&self, id: i64, next_attempt_at: i64) -> StoreResult<bool>;
    /// Marks a delivery abandoned: its retry window is over.
    async fn backchannel_gave_up(&self, id: i64, now: i64) -> StoreResult<bool>;
    /// Deliveries not finished yet (pending or leased), oldest first.
    async fn pending_backchannel(&self) -> StoreResult<Vec<BackchannelRecord>>;
    /// Drops deliveries finished (delivered or given up) at or before `before`; returns how
    /// many went.
    async fn prune_backchannel(&self, before: i64) -> StoreResult<u64>;

    /// True when this process holds (or has just taken) the leadership named `name`, for
    /// work that one instance among several must do alone, such as the key schedule. A
    /// store that serves a single instance is always the leader. Leadership is lost when
    /// the process or its database connection dies.
    async fn try_lead(&self, _name: &str) -> StoreResult<bool> {
        Ok(true)
    }

    /// A stream of wake-ups, one (at least) whenever any process records a revocation, when
    /// the engine can push them (PostgreSQL's LISTEN/NOTIFY). `None`: the feed finds other
    /// processes' records by polling.
    fn revocation_wakeups(&self) -> Option<tokio::sync::mpsc::Receiver<()>> {
        None
    }
}
