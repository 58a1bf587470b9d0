//! Storage: one trait, chosen at start-up. SQLite is the embedded default.

use async_trait::async_trait;

mod sqlite;

pub use sqlite::SqliteStore;

/// A storage failure, as the domain sees it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A unique constraint was violated (e.g. a username that is taken).
    #[error("already exists")]
    Conflict,
    /// The database cannot be reached or is overloaded; the caller may retry later.
    #[error("store unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Anything else.
    #[error("store error")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Result alias for storage calls.
pub type StoreResult<T> = Result<T, StoreError>;

/// A stored user. Never serialised to clients: the HTTP layer has its own types.
#[derive(Debug, Clone, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

/// Where a refresh-token hash sits in its family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRecord {
    /// Its session.
    pub session_id: String,
    /// Its generation.
    pub generation: i64,
}

/// Login-throttle state for one key (an account, an IP, or both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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
}

impl RevocationKind {
    /// The stored and wire name: `jti`, `sid` or `sub`.
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationKind::Jti => "jti",
            RevocationKind::Sid => "sid",
            RevocationKind::Sub => "sub",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "jti" => Some(RevocationKind::Jti),
            "sid" => Some(RevocationKind::Sid),
            "sub" => Some(RevocationKind::Sub),
            _ => None,
        }
    }
}

/// A revocation, as stored and as pushed to verifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationRecord {
    /// Monotonic id: the feed cursor.
    pub id: i64,
    /// What it covers.
    pub kind: RevocationKind,
    /// The jti, sid or sub.
    pub value: String,
    /// For [`RevocationKind::Sub`]: tokens issued at or before this time.
    pub before: Option<i64>,
    /// When it was made.
    pub created_at: i64,
    /// After this time no token it covers can be valid, and it is dropped.
    pub expires_at: i64,
}

/// A registered OAuth client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    /// `client_id`.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// `service` (gets tokens) or `resource-server` (also introspects and reads the
    /// revocation feed).
    pub kind: String,
    /// SHA-256 of the secret.
    pub secret_hash: Vec<u8>,
    /// Scopes it may ask for.
    pub scopes: Vec<String>,
    /// Audiences it may ask for; the first is the default.
    pub audiences: Vec<String>,
    /// `jwt` or `opaque`.
    pub token_format: String,
    /// Registration time.
    pub created_at: i64,
}

/// An opaque access token, stored under the SHA-256 of the token.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// Expiry.
    pub exp: i64,
}

/// Everything the auth service keeps.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Checks that the store answers.
    async fn ping(&self) -> StoreResult<()>;

    /// Adds a user; [`StoreError::Conflict`] when the name is taken.
    async fn create_user(&self, user: &UserRecord) -> StoreResult<()>;
    /// A user by login name.
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
    /// Throttle state for several keys, in the order given: one round trip where the store
    /// allows it (every login reads three keys).
    async fn throttles(&self, keys: &[&str]) -> StoreResult<Vec<ThrottleRecord>> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            out.push(self.throttle(key).await?);
        }
        Ok(out)
    }
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

    /// The live sessions of a user, newest first.
    async fn user_sessions(&self, user_id: &str, now: i64) -> StoreResult<Vec<SessionRecord>>;

    /// Records a revocation (its `id` is assigned by the store) and returns it.
    async fn add_revocation(
        &self,
        kind: RevocationKind,
        value: &str,
        before: Option<i64>,
        now: i64,
        expires_at: i64,
    ) -> StoreResult<RevocationRecord>;
    /// Unexpired revocations with an id above `after`, in id order, at most `limit`.
    async fn revocations_after(
        &self,
        after: i64,
        now: i64,
        limit: u32,
    ) -> StoreResult<Vec<RevocationRecord>>;
    /// True when an unexpired record covers a token with this `jti`, `sid`, `sub` and `iat`.
    async fn is_revoked(
        &self,
        jti: &str,
        sid: Option<&str>,
        sub: &str,
        iat: i64,
        now: i64,
    ) -> StoreResult<bool>;
    /// Drops expired revocations and opaque tokens; returns how many rows went.
    async fn prune(&self, now: i64) -> StoreResult<u64>;

    /// Registers a client; [`StoreError::Conflict`] when the name is taken.
    async fn create_client(&self, client: &ClientRecord) -> StoreResult<()>;
    /// A client by `client_id`.
    async fn client(&self, id: &str) -> StoreResult<Option<ClientRecord>>;
    /// A client by name.
    async fn client_by_name(&self, name: &str) -> StoreResult<Option<ClientRecord>>;
    /// All clients, by name.
    async fn list_clients(&self) -> StoreResult<Vec<ClientRecord>>;
    /// Removes a client. False when there is none.
    async fn remove_client(&self, id: &str) -> StoreResult<bool>;
    /// Replaces a client's secret hash.
    async fn set_client_secret(&self, id: &str, secret_hash: &[u8]) -> StoreResult<bool>;

    /// Stores an opaque access token under its hash.
    async fn put_opaque_token(&self, hash: &[u8], token: &OpaqueTokenRecord) -> StoreResult<()>;
    /// An opaque access token by hash.
    async fn opaque_token(&self, hash: &[u8]) -> StoreResult<Option<OpaqueTokenRecord>>;
}
