//! Storage: one trait, chosen at start-up. SQLite is the embedded default; PostgreSQL lets
//! several auth instances share one database.

use async_trait::async_trait;
use wristband_jose::Algorithm;

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

/// A stored user. Never serialised to clients: the HTTP layer has its own types.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserRecord {
    /// Stable opaque id, used as the token `sub`.
    pub id: String,
    /// Login name.
    pub username: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Role claim.
    pub role: String,
    /// Disabled users cannot log in or refresh.
    pub disabled: bool,
    /// Creation time (Unix seconds).
    pub created_at: i64,
}

/// A session: one login, one refresh-token family.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRecord {
    /// Session id, the token `sid`.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// The client the session belongs to.
    pub client_id: String,
    /// Login time.
    pub created_at: i64,
    /// Last login or refresh.
    pub last_used_at: i64,
    /// The session ends at this time whatever happens.
    pub absolute_expires_at: i64,
    /// Generation of the current refresh token (0 at login).
    pub generation: i64,
    /// When the current generation was issued by a rotation.
    pub rotated_at: Option<i64>,
    /// When the session was revoked, if it was.
    pub revoked_at: Option<i64>,
    /// Client user agent at login.
    pub user_agent: Option<String>,
    /// Client IP at login.
    pub ip: Option<String>,
    /// For a session made by an OpenID Connect code exchange (a child session): the
    /// sign-in session it came from. `None` for a sign-in session.
    pub parent_id: Option<String>,
    /// The relying party was granted `offline_access`: the session outlives its parent.
    pub offline: bool,
    /// For a child session: the scopes granted to the relying party, space-separated
    /// (what its refreshed access tokens carry). `None` for a sign-in session.
    pub scope: Option<String>,
    /// How the user signed in: RFC 8176 method names, space-separated (`pwd`, `otp`,
    /// `hwk`, `swk`, `mfa`). Every token of the session carries them, refreshed or not.
    pub amr: String,
    /// When the user signed in (for a child session, the sign-in it came from).
    pub auth_time: i64,
}

/// Where a refresh-token hash sits in its family.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RefreshRecord {
    /// Its session.
    pub session_id: String,
    /// Its generation.
    pub generation: i64,
}

/// Login-throttle state for one key (an account, an IP, or both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, sqlx::FromRow)]
pub struct ThrottleRecord {
    /// Failures in the current window.
    pub failures: i64,
    /// Window start.
    pub window_start: i64,
    /// Time of the latest failure.
    pub last_failure: i64,
}

/// What a revocation record covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RevocationKind {
    /// One access token, by `jti`.
    Jti,
    /// Every token of a session, by `sid`.
    Sid,
    /// Every token of a subject issued at or before a time.
    Sub,
    /// Every token signed by an emergency-revoked key, by `kid`.
    Kid,
}

text_enum!(RevocationKind {
    Jti = "jti",
    Sid = "sid",
    Sub = "sub",
    Kid = "kid",
});

/// A revocation, as stored and as pushed to verifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationRecord {
    /// Monotonic id: the feed cursor.
    pub id: i64,
    /// What it covers.
    pub kind: RevocationKind,
    /// The jti, sid, sub or kid.
    pub value: String,
    /// For [`RevocationKind::Sub`]: tokens issued at or before this time.
    pub before: Option<i64>,
    /// For [`RevocationKind::Sub`]: the same cut-off in milliseconds, when it was recorded
    /// with that precision (records made before it existed have none).
    pub before_ms: Option<i64>,
    /// When it was made.
    pub created_at: i64,
    /// After this time no token it covers can be valid, and it is dropped.
    pub expires_at: i64,
}

/// What a registered client may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKind {
    /// Gets access tokens.
    Service,
    /// Also introspects tokens and reads the revocation feed.
    ResourceServer,
    /// An OpenID Connect relying party that keeps a secret (a web server).
    Web,
    /// An OpenID Connect relying party without a secret (a browser or native app): PKCE
    /// is its only proof.
    Public,
}

text_enum!(ClientKind {
    Service = "service",
    ResourceServer = "resource-server",
    Web = "web",
    Public = "public",
});

impl ClientKind {
    /// True for the OpenID Connect relying parties (`web` and `public`).
    pub fn is_relying_party(self) -> bool {
        matches!(self, ClientKind::Web | ClientKind::Public)
    }
}

/// A registered OAuth client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    /// `client_id`.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// What it may do.
    pub kind: ClientKind,
    /// SHA-256 of the secret.
    pub secret_hash: Vec<u8>,
    /// Scopes it may ask for.
    pub scopes: Vec<String>,
    /// Audiences it may ask for; the first is the default.
    pub audiences: Vec<String>,
    /// The access tokens it gets.
    pub token_format: TokenFormat,
    /// Registration time.
    pub created_at: i64,
    /// Where the authorization endpoint may send the user back (exact strings; loopback
    /// redirects match on any port).
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send the user back.
    pub post_logout_redirect_uris: Vec<String>,
    /// Where back-channel logout tokens are posted; `None`: none are.
    pub backchannel_logout_uri: Option<String>,
    /// A first-party client gets no consent page.
    pub first_party: bool,
}

/// An OpenID Connect authorization code, stored under the SHA-256 of the code.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuthCodeRecord {
    /// The client it was issued to.
    pub client_id: String,
    /// The user who authorized.
    pub user_id: String,
    /// The sign-in session the user authorized from (the ID token's `sid`).
    pub session_id: String,
    /// The redirect URI of the authorization request, which the exchange must repeat.
    pub redirect_uri: String,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// The request's `nonce`, for the ID token.
    pub nonce: Option<String>,
    /// The S256 PKCE challenge.
    pub code_challenge: String,
    /// When the user signed in.
    pub auth_time: i64,
    /// Authentication methods, space-separated (the ID token's `amr`).
    pub amr: String,
    /// Issue time.
    pub created_at: i64,
    /// The code is refused at and after this time.
    pub expires_at: i64,
    /// When it was exchanged; `None` until then.
    pub used_at: Option<i64>,
    /// The child session its exchange created.
    pub child_session_id: Option<String>,
}

/// A user's consent to a client's scopes.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConsentRecord {
    /// The user.
    pub user_id: String,
    /// The client.
    pub client_id: String,
    /// The scopes consented to, space-separated.
    pub scope: String,
    /// When consent was (last) given.
    pub created_at: i64,
}

/// An opaque access token, stored under the SHA-256 of the token.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OpaqueTokenRecord {
    /// Token id, for revocation.
    pub jti: String,
    /// Subject.
    pub sub: String,
    /// Client.
    pub client_id: String,
    /// Audience.
    pub aud: String,
    /// Space-separated scopes.
    pub scope: Option<String>,
    /// Role.
    pub role: Option<String>,
    /// Session.
    pub sid: Option<String>,
    /// Issued at.
    pub iat: i64,
    /// Issued at, in milliseconds (none for tokens stored before it was kept).
    pub iat_ms: Option<i64>,
    /// Expiry.
    pub exp: i64,
}

/// Users whose names differ only by case, found when opening a database made before
/// usernames became case-insensitive: the store refuses to open until they are renamed.
#[derive(Debug, thiserror::Error)]
#[error(
    "usernames are now case-insensitive, but these users differ only by case: {}. \
     Rename all but one in each group before upgrading, e.g. with \
     UPDATE users SET username = 'new-name' WHERE username = 'old-name'",
    .groups.join("; ")
)]
pub struct UsernameCollision {
    /// Each group of colliding names, as stored, comma-separated.
    pub groups: Vec<String>,
}

/// [`UsernameCollision`] as a store error, when any group was found.
pub(crate) fn refuse_collisions(groups: Vec<String>) -> StoreResult<()> {
    if groups.is_empty() {
        Ok(())
    } else {
        Err(StoreError::UsernameCollision(UsernameCollision { groups }))
    }
}

/// Where a signing key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyState {
    /// Published in the JWKS, not signing yet.
    Next,
    /// Signing (exactly one key at a time).
    Current,
    /// No longer signing, still published until its tokens have expired.
    Retired,
    /// Gone from the JWKS; its private half is erased.
    Removed,
    /// Emergency-revoked: gone from the JWKS at once and pushed to verifiers as a revocation.
    Revoked,
}

text_enum!(KeyState {
    Next = "next",
    Current = "current",
    Retired = "retired",
    Removed = "removed",
    Revoked = "revoked",
});

impl KeyState {
    /// True for the states whose public key is in the JWKS.
    pub fn is_published(self) -> bool {
        matches!(self, KeyState::Next | KeyState::Current | KeyState::Retired)
    }
}

/// A stored signing key. The private half is sealed under the master key.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// Key id: the RFC 7638 thumbprint.
    pub kid: String,
    /// JWS algorithm.
    pub alg: Algorithm,
    /// Life-cycle state.
    pub state: KeyState,
    /// Sealed PKCS#8 PEM; `None` once removed or revoked.
    pub private_key: Option<Vec<u8>>,
    /// Public JWK, JSON.
    pub public_jwk: String,
    /// Creation time.
    pub created_at: i64,
    /// For a next key: when it starts to sign.
    pub activates_at: Option<i64>,
    /// When it started to sign.
    pub activated_at: Option<i64>,
    /// When it stopped signing.
    pub retired_at: Option<i64>,
    /// For a retired key: when it leaves the JWKS.
    pub removes_at: Option<i64>,
    /// When it was revoked.
    pub revoked_at: Option<i64>,
}

impl std::fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRecord")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// One conditional state change of a signing key, applied by [`Store::change_keys`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyChange {
    /// The key.
    pub kid: String,
    /// The state it must be in; otherwise nothing changes.
    pub from: KeyState,
    /// The new state: current, retired, removed or revoked.
    pub to: KeyState,
    /// When.
    pub at: i64,
    /// For retired: when the key leaves the JWKS. For revoked: when the `kid` revocation
    /// record may be dropped.
    pub until: Option<i64>,
}

/// A back-channel logout token to deliver (OpenID Connect Back-Channel Logout 1.0): one per
/// revocation record, client and sign-in session.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BackchannelRecord {
    /// Queue id (assigned by the store).
    pub id: i64,
    /// The revocation record that ended the sign-in session.
    pub revocation_id: i64,
    /// The client to tell.
    pub client_id: String,
    /// The sign-in session, the logout token's `sid`.
    pub sid: String,
    /// Its user, the logout token's `sub`.
    pub sub: String,
    /// Where to POST the token (the client's `backchannel_logout_uri` when queued).
    pub uri: String,
    /// The logout token's `jti`, the same for every attempt.
    pub jti: String,
    /// When it was queued.
    pub created_at: i64,
    /// Attempts so far (counting the one a claim starts).
    pub attempts: i64,
    /// When it may be tried (again).
    pub next_attempt_at: i64,
}

/// A user's TOTP authenticator (RFC 6238).
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TotpRecord {
    /// Owner.
    pub user_id: String,
    /// The shared secret, sealed under the master key.
    pub secret: Vec<u8>,
    /// When the enrolment began.
    pub created_at: i64,
    /// When the first code was entered; until then the authenticator is no factor.
    pub confirmed_at: Option<i64>,
    /// The time step of the last code accepted.
    pub last_step: Option<i64>,
}

impl std::fmt::Debug for TotpRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpRecord")
            .field("user_id", &self.user_id)
            .field("confirmed_at", &self.confirmed_at)
            .field("last_step", &self.last_step)
            .finish_non_exhaustive()
    }
}

/// The second step of a sign-in: the password was right, a second factor is due. Stored
/// under the SHA-256 hash of the token the client holds.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MfaTokenRecord {
    /// Who is signing in.
    pub user_id: String,
    /// The methods passed so far (RFC 8176, space-separated): `pwd`.
    pub amr: String,
    /// When the first step passed.
    pub created_at: i64,
    /// The token is refused from this time on.
    pub expires_at: i64,
    /// Wrong codes entered with it.
    pub failures: i64,
    /// The user has no factor but their role needs one: this second step enrols one.
    pub enrol: bool,
    /// When a second factor finished it.
    pub used_at: Option<i64>,
}

/// A passkey (a WebAuthn credential) of a user.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PasskeyRecord {
    /// The credential id, base64url.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// The name the user gave it.
    pub name: String,
    /// The credential as the WebAuthn library keeps it (JSON).
    pub passkey: String,
    /// When it was registered.
    pub created_at: i64,
    /// When it last signed a sign-in.
    pub last_used_at: Option<i64>,
}

/// A WebAuthn ceremony in progress: single use, until `expires_at`, bound to what asked
/// for it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ChallengeRecord {
    /// The handle the client gives back.
    pub id: String,
    /// `register`, `authenticate` or `discover`.
    pub kind: String,
    /// What asked: a session id, the hash of a second step's token; empty for a
    /// passwordless sign-in.
    pub binding: String,
    /// The user, when known.
    pub user_id: Option<String>,
    /// The library's state (JSON).
    pub state: String,
    /// When it began.
    pub created_at: i64,
    /// It is refused from this time on.
    pub expires_at: i64,
    /// When it was used.
    pub used_at: Option<i64>,
}

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
