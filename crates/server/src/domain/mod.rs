//! The auth service's domain: login, refresh rotation with reuse detection, logout, users.
//!
//! Nothing here knows about HTTP or SQL: it talks to a [`Store`] and reads time from a
//! [`Clock`].

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::digest;
use tokio::sync::watch;
use wristband_jose::{Clock, Jwks, SecretString};

use crate::config::{Config, PublicUrl};
use crate::metrics::Metrics;
use crate::store::{
    ClientRecord, RefreshRecord, RevocationRecord, SessionRecord, Store, UserRecord,
};

mod account;
mod device;
mod error;
pub mod feed;
pub mod keys;
pub mod mfa;
pub mod oauth;
pub mod oidc;
pub mod passkeys;
pub mod password;
mod principal;
pub mod return_to;
pub mod revoke;
pub mod seal;
pub mod strength;
mod throttle;
pub mod tokens;
pub mod totp;
pub mod users;

pub use error::{Chain, DomainError, Source};
pub use feed::{FeedEntry, FeedHub, FeedItem, FeedSubscription};
pub use keys::{KeyEvent, KeyEventKind, KeyManager, KeyRing, KeySchedule, PolicyTemplate};
pub use password::Passwords;
pub use principal::Principal;
pub use return_to::ReturnTarget;
pub use revoke::RecordLifetime;
pub use seal::MasterKey;
pub use tokens::{TokenFormat, TokenInfo};

/// Writes a structured audit event (`event=...`) to the `wristband::audit` log target.
/// Never pass tokens, passwords or hashes.
macro_rules! audit {
    ($event:literal $(, $($field:tt)*)?) => {
        tracing::info!(target: "wristband::audit", event = $event $(, $($field)*)?)
    };
}
pub(crate) use audit;

/// The leadership name of the key schedule (see [`Store::try_lead`]).
pub const KEY_SCHEDULE_LEADER: &str = "key-schedule";

/// Who is calling, for audit and throttling.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// The client's IP address.
    pub ip: Option<String>,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
}

/// An access token and a refresh token.
#[derive(Clone)]
pub struct TokenPair {
    /// Signed JWT access token.
    pub access_token: String,
    /// Access-token lifetime in seconds.
    pub expires_in: u64,
    /// Opaque refresh token.
    pub refresh_token: String,
    /// The session both belong to.
    pub session_id: String,
}

/// A successful login: the tokens, and a fresh device token that lets this client log in
/// to this account again even while the account is throttled for everyone else.
#[derive(Clone)]
pub struct DeviceLogin {
    /// The new session's tokens.
    pub pair: TokenPair,
    /// The device token to keep (a cookie for browsers, a field for API clients).
    pub device_token: String,
}

impl fmt::Debug for DeviceLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceLogin")
            .field("pair", &self.pair)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenPair")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// SHA-256 of a token: the only form in which refresh tokens are stored.
pub fn token_hash(token: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, token.as_bytes())
        .as_ref()
        .to_vec()
}

/// A random id: 128 bits, base64url, with a readable prefix.
pub(crate) fn random_id(prefix: &str) -> Result<String, DomainError> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|e| DomainError::internal_because("random bytes", e))?;
    Ok(format!("{prefix}{}", wristband_jose::b64::encode(bytes)))
}

pub(crate) fn new_refresh_token() -> Result<String, DomainError> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|e| DomainError::internal_because("random bytes", e))?;
    Ok(wristband_jose::b64::encode(bytes))
}

/// Refresh tokens are 43 base64url characters (256 bits); anything else is refused before
/// touching the store.
fn looks_like_refresh_token(t: &str) -> bool {
    t.len() == 43
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The auth service: everything the HTTP handlers call.
pub struct AuthService {
    config: Config,
    issuer: String,
    /// Where browsers reach the pages (from `public_url`).
    public_url: PublicUrl,
    /// The serialised origins a return target may point to.
    return_origins: Vec<String>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    keys: KeyManager,
    passwords: Passwords,
    metrics: Arc<Metrics>,
    /// The revocation feed's one tail and ring, shared by every stream ([`feed`]).
    feed: FeedHub,
    /// Set when the server begins to shut down: long-lived responses (the feed's streams)
    /// end so that the shutdown can drain.
    stopping: watch::Sender<bool>,
    /// Back-channel logout: the delivery worker's wake-up and HTTP client.
    backchannel: oidc::backchannel::Backchannel,
    /// The WebAuthn relying party of the public URL; `None` when its host cannot be one.
    webauthn: Option<webauthn_rs::Webauthn>,
}

impl fmt::Debug for AuthService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthService")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl AuthService {
    /// Builds the service. `config.issuer` must be resolved (see [`Config::issuer`]).
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        keys: KeyManager,
        metrics: Arc<Metrics>,
    ) -> Result<Self, DomainError> {
        let issuer = config.issuer();
        let concurrency = config.hash_concurrency.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
        });
        let passwords = Passwords::new(config.argon2, concurrency)?;
        let public_url = config.public_url();
        let webauthn = passkeys::relying_party(public_url.origin());
        let mut return_origins = config.return_origins();
        // The service's own pages (the authorization endpoint after a login) are always a
        // target.
        if !return_origins.iter().any(|o| o == public_url.origin()) {
            return_origins.push(public_url.origin().to_owned());
        }
        Ok(AuthService {
            config,
            issuer,
            public_url,
            return_origins,
            store,
            clock,
            keys,
            passwords,
            feed: FeedHub::new(metrics.feed.clone()),
            metrics,
            stopping: watch::Sender::new(false),
            backchannel: oidc::backchannel::Backchannel::default(),
            webauthn,
        })
    }

    /// Tells long-lived responses to finish: the server is shutting down.
    pub fn begin_shutdown(&self) {
        self.stopping.send_replace(true);
        // The feed's streams wait on the ring's head alone.
        self.feed.touch();
    }

    /// A receiver that turns `true` when the server begins to shut down.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// How long revocation records live.
    pub fn record_lifetime(&self) -> RecordLifetime {
        RecordLifetime {
            access_ttl_secs: wristband_jose::secs_i64(self.config.access_ttl),
        }
    }

    /// Wakes the revocation feed's tail: a revocation was recorded by this instance (or
    /// pushed by the store). Records written by other processes without a push (the CLI on
    /// SQLite) are found by the tail's poll ([`feed::POLL`]).
    pub fn feed_changed(&self) {
        self.feed.wake();
    }

    /// Unexpired revocation records after `cursor`, at most `limit`.
    pub async fn revocations_after(
        &self,
        cursor: i64,
        limit: u32,
    ) -> Result<Vec<RevocationRecord>, DomainError> {
        Ok(self
            .store
            .revocations_after(cursor, self.now(), limit)
            .await?)
    }

    /// Drops revocation records, opaque tokens and throttle records that can no longer
    /// matter.
    pub async fn prune(&self) -> Result<u64, DomainError> {
        let now = self.now();
        let records = self.store.prune(now).await?;
        let records = records + oidc::backchannel::prune(self, now).await?;
        Ok(records + throttle::prune(self, now).await?)
    }

    /// The issuer URL.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Where browsers reach the hosted pages: the public URL's origin and path prefix.
    pub fn public_url(&self) -> &PublicUrl {
        &self.public_url
    }

    /// `raw` as a return target, when it is an allowed one (see [`ReturnTarget::check`]).
    pub fn return_target(&self, raw: &str) -> Option<ReturnTarget> {
        ReturnTarget::check(raw, &self.public_url, &self.return_origins)
    }

    /// Settings in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The password hasher.
    pub fn passwords(&self) -> &Passwords {
        &self.passwords
    }

    /// The store.
    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now().as_i64()
    }

    /// Now, to the millisecond: the time of a subject cut-off.
    pub(crate) fn now_ms(&self) -> revoke::Millis {
        revoke::Millis::now(&*self.clock)
    }

    /// The public JWKS.
    pub fn jwks(&self) -> Jwks {
        self.keys.ring().jwks().clone()
    }

    /// The signing keys.
    pub fn keys(&self) -> &KeyManager {
        &self.keys
    }

    /// Runs the key schedule once and picks up key changes made elsewhere (the CLI, other
    /// instances). The server calls this every few seconds.
    pub async fn sync_keys(&self) -> Result<Vec<KeyEvent>, DomainError> {
        // With several instances on one database only the leader runs the schedule; the
        // others pick its changes up by reloading.
        let events = if self.store.try_lead(KEY_SCHEDULE_LEADER).await? {
            self.keys.tick(self.now()).await?
        } else {
            Vec::new()
        };
        self.keys.reload().await?;
        if events.iter().any(|e| e.kind == KeyEventKind::Revoked) {
            self.feed_changed();
        }
        Ok(events)
    }

    /// Emergency revocation of a signing key (see [`KeyManager::revoke`]): its tokens are
    /// refused here at once and pushed to verifiers through the feed.
    pub async fn revoke_key(&self, kid: &str) -> Result<Vec<KeyEvent>, DomainError> {
        let span = self.record_lifetime().span();
        let events = self.keys.revoke(kid, span, self.now()).await?;
        self.feed_changed();
        Ok(events)
    }

    /// Whether the store answers.
    pub async fn ready(&self) -> bool {
        self.store.ping().await.is_ok()
    }

    /// Checks a password and starts a new session (a client without a device token).
    pub async fn login(
        &self,
        username: &str,
        password: SecretString,
        client: &ClientInfo,
    ) -> Result<TokenPair, DomainError> {
        Ok(self
            .login_device(username, password, None, client)
            .await?
            .pair)
    }

    /// Checks a password and starts a new session. A malformed username is refused before
    /// anything is read or written. With a valid `device_token` for this account the
    /// client is throttled on that device alone; without one (or with a foreign, forged or
    /// expired one) per account, per address and per (account, address). A success
    /// returns a fresh device token.
    pub async fn login_device(
        &self,
        username: &str,
        password: SecretString,
        device_token: Option<&str>,
        client: &ClientInfo,
    ) -> Result<DeviceLogin, DomainError> {
        users::check_username(username)?;
        let folded = users::fold_username(username);
        let now = self.now();
        let max_age = wristband_jose::secs_i64(self.config.throttle.device_cookie_max_age);
        let device = device_token
            .filter(|t| device::verify(self.keys.device_key(), &folded, t, now, max_age));
        let mut throttle = match device {
            Some(token) => throttle::Keys::device(token),
            None => throttle::Keys::new(&folded, client.ip.as_deref()),
        };
        let known_device = device.is_some();
        if let Some(retry_after) = throttle.blocked(self, now).await? {
            self.metrics.login("throttled");
            audit!(
                "login_throttled",
                ip = client.ip.as_deref(),
                known_device,
                retry_after
            );
            return Err(DomainError::Throttled { retry_after });
        }
        if password.expose().len() > password::MAX_PASSWORD_BYTES {
            // Do not spend a KDF run on hostile input, but count the failure.
            throttle.record_failure(self, now).await?;
            return Err(DomainError::InvalidCredentials);
        }
        let user = self.store.user_by_name(&folded).await?;
        let verdict = self
            .passwords
            .verify(
                password.clone(),
                user.as_ref().map(|u| u.password_hash.clone()),
            )
            .await?;
        let user = match user {
            Some(u) if verdict.ok && !u.disabled => u,
            other => {
                throttle.record_failure(self, now).await?;
                self.metrics.login("failed");
                let reason = match &other {
                    None => "unknown_user",
                    Some(u) if u.disabled && verdict.ok => "disabled",
                    Some(_) => "wrong_password",
                };
                audit!(
                    "login_failed",
                    user_id = other.as_ref().map(|u| u.id.as_str()),
                    ip = client.ip.as_deref(),
                    known_device,
                    reason
                );
                return Err(DomainError::InvalidCredentials);
            }
        };
        throttle.clear_on_success(self).await?;
        if verdict.needs_rehash {
            let hash = self.passwords.hash(password).await?;
            self.store.set_password_hash(&user.id, &hash, now).await?;
            audit!("password_rehashed", user_id = %user.id);
        }
        if let Some(challenge) = self.second_step(&user, now).await? {
            self.metrics.login("mfa_required");
            audit!("login_mfa_required", user_id = %user.id, ip = client.ip.as_deref());
            return Err(DomainError::MfaRequired(Box::new(challenge)));
        }
        let login = self.begin_session(&user, client, now, "pwd").await?;
        self.metrics.login("ok");
        Ok(login)
    }

    /// Starts a sign-in session for `user`, who signed in with the methods `amr`: its
    /// tokens, and a fresh device token.
    async fn begin_session(
        &self,
        user: &UserRecord,
        client: &ClientInfo,
        now: i64,
        amr: &str,
    ) -> Result<DeviceLogin, DomainError> {
        let pair = self.start_session(user, client, now, amr).await?;
        let folded = users::fold_username(&user.username);
        Ok(DeviceLogin {
            pair,
            device_token: device::issue(self.keys.device_key(), &folded, now)?,
        })
    }

    async fn start_session(
        &self,
        user: &UserRecord,
        client: &ClientInfo,
        now: i64,
        amr: &str,
    ) -> Result<TokenPair, DomainError> {
        let refresh_token = new_refresh_token()?;
        let absolute = wristband_jose::secs_i64(self.config.refresh_absolute_ttl);
        let session = SessionRecord {
            id: random_id("ses_")?,
            user_id: user.id.clone(),
            client_id: self.config.client_id.clone(),
            created_at: now,
            last_used_at: now,
            absolute_expires_at: now.saturating_add(absolute),
            generation: 0,
            rotated_at: None,
            revoked_at: None,
            user_agent: client
                .user_agent
                .as_ref()
                .map(|s| s.chars().take(256).collect()),
            ip: client.ip.clone(),
            parent_id: None,
            offline: false,
            scope: None,
            amr: amr.to_owned(),
            auth_time: now,
        };
        self.store
            .create_session(&session, &token_hash(&refresh_token))
            .await?;
        audit!("login_ok", user_id = %user.id, session_id = %session.id, ip = client.ip.as_deref());
        self.pair(user, &session, refresh_token, now).await
    }

    /// A new access token for `session`, with its refresh token: a first-party token for
    /// a sign-in session, the relying party's token for a child session.
    async fn pair(
        &self,
        user: &UserRecord,
        session: &SessionRecord,
        refresh_token: String,
        now: i64,
    ) -> Result<TokenPair, DomainError> {
        self.pair_for(user, session, None, refresh_token, now).await
    }

    /// [`AuthService::pair`], with the relying party when the caller already holds its
    /// record (used only when it is the session's client; otherwise looked up).
    async fn pair_for(
        &self,
        user: &UserRecord,
        session: &SessionRecord,
        relying_party: Option<&ClientRecord>,
        refresh_token: String,
        now: i64,
    ) -> Result<TokenPair, DomainError> {
        let session_id = session.id.as_str();
        let (grant, format) = if session.parent_id.is_some() {
            let looked_up;
            let client = match relying_party.filter(|c| c.id == session.client_id) {
                Some(c) => c,
                None => {
                    looked_up = self
                        .store
                        .client(&session.client_id)
                        .await?
                        .ok_or(DomainError::InvalidGrant)?;
                    &looked_up
                }
            };
            (self.rp_grant(user, session, client), client.token_format)
        } else {
            let grant = tokens::Grant {
                sub: user.id.clone(),
                client_id: self.config.client_id.clone(),
                aud: vec![self.config.audience.clone()],
                scope: None,
                role: Some(user.role.clone()),
                sid: Some(session_id.to_owned()),
                authn: tokens::Grant::authn_of(session),
            };
            (grant, self.config.access_token_format)
        };
        let access_token = self.issue_access(grant, format, now).await?;
        Ok(TokenPair {
            access_token,
            expires_in: self.config.access_ttl.as_secs(),
            refresh_token,
            session_id: session_id.to_owned(),
        })
    }

    /// Exchanges a refresh token for a new pair in the same session.
    ///
    /// The current token rotates atomically. Its immediate predecessor may be exchanged again
    /// within the grace window and gets the same successor (derived by HMAC), so concurrent
    /// refreshes converge. Any other old token revokes the whole session.
    pub async fn refresh(
        &self,
        token: &str,
        client: &ClientInfo,
    ) -> Result<TokenPair, DomainError> {
        let result = self.refresh_inner(token, client).await;
        if matches!(result, Err(DomainError::InvalidGrant)) {
            self.metrics.refresh("invalid");
        }
        result
    }

    async fn refresh_inner(
        &self,
        token: &str,
        client: &ClientInfo,
    ) -> Result<TokenPair, DomainError> {
        let Some((record, session)) = self.refresh_lookup(token).await? else {
            return Err(DomainError::InvalidGrant);
        };
        self.rotate_found(token, record, session, None, client)
            .await
    }

    /// The record of a refresh token (also a predecessor's) and its session, or `None` for
    /// an unknown or malformed token. Nothing is changed.
    pub(crate) async fn refresh_lookup(
        &self,
        token: &str,
    ) -> Result<Option<(RefreshRecord, SessionRecord)>, DomainError> {
        if !looks_like_refresh_token(token) {
            return Ok(None);
        }
        let Some(record) = self.store.refresh_token(&token_hash(token)).await? else {
            return Ok(None);
        };
        let session = self.store.session(&record.session_id).await?;
        Ok(session.map(|s| (record, s)))
    }

    /// [`AuthService::refresh`] of a token whose record and session the caller has just
    /// read ([`AuthService::refresh_lookup`]), so that they are not read twice;
    /// `relying_party` is the authenticated client of the session, when the caller holds
    /// its record. The same checks and rotation as `refresh`.
    pub(crate) async fn refresh_found(
        &self,
        token: &str,
        record: RefreshRecord,
        session: SessionRecord,
        relying_party: Option<&ClientRecord>,
        client: &ClientInfo,
    ) -> Result<TokenPair, DomainError> {
        let result = self
            .rotate_found(token, record, session, relying_party, client)
            .await;
        if matches!(result, Err(DomainError::InvalidGrant)) {
            self.metrics.refresh("invalid");
        }
        result
    }

    async fn rotate_found(
        &self,
        token: &str,
        record: RefreshRecord,
        session: SessionRecord,
        relying_party: Option<&ClientRecord>,
        client: &ClientInfo,
    ) -> Result<TokenPair, DomainError> {
        let mut session = session;
        let now = self.now();
        let idle = wristband_jose::secs_i64(self.config.refresh_idle_ttl);
        let grace = i64::try_from(self.config.refresh_grace.as_secs()).unwrap_or(0);
        // Two rounds at most: a lost race for the rotation re-reads the session once.
        for _ in 0..2 {
            if session.revoked_at.is_some() {
                return Err(DomainError::InvalidGrant);
            }
            if now >= session.absolute_expires_at
                || now >= session.last_used_at.saturating_add(idle)
            {
                if self
                    .store
                    .revoke_session(&session.id, "expired", now)
                    .await?
                {
                    audit!("session_expired", user_id = %session.user_id, session_id = %session.id);
                }
                return Err(DomainError::InvalidGrant);
            }
            let user = match self.store.user_by_id(&session.user_id).await? {
                Some(u) if !u.disabled => u,
                _ => return Err(DomainError::InvalidGrant),
            };
            let successor = self.keys.successor(token);
            if record.generation == session.generation {
                if self
                    .store
                    .rotate(&session.id, record.generation, &token_hash(&successor), now)
                    .await?
                {
                    self.metrics.refresh("ok");
                    audit!("refresh_ok", user_id = %user.id, session_id = %session.id, ip = client.ip.as_deref());
                    return self
                        .pair_for(&user, &session, relying_party, successor, now)
                        .await;
                }
                // Someone else rotated it between our read and our write: look again.
                session = self
                    .store
                    .session(&record.session_id)
                    .await?
                    .ok_or(DomainError::InvalidGrant)?;
                continue;
            }
            let in_grace = record.generation + 1 == session.generation
                && session.rotated_at.is_some_and(|t| now - t < grace);
            if in_grace {
                self.store.touch_session(&session.id, now).await?;
                self.metrics.refresh("grace");
                audit!("refresh_grace", user_id = %user.id, session_id = %session.id, ip = client.ip.as_deref());
                return self
                    .pair_for(&user, &session, relying_party, successor, now)
                    .await;
            }
            revoke::revoke_session(
                &*self.store,
                self.record_lifetime(),
                &session.id,
                "refresh_reuse",
                now,
            )
            .await?;
            self.feed_changed();
            self.metrics.refresh("reuse");
            tracing::warn!(
                target: "wristband::audit",
                event = "refresh_token_reuse_detected",
                user_id = %session.user_id,
                session_id = %session.id,
                generation = record.generation,
                current_generation = session.generation,
                ip = client.ip.as_deref(),
            );
            return Err(DomainError::InvalidGrant);
        }
        Err(DomainError::InvalidGrant)
    }

    /// Self-service registration (only when enabled), limited per client address to
    /// `registrations_per_ip` attempts per throttle window.
    pub async fn register(
        &self,
        username: &str,
        password: SecretString,
        client: &ClientInfo,
    ) -> Result<UserRecord, DomainError> {
        if !self.config.allow_registration {
            return Err(DomainError::NotFound);
        }
        let now = self.now();
        if let Err(e) = throttle::registration(self, client.ip.as_deref(), now).await {
            audit!("registration_limited", ip = client.ip.as_deref());
            return Err(e);
        }
        let user = users::add_user(
            &*self.store,
            &self.passwords,
            username,
            password,
            "user",
            now,
        )
        .await?;
        Ok(user)
    }
}
