//! Second factors: a TOTP authenticator, recovery codes, and the second step of a sign-in.
//!
//! A user with a confirmed authenticator who gives the right password gets no tokens yet:
//! [`AuthService::login_device`] answers [`DomainError::MfaRequired`] with a short-lived,
//! single-use `mfa_token`, which [`AuthService::login_mfa`] takes with a code. Wrong codes
//! are throttled per user and per address like passwords (the `throttle` module), and a
//! second step dies after [`MAX_CODE_FAILURES`] wrong codes.
//!
//! The session that a sign-in starts records how the user signed in (RFC 8176 `amr`
//! values) and when, and every token of the session carries them with the `acr` they
//! reach ([`acr_of`]).
//!
//! TOTP secrets are sealed with the factor key (see [`super::KeyManager`]), which is
//! derived from a secret sealed under the master key: they are at rest under the master
//! key, and a new master key needs no pass over them.

use std::fmt;

use wristband_jose::authn::{ACR_MFA, ACR_PHR, ACR_PWD};
use zeroize::Zeroizing;

use super::totp::Totp;
use super::{audit, throttle, token_hash, AuthService, ClientInfo, DeviceLogin, DomainError};
use super::{Principal, UserRecord};
use crate::store::MfaTokenRecord;

/// How long the second step of a sign-in waits for its code.
pub const MFA_TOKEN_TTL_SECS: i64 = 300;
/// Wrong codes one second step takes before it is refused for good.
pub const MAX_CODE_FAILURES: i64 = 5;
/// Recovery codes in a set.
pub const RECOVERY_CODE_COUNT: usize = 10;
/// The name of a TOTP second step, in `methods` and requests.
pub const METHOD_TOTP: &str = "totp";
/// The name of a recovery-code second step.
pub const METHOD_RECOVERY: &str = "recovery";
/// The name of a passkey second step.
pub const METHOD_WEBAUTHN: &str = "webauthn";

/// `mfa_token`s start with this, so that one is never taken for another kind of token.
const MFA_TOKEN_PREFIX: &str = "wbm_";
/// The alphabet of recovery codes: lower-case base32 without look-alikes' ambiguity
/// (RFC 4648's set has no 0, 1 or 8).
const RECOVERY_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// The `acr` that a set of RFC 8176 methods reaches: `phr` for a passkey (`hwk`/`swk`),
/// `mfa` for a second factor (`mfa`), `pwd` otherwise.
pub fn acr_of(amr: &[&str]) -> &'static str {
    if amr.iter().any(|m| *m == "hwk" || *m == "swk") {
        ACR_PHR
    } else if amr.contains(&"mfa") {
        ACR_MFA
    } else {
        ACR_PWD
    }
}

/// What the client needs for the second step of a sign-in. Redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct MfaChallenge {
    /// The single-use token that names this second step.
    pub mfa_token: String,
    /// The methods the user can finish with: `totp`, `recovery`.
    pub methods: Vec<&'static str>,
    /// Seconds the token lives.
    pub expires_in: i64,
    /// The user has no factor but their role needs one: the second step enrols an
    /// authenticator ([`AuthService::begin_totp_for_login`]) and takes its first code.
    pub enrol: bool,
}

impl fmt::Debug for MfaChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MfaChallenge")
            .field("methods", &self.methods)
            .field("expires_in", &self.expires_in)
            .field("enrol", &self.enrol)
            .finish_non_exhaustive()
    }
}

/// The second factor a client offers.
pub enum SecondFactor {
    /// A code from the TOTP authenticator.
    Totp(Zeroizing<String>),
    /// One of the recovery codes.
    Recovery(Zeroizing<String>),
    /// A passkey's assertion for the ceremony `challenge_id`
    /// ([`AuthService::begin_passkey_second_factor`]).
    Passkey {
        /// The ceremony's handle.
        challenge_id: String,
        /// What `navigator.credentials.get()` returned.
        credential: Box<webauthn_rs::prelude::PublicKeyCredential>,
    },
}

impl SecondFactor {
    /// The factor of a request's `method` and `code`; `None` for an unknown method.
    pub fn parse(method: &str, code: String) -> Option<Self> {
        let code = Zeroizing::new(code);
        match method {
            METHOD_TOTP => Some(SecondFactor::Totp(code)),
            METHOD_RECOVERY => Some(SecondFactor::Recovery(code)),
            _ => None,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            SecondFactor::Totp(_) => METHOD_TOTP,
            SecondFactor::Recovery(_) => METHOD_RECOVERY,
            SecondFactor::Passkey { .. } => METHOD_WEBAUTHN,
        }
    }
}

/// A second factor that was right.
struct Checked {
    /// What it adds to `amr` (RFC 8176).
    amr: &'static str,
    /// With a recovery code: the unused codes left.
    recovery_codes_left: Option<i64>,
}

/// A sign-in finished with a second factor.
#[derive(Debug)]
pub struct MfaLogin {
    /// The tokens and the device token.
    pub login: DeviceLogin,
    /// With a recovery code: how many unused codes are left.
    pub recovery_codes_left: Option<i64>,
}

/// A new TOTP authenticator, waiting for its first code. Redacted in `Debug`.
pub struct TotpEnrolment {
    /// The secret in base32, for typing into an app.
    pub secret: Zeroizing<String>,
    /// The `otpauth://` URI, for a QR code.
    pub otpauth_uri: Zeroizing<String>,
}

impl fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpEnrolment([redacted])")
    }
}

/// A user's second factors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaStatus {
    /// A confirmed TOTP authenticator.
    pub totp: bool,
    /// An enrolment waiting for its first code.
    pub totp_pending: bool,
    /// When the authenticator was confirmed.
    pub totp_confirmed_at: Option<i64>,
    /// Unused recovery codes.
    pub recovery_codes_left: i64,
    /// Registered passkeys.
    pub passkeys: usize,
}

impl MfaStatus {
    /// True when the user has a second factor: a confirmed authenticator or a passkey.
    pub fn has_factor(&self) -> bool {
        self.totp || self.passkeys > 0
    }

    /// The methods a second step can use, strongest first.
    pub fn methods(&self) -> Vec<&'static str> {
        let mut methods = Vec::new();
        if self.passkeys > 0 {
            methods.push(METHOD_WEBAUTHN);
        }
        if self.totp {
            methods.push(METHOD_TOTP);
        }
        if self.has_factor() && self.recovery_codes_left > 0 {
            methods.push(METHOD_RECOVERY);
        }
        methods
    }
}

fn mfa_token_looks_right(token: &str) -> bool {
    token.strip_prefix(MFA_TOKEN_PREFIX).is_some_and(|rest| {
        rest.len() == 43
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// A recovery code as stored: its letters only, lower case.
fn normalise_recovery(code: &str) -> Zeroizing<String> {
    Zeroizing::new(
        code.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect(),
    )
}

/// A new recovery code: 10 characters of [`RECOVERY_ALPHABET`] (50 bits), shown as
/// `xxxxx-xxxxx`.
fn new_recovery_code() -> Result<Zeroizing<String>, DomainError> {
    let mut bytes = Zeroizing::new([0u8; 10]);
    aws_lc_rs::rand::fill(bytes.as_mut())
        .map_err(|e| DomainError::internal_because("random bytes", e))?;
    let mut code = Zeroizing::new(String::with_capacity(11));
    for (i, b) in bytes.iter().enumerate() {
        if i == 5 {
            code.push('-');
        }
        code.push(char::from(RECOVERY_ALPHABET[usize::from(b & 31)]));
    }
    Ok(code)
}

/// The context a user's TOTP secret is sealed under: the secret of one user cannot be
/// moved to another's row.
fn totp_context(user_id: &str) -> String {
    format!("totp:{user_id}")
}

impl AuthService {
    /// A user's second factors.
    pub async fn mfa_status(&self, user_id: &str) -> Result<MfaStatus, DomainError> {
        status(&*self.store, user_id).await
    }

    /// After a right password: `None` when the user has no second factor, otherwise the
    /// second step, stored.
    pub(super) async fn second_step(
        &self,
        user: &UserRecord,
        now: i64,
    ) -> Result<Option<MfaChallenge>, DomainError> {
        let mut methods = self.mfa_status(&user.id).await?.methods();
        let enrol = methods.is_empty() && self.config.require_mfa_for_roles.contains(&user.role);
        if enrol {
            methods.push(METHOD_TOTP);
        }
        if methods.is_empty() {
            return Ok(None);
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        aws_lc_rs::rand::fill(bytes.as_mut())
            .map_err(|e| DomainError::internal_because("random bytes", e))?;
        let token = format!(
            "{MFA_TOKEN_PREFIX}{}",
            wristband_jose::b64::encode(bytes.as_ref())
        );
        let record = MfaTokenRecord {
            user_id: user.id.clone(),
            amr: "pwd".to_owned(),
            created_at: now,
            expires_at: now.saturating_add(MFA_TOKEN_TTL_SECS),
            failures: 0,
            enrol,
            used_at: None,
        };
        self.store
            .put_mfa_token(&token_hash(&token), &record)
            .await?;
        Ok(Some(MfaChallenge {
            mfa_token: token,
            methods,
            expires_in: MFA_TOKEN_TTL_SECS,
            enrol,
        }))
    }

    /// The second step of a sign-in: the `mfa_token` of the first and a second factor.
    /// An unknown, finished, expired or exhausted token is [`DomainError::InvalidMfaToken`];
    /// a wrong code [`DomainError::InvalidCode`], counted against the token and the
    /// throttle; success starts the session, its tokens saying `mfa`.
    pub async fn login_mfa(
        &self,
        mfa_token: &str,
        factor: SecondFactor,
        client: &ClientInfo,
    ) -> Result<MfaLogin, DomainError> {
        let now = self.now();
        let (hash, step, user) = self.live_second_step(mfa_token, now).await?;
        let mut throttle = throttle::Keys::second_factor(&user.id, client.ip.as_deref());
        if let Some(retry_after) = throttle.blocked(self, now).await? {
            audit!("mfa_throttled", user_id = %user.id, ip = client.ip.as_deref(), retry_after);
            return Err(DomainError::Throttled { retry_after });
        }
        let method = factor.name();
        if step.enrol && !matches!(factor, SecondFactor::Totp(_)) {
            return Err(DomainError::InvalidCode);
        }
        let checked = self
            .check_factor(&user, &factor, step.enrol, Some(&hash), client, now)
            .await?;
        let Some(Checked {
            amr: factor_amr,
            recovery_codes_left,
        }) = checked
        else {
            let failures = self.store.fail_mfa_token(&hash).await?;
            throttle.record_failure(self, now).await?;
            audit!("mfa_failed", user_id = %user.id, ip = client.ip.as_deref(), method, failures);
            return Err(DomainError::InvalidCode);
        };
        if !self
            .store
            .finish_mfa_token(&hash, now, MAX_CODE_FAILURES)
            .await?
        {
            return Err(DomainError::InvalidMfaToken);
        }
        throttle.clear_on_success(self).await?;
        if let Some(left) = recovery_codes_left {
            audit!("recovery_code_used", user_id = %user.id, ip = client.ip.as_deref(), left);
        }
        let amr = format!("{} {factor_amr} mfa", step.amr);
        let login = self.begin_session(&user, client, now, &amr).await?;
        audit!("mfa_ok", user_id = %user.id, session_id = %login.pair.session_id, method);
        Ok(MfaLogin {
            login,
            recovery_codes_left,
        })
    }

    /// The live second step of `mfa_token` (its hash, record and user) at `now`: unused,
    /// unexpired, with fewer than [`MAX_CODE_FAILURES`] wrong codes, of a user who is not
    /// disabled. [`DomainError::InvalidMfaToken`] otherwise.
    pub(super) async fn live_second_step(
        &self,
        mfa_token: &str,
        now: i64,
    ) -> Result<(Vec<u8>, MfaTokenRecord, UserRecord), DomainError> {
        if !mfa_token_looks_right(mfa_token) {
            return Err(DomainError::InvalidMfaToken);
        }
        let hash = token_hash(mfa_token);
        let step = match self.store.mfa_token(&hash).await? {
            Some(t)
                if t.used_at.is_none() && t.expires_at > now && t.failures < MAX_CODE_FAILURES =>
            {
                t
            }
            _ => return Err(DomainError::InvalidMfaToken),
        };
        match self.store.user_by_id(&step.user_id).await? {
            Some(u) if !u.disabled => Ok((hash, step, u)),
            _ => Err(DomainError::InvalidMfaToken),
        }
    }

    /// Checks a second factor and spends it (a TOTP step, a recovery code, a passkey
    /// ceremony). `None` when it is wrong or spent. `enrolling`: an authenticator not
    /// confirmed yet counts (its first code confirms it). A passkey counts only as the
    /// second step `step_hash` of a sign-in.
    async fn check_factor(
        &self,
        user: &UserRecord,
        factor: &SecondFactor,
        enrolling: bool,
        step_hash: Option<&[u8]>,
        client: &ClientInfo,
        now: i64,
    ) -> Result<Option<Checked>, DomainError> {
        let user_id = user.id.as_str();
        let passed = |amr| Checked {
            amr,
            recovery_codes_left: None,
        };
        match factor {
            SecondFactor::Passkey {
                challenge_id,
                credential,
            } => {
                let Some(step_hash) = step_hash else {
                    return Ok(None);
                };
                let amr = self
                    .check_passkey_factor(user, step_hash, challenge_id, credential, client, now)
                    .await?;
                Ok(amr.map(passed))
            }
            SecondFactor::Totp(code) => {
                let Some(record) = self.store.totp(user_id).await? else {
                    return Ok(None);
                };
                if record.confirmed_at.is_none() && !enrolling {
                    return Ok(None);
                }
                let totp = self.open_totp(user_id, &record.secret)?;
                let last = record.last_step.and_then(|s| u64::try_from(s).ok());
                let Some(step) = totp.verify(code.trim(), now, last) else {
                    return Ok(None);
                };
                let step = i64::try_from(step).unwrap_or(i64::MAX);
                Ok(self
                    .store
                    .use_totp_step(user_id, step, now)
                    .await?
                    .then(|| passed("otp")))
            }
            SecondFactor::Recovery(code) => {
                let code = normalise_recovery(code);
                if code.len() != 10 {
                    return Ok(None);
                }
                let left = self
                    .store
                    .use_recovery_code(user_id, &token_hash(&code), now)
                    .await?;
                // A recovery code is a one-time secret too (RFC 8176 `otp`).
                Ok(left.map(|left| Checked {
                    amr: "otp",
                    recovery_codes_left: Some(left),
                }))
            }
        }
    }

    /// The name authenticator apps show for this service: the issuer's host.
    fn totp_issuer(&self) -> String {
        url::Url::parse(&self.issuer)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "Wristband".to_owned())
    }

    fn open_totp(&self, user_id: &str, sealed: &[u8]) -> Result<Totp, DomainError> {
        let secret = self
            .keys
            .factor_key()
            .open(&totp_context(user_id), sealed)
            .map_err(|e| DomainError::internal_because("opening a TOTP secret", e))?;
        Ok(Totp::new(secret.to_vec(), super::totp::Settings::STANDARD))
    }

    /// Starts a TOTP enrolment for the caller's user (again, while it is not confirmed):
    /// the secret, to be confirmed by a first code. [`DomainError::Conflict`] when the
    /// user has a confirmed authenticator already.
    pub async fn begin_totp(&self, caller: &Principal) -> Result<TotpEnrolment, DomainError> {
        let user = self.me(caller).await?;
        self.begin_totp_for(&user).await
    }

    /// Starts the TOTP enrolment of a sign-in whose second step enrols one (the user's
    /// role needs a factor, see [`MfaChallenge::enrol`]); the step's code then confirms
    /// it. [`DomainError::InvalidMfaToken`] for any other `mfa_token`.
    pub async fn begin_totp_for_login(
        &self,
        mfa_token: &str,
    ) -> Result<TotpEnrolment, DomainError> {
        let user = self.enrolling_user(mfa_token).await?;
        self.begin_totp_for(&user).await
    }

    /// The user of a live second step that enrols an authenticator;
    /// [`DomainError::InvalidMfaToken`] for any other `mfa_token`.
    async fn enrolling_user(&self, mfa_token: &str) -> Result<UserRecord, DomainError> {
        let (_, step, user) = self.live_second_step(mfa_token, self.now()).await?;
        if !step.enrol {
            return Err(DomainError::InvalidMfaToken);
        }
        Ok(user)
    }

    /// What the user sees of an authenticator being enrolled.
    fn enrolment(&self, user: &UserRecord, totp: &Totp) -> TotpEnrolment {
        TotpEnrolment {
            secret: totp.secret_base32(),
            otpauth_uri: totp.otpauth_uri(&self.totp_issuer(), &user.username),
        }
    }

    async fn begin_totp_for(&self, user: &UserRecord) -> Result<TotpEnrolment, DomainError> {
        let totp = Totp::generate()?;
        let sealed = self
            .keys
            .factor_key()
            .seal(&totp_context(&user.id), totp.secret())?;
        if !self.store.begin_totp(&user.id, &sealed, self.now()).await? {
            return Err(DomainError::Conflict);
        }
        audit!("mfa_totp_enrolment_started", user_id = %user.id);
        Ok(self.enrolment(user, &totp))
    }

    /// The caller's enrolment waiting for its first code, shown again (the enrolment page
    /// after a wrong code). [`DomainError::NotFound`] when there is none.
    pub async fn pending_totp(&self, caller: &Principal) -> Result<TotpEnrolment, DomainError> {
        let user = self.me(caller).await?;
        self.pending_totp_of(&user).await
    }

    /// The enrolment of a sign-in that enrols an authenticator, shown again (after a
    /// wrong first code). [`DomainError::InvalidMfaToken`] for any other `mfa_token`,
    /// [`DomainError::NotFound`] when the enrolment was not started.
    pub async fn pending_totp_for_login(
        &self,
        mfa_token: &str,
    ) -> Result<TotpEnrolment, DomainError> {
        let user = self.enrolling_user(mfa_token).await?;
        self.pending_totp_of(&user).await
    }

    async fn pending_totp_of(&self, user: &UserRecord) -> Result<TotpEnrolment, DomainError> {
        let record = match self.store.totp(&user.id).await? {
            Some(r) if r.confirmed_at.is_none() => r,
            _ => return Err(DomainError::NotFound),
        };
        let totp = self.open_totp(&user.id, &record.secret)?;
        Ok(self.enrolment(user, &totp))
    }

    /// Confirms the caller's TOTP enrolment with a first code: from now on the user signs
    /// in with a second factor. [`DomainError::NotFound`] without an enrolment,
    /// [`DomainError::Conflict`] when it is confirmed already, [`DomainError::InvalidCode`]
    /// for a wrong code. The recovery codes come next
    /// ([`AuthService::regenerate_recovery_codes`]).
    pub async fn confirm_totp(&self, caller: &Principal, code: &str) -> Result<(), DomainError> {
        let user = self.me(caller).await?;
        let now = self.now();
        let record = self
            .store
            .totp(&user.id)
            .await?
            .ok_or(DomainError::NotFound)?;
        if record.confirmed_at.is_some() {
            return Err(DomainError::Conflict);
        }
        let totp = self.open_totp(&user.id, &record.secret)?;
        let last = record.last_step.and_then(|s| u64::try_from(s).ok());
        let step = totp
            .verify(code.trim(), now, last)
            .and_then(|s| i64::try_from(s).ok())
            .ok_or(DomainError::InvalidCode)?;
        if !self.store.use_totp_step(&user.id, step, now).await? {
            return Err(DomainError::InvalidCode);
        }
        audit!("mfa_totp_enrolled", user_id = %user.id);
        Ok(())
    }

    /// A new set of recovery codes for the caller (the old ones stop working), shown once:
    /// right after the authenticator is confirmed, and whenever the user wants a new set.
    /// [`DomainError::NotFound`] without a confirmed authenticator.
    pub async fn regenerate_recovery_codes(
        &self,
        caller: &Principal,
    ) -> Result<Vec<Zeroizing<String>>, DomainError> {
        let user = self.me(caller).await?;
        if !self.mfa_status(&user.id).await?.has_factor() {
            return Err(DomainError::NotFound);
        }
        self.replace_recovery_codes(&user.id, self.now()).await
    }

    async fn replace_recovery_codes(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<Zeroizing<String>>, DomainError> {
        let codes = (0..RECOVERY_CODE_COUNT)
            .map(|_| new_recovery_code())
            .collect::<Result<Vec<_>, _>>()?;
        let hashes: Vec<Vec<u8>> = codes
            .iter()
            .map(|c| token_hash(&normalise_recovery(c)))
            .collect();
        self.store
            .replace_recovery_codes(user_id, &hashes, now)
            .await?;
        audit!("recovery_codes_issued", user_id = %user_id, count = codes.len());
        Ok(codes)
    }

    /// Removes the caller's TOTP authenticator and recovery codes. Needs a fresh second
    /// factor: a current TOTP code or a recovery code, checked and throttled like a
    /// sign-in's second step.
    pub async fn remove_totp(
        &self,
        caller: &Principal,
        proof: SecondFactor,
        client: &ClientInfo,
    ) -> Result<(), DomainError> {
        let user = self.me(caller).await?;
        let now = self.now();
        if !self.mfa_status(&user.id).await?.totp {
            return Err(DomainError::NotFound);
        }
        let mut throttle = throttle::Keys::second_factor(&user.id, client.ip.as_deref());
        if let Some(retry_after) = throttle.blocked(self, now).await? {
            return Err(DomainError::Throttled { retry_after });
        }
        if self
            .check_factor(&user, &proof, false, None, client, now)
            .await?
            .is_none()
        {
            throttle.record_failure(self, now).await?;
            audit!("mfa_removal_refused", user_id = %user.id, ip = client.ip.as_deref());
            return Err(DomainError::InvalidCode);
        }
        throttle.clear_on_success(self).await?;
        self.store.remove_totp(&user.id).await?;
        if self.store.passkeys(&user.id).await?.is_empty() {
            // No factor left: the recovery codes go too.
            self.store
                .replace_recovery_codes(&user.id, &[], now)
                .await?;
        }
        audit!("mfa_totp_removed", user_id = %user.id, ip = client.ip.as_deref());
        Ok(())
    }
}

/// A user's second factors.
pub async fn status(
    store: &dyn crate::store::Store,
    user_id: &str,
) -> Result<MfaStatus, DomainError> {
    let totp = store.totp(user_id).await?;
    let confirmed_at = totp.as_ref().and_then(|t| t.confirmed_at);
    let passkeys = store.passkeys(user_id).await?.len();
    let recovery_codes_left = if confirmed_at.is_some() || passkeys > 0 {
        store.recovery_codes_left(user_id).await?
    } else {
        0
    };
    Ok(MfaStatus {
        totp: confirmed_at.is_some(),
        totp_pending: totp.is_some() && confirmed_at.is_none(),
        totp_confirmed_at: confirmed_at,
        recovery_codes_left,
        passkeys,
    })
}

/// Removes every second factor of a user (an administrator's reset, for a lost phone) and
/// ends all their sessions.
pub async fn reset(
    store: &dyn crate::store::Store,
    life: super::RecordLifetime,
    username: &str,
    now: super::revoke::Millis,
) -> Result<(UserRecord, u64), DomainError> {
    let user = super::users::find(store, username).await?;
    let gone = store.reset_mfa(&user.id).await?;
    super::revoke::revoke_subject(store, life, &user.id, "mfa_reset", now).await?;
    audit!("mfa_reset", user_id = %user.id, rows = gone);
    Ok((user, gone))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acr_follows_the_strongest_method() {
        assert_eq!(acr_of(&["pwd"]), ACR_PWD);
        assert_eq!(acr_of(&["pwd", "otp", "mfa"]), ACR_MFA);
        assert_eq!(acr_of(&["hwk", "user"]), ACR_PHR);
        assert_eq!(acr_of(&["pwd", "swk", "mfa"]), ACR_PHR);
        assert_eq!(acr_of(&[]), ACR_PWD);
    }

    #[test]
    fn recovery_codes_are_ten_letters_and_normalise() {
        let code = new_recovery_code().unwrap();
        assert_eq!(code.len(), 11);
        assert_eq!(code.as_bytes()[5], b'-');
        assert!(code
            .bytes()
            .all(|b| b == b'-' || RECOVERY_ALPHABET.contains(&b)));
        let spaced = code.to_ascii_uppercase().replace('-', " ");
        assert_eq!(*normalise_recovery(&spaced), code.replace('-', ""));
        assert_ne!(*new_recovery_code().unwrap(), *code);
    }

    #[test]
    fn mfa_tokens_have_one_shape() {
        let good = format!("{MFA_TOKEN_PREFIX}{}", "a".repeat(43));
        assert!(mfa_token_looks_right(&good));
        assert!(!mfa_token_looks_right(&"a".repeat(47)));
        assert!(!mfa_token_looks_right(&format!("{good}a")));
        assert!(!mfa_token_looks_right(&good.replace('a', "%")));
    }

    #[test]
    fn only_a_confirmed_authenticator_offers_methods() {
        let mut s = MfaStatus {
            totp: false,
            totp_pending: true,
            totp_confirmed_at: None,
            recovery_codes_left: 3,
            passkeys: 0,
        };
        assert!(s.methods().is_empty());
        s.totp = true;
        assert_eq!(s.methods(), vec![METHOD_TOTP, METHOD_RECOVERY]);
        s.recovery_codes_left = 0;
        assert_eq!(s.methods(), vec![METHOD_TOTP]);
        s.passkeys = 2;
        s.totp = false;
        assert_eq!(s.methods(), vec![METHOD_WEBAUTHN]);
    }
}
