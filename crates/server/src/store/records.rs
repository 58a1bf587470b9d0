//! The records the store keeps and returns: one type per table (users, sessions and their
//! refresh tokens, throttling, revocations, clients, OpenID Connect codes and consents,
//! opaque tokens, signing keys, back-channel deliveries, second factors and passkeys).

use wristband_jose::Algorithm;

use super::{StoreError, StoreResult};
use crate::config::TokenFormat;

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

/// One conditional state change of a signing key, applied by [`Store::change_keys`](super::Store::change_keys).
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
