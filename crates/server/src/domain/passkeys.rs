//! Passkeys (WebAuthn, through `webauthn-rs`): registration from the account, several per
//! user with a name; passwordless sign-in with a discoverable credential; a passkey as the
//! second step after a password.
//!
//! The relying party is the public URL: its host is the RP id, its origin the only origin
//! accepted (a page served from any other origin, another port included, is refused).
//! Ceremonies are stored ([`Store::put_challenge`]) so that any instance can finish one:
//! single use, five minutes, and bound to what asked for them (the session that registers,
//! the second step that authenticates).
//!
//! **Signature counters.** A passkey whose authenticator keeps a counter must present a
//! higher one on every use: an equal or lower counter (two copies of one key in use, a
//! cloned authenticator) is refused, audited as `passkey_counter_regression`, and the
//! stored counter is kept. Synced passkeys report 0 every time; they have no counter to
//! check and are refused nothing on that ground.
//!
//! [`Store::put_challenge`]: crate::store::Store::put_challenge

use aws_lc_rs::digest;
use serde_json::Value;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn,
    WebauthnBuilder, WebauthnError,
};

use super::UserRecord;
use super::{audit, random_id, AuthService, ClientInfo, DeviceLogin, DomainError, Principal};
use crate::store::{ChallengeRecord, PasskeyRecord};

/// How long a ceremony waits for the authenticator.
pub const CEREMONY_TTL_SECS: i64 = 300;
/// The longest passkey name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Passkeys one user may register.
pub const MAX_PASSKEYS: usize = 20;

const REGISTER: &str = "register";
const AUTHENTICATE: &str = "authenticate";
const DISCOVER: &str = "discover";

/// The relying party of the public URL: `None` (passkeys off) when its host cannot be one
/// (an IP address: use a name, `localhost` included).
pub(super) fn relying_party(public_origin: &str) -> Option<Webauthn> {
    let origin = Url::parse(public_origin).ok()?;
    // A relying party id is a domain name: browsers refuse IP addresses.
    let host = origin.domain()?.to_owned();
    WebauthnBuilder::new(&host, &origin)
        .ok()?
        .rp_name("Wristband")
        .build()
        .ok()
}

/// A ceremony for the browser: the handle to give back and the options for
/// `navigator.credentials.create()` or `.get()` (WebAuthn's JSON form).
#[derive(Debug, Clone)]
pub struct Ceremony {
    /// The handle of the stored ceremony.
    pub challenge_id: String,
    /// `{"publicKey": {...}}`.
    pub options: Value,
}

/// The user handle of a user: stable, opaque, and no personal data (a hash of the id).
fn user_handle(user_id: &str) -> Uuid {
    let d = digest::digest(
        &digest::SHA256,
        format!("wristband user handle:{user_id}").as_bytes(),
    );
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&d.as_ref()[..16]);
    Uuid::from_bytes(bytes)
}

/// What a passkey adds to `amr` (RFC 8176): `hwk` for a key bound to its device, `swk` for
/// a synced one; user verification was required, so it is multi-factor too.
fn passkey_amr(backup_eligible: bool) -> &'static str {
    if backup_eligible {
        "swk mfa"
    } else {
        "hwk mfa"
    }
}

/// A passkey name as the user typed it: trimmed, 1 to [`MAX_NAME_CHARS`] characters, no
/// control characters.
fn check_name(name: &str) -> Result<String, DomainError> {
    let name = name.trim();
    let count = name.chars().count();
    if count == 0 || count > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(DomainError::invalid(format!(
            "a passkey name is 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    Ok(name.to_owned())
}

fn state_json<T: serde::Serialize>(state: &T) -> Result<String, DomainError> {
    serde_json::to_string(state).map_err(|e| DomainError::internal_because("WebAuthn state", e))
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, DomainError> {
    serde_json::from_str(text).map_err(|e| DomainError::internal_because(what.to_owned(), e))
}

fn options_json<T: serde::Serialize>(options: &T) -> Result<Value, DomainError> {
    serde_json::to_value(options).map_err(|e| DomainError::internal_because("WebAuthn options", e))
}

impl AuthService {
    /// True when passkeys can be used: the public URL's host can be a relying party.
    pub fn passkeys_enabled(&self) -> bool {
        self.webauthn.is_some()
    }

    fn relying(&self) -> Result<&Webauthn, DomainError> {
        self.webauthn.as_ref().ok_or_else(|| {
            DomainError::invalid("passkeys need a public URL whose host is a domain name")
        })
    }

    async fn put_ceremony(
        &self,
        kind: &str,
        binding: &str,
        user_id: Option<&str>,
        state: String,
        options: Value,
    ) -> Result<Ceremony, DomainError> {
        let now = self.now();
        let record = ChallengeRecord {
            id: random_id("wac_")?,
            kind: kind.to_owned(),
            binding: binding.to_owned(),
            user_id: user_id.map(str::to_owned),
            state,
            created_at: now,
            expires_at: now.saturating_add(CEREMONY_TTL_SECS),
            used_at: None,
        };
        self.store.put_challenge(&record).await?;
        Ok(Ceremony {
            challenge_id: record.id,
            options,
        })
    }

    /// The caller's passkeys, oldest first.
    pub async fn passkeys(&self, caller: &Principal) -> Result<Vec<PasskeyRecord>, DomainError> {
        let user = self.me(caller).await?;
        Ok(self.store.passkeys(&user.id).await?)
    }

    /// Starts registering a passkey for the caller's user, bound to the caller's session.
    /// The options ask for a discoverable credential (for passwordless sign-in) with user
    /// verification, and exclude the user's other passkeys.
    pub async fn begin_passkey_registration(
        &self,
        caller: &Principal,
    ) -> Result<Ceremony, DomainError> {
        let (_, sid) = caller.user_session()?;
        let user = self.me(caller).await?;
        let existing = self.store.passkeys(&user.id).await?;
        if existing.len() >= MAX_PASSKEYS {
            return Err(DomainError::invalid(format!(
                "a user has at most {MAX_PASSKEYS} passkeys"
            )));
        }
        let exclude = existing
            .iter()
            .map(|p| {
                from_json::<Passkey>(&p.passkey, "stored passkey").map(|k| k.cred_id().clone())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (ccr, state) = self
            .relying()?
            .start_passkey_registration(
                user_handle(&user.id),
                &user.username,
                &user.username,
                Some(exclude),
            )
            .map_err(|e| DomainError::internal_because("starting a passkey registration", e))?;
        let mut options = options_json(&ccr)?;
        // A discoverable credential: the passkey can sign in without a user name.
        if let Some(sel) = options.pointer_mut("/publicKey/authenticatorSelection") {
            sel["residentKey"] = Value::from("required");
            sel["requireResidentKey"] = Value::from(true);
        }
        self.put_ceremony(REGISTER, sid, Some(&user.id), state_json(&state)?, options)
            .await
    }

    /// Finishes a registration begun by this session: the passkey is stored under `name`.
    /// A ceremony that is unknown, spent, expired or another session's, or a credential
    /// the library refuses (wrong origin, wrong challenge, no user verification), is
    /// [`DomainError::PasskeyRefused`].
    pub async fn finish_passkey_registration(
        &self,
        caller: &Principal,
        challenge_id: &str,
        name: &str,
        credential: &RegisterPublicKeyCredential,
    ) -> Result<PasskeyRecord, DomainError> {
        let name = check_name(name)?;
        let (_, sid) = caller.user_session()?;
        let user = self.me(caller).await?;
        let now = self.now();
        let Some(ceremony) = self
            .store
            .take_challenge(challenge_id, REGISTER, sid, now)
            .await?
        else {
            return Err(DomainError::PasskeyRefused);
        };
        if ceremony.user_id.as_deref() != Some(user.id.as_str()) {
            return Err(DomainError::PasskeyRefused);
        }
        let state: PasskeyRegistration = from_json(&ceremony.state, "registration state")?;
        let passkey = match self
            .relying()?
            .finish_passkey_registration(credential, &state)
        {
            Ok(p) => p,
            Err(e) => {
                audit!("passkey_registration_refused", user_id = %user.id, reason = %e);
                return Err(DomainError::PasskeyRefused);
            }
        };
        let record = PasskeyRecord {
            id: wristband_jose::b64::encode(passkey.cred_id().as_ref()),
            user_id: user.id.clone(),
            name,
            passkey: state_json(&passkey)?,
            created_at: now,
            last_used_at: None,
        };
        self.store.add_passkey(&record).await?;
        audit!("passkey_registered", user_id = %user.id, passkey_id = %record.id);
        Ok(record)
    }

    /// Removes one of the caller's passkeys. [`DomainError::NotFound`] when the caller has
    /// no such passkey.
    pub async fn remove_passkey(&self, caller: &Principal, id: &str) -> Result<(), DomainError> {
        let user = self.me(caller).await?;
        if !self.store.remove_passkey(&user.id, id).await? {
            return Err(DomainError::NotFound);
        }
        audit!("passkey_removed", user_id = %user.id, passkey_id = %id);
        Ok(())
    }

    /// Starts a passwordless sign-in: the browser offers the passkeys it holds for this
    /// relying party.
    pub async fn begin_passkey_sign_in(&self) -> Result<Ceremony, DomainError> {
        let (rcr, state) = self
            .relying()?
            .start_discoverable_authentication()
            .map_err(|e| DomainError::internal_because("starting a passkey sign-in", e))?;
        let mut options = options_json(&rcr)?;
        // A button, not the autofill list: no conditional mediation.
        if let Some(o) = options.as_object_mut() {
            o.remove("mediation");
        }
        self.put_ceremony(DISCOVER, "", None, state_json(&state)?, options)
            .await
    }

    /// Finishes a passwordless sign-in: the session's tokens say `hwk` (or `swk`) and
    /// `mfa`, so `acr` is phishing-resistant. Any failure is
    /// [`DomainError::PasskeyRefused`].
    pub async fn finish_passkey_sign_in(
        &self,
        challenge_id: &str,
        credential: &PublicKeyCredential,
        client: &ClientInfo,
    ) -> Result<DeviceLogin, DomainError> {
        let now = self.now();
        let Some(ceremony) = self
            .store
            .take_challenge(challenge_id, DISCOVER, "", now)
            .await?
        else {
            return Err(DomainError::PasskeyRefused);
        };
        let relying = self.relying()?;
        let (handle, cred_id) = relying
            .identify_discoverable_authentication(credential)
            .map_err(|_| DomainError::PasskeyRefused)?;
        let id = wristband_jose::b64::encode(cred_id);
        let Some(stored) = self.store.passkey(&id).await? else {
            audit!(
                "passkey_sign_in_refused",
                reason = "unknown passkey",
                ip = client.ip.as_deref()
            );
            return Err(DomainError::PasskeyRefused);
        };
        let user = match self.store.user_by_id(&stored.user_id).await? {
            Some(u) if !u.disabled && user_handle(&u.id) == handle => u,
            _ => return Err(DomainError::PasskeyRefused),
        };
        let state: DiscoverableAuthentication = from_json(&ceremony.state, "sign-in state")?;
        let mut passkey: Passkey = from_json(&stored.passkey, "stored passkey")?;
        let key: DiscoverableKey = (&passkey).into();
        let result = relying.finish_discoverable_authentication(credential, state, &[key]);
        let backup_eligible = self
            .passkey_result(&user, &stored, &mut passkey, result, client, now)
            .await?;
        let amr = passkey_amr(backup_eligible);
        let login = self.begin_session(&user, client, now, amr).await?;
        self.metrics.login("ok");
        audit!("passkey_sign_in_ok", user_id = %user.id, session_id = %login.pair.session_id, passkey_id = %stored.id);
        Ok(login)
    }

    /// Checks a library verdict on an assertion by `stored`; on success saves the new
    /// counter and returns whether the passkey is synced (backup-eligible).
    async fn passkey_result(
        &self,
        user: &UserRecord,
        stored: &PasskeyRecord,
        passkey: &mut Passkey,
        result: Result<webauthn_rs::prelude::AuthenticationResult, WebauthnError>,
        client: &ClientInfo,
        now: i64,
    ) -> Result<bool, DomainError> {
        let result = match result {
            Ok(r) => r,
            Err(WebauthnError::CredentialPossibleCompromise) => {
                tracing::warn!(
                    target: "wristband::audit",
                    event = "passkey_counter_regression",
                    user_id = %user.id,
                    passkey_id = %stored.id,
                    ip = client.ip.as_deref(),
                );
                return Err(DomainError::PasskeyRefused);
            }
            Err(e) => {
                audit!("passkey_refused", user_id = %user.id, passkey_id = %stored.id, reason = %e, ip = client.ip.as_deref());
                return Err(DomainError::PasskeyRefused);
            }
        };
        passkey.update_credential(&result);
        self.store
            .passkey_used(&stored.id, &state_json(passkey)?, now)
            .await?;
        Ok(result.backup_eligible())
    }

    /// Starts a passkey as the second step of a sign-in (`mfa_token` of a user with
    /// passkeys): the ceremony is bound to that second step.
    pub async fn begin_passkey_second_factor(
        &self,
        mfa_token: &str,
    ) -> Result<Ceremony, DomainError> {
        let (hash, step, user) = self.live_second_step(mfa_token, self.now()).await?;
        if step.enrol {
            return Err(DomainError::InvalidMfaToken);
        }
        let passkeys = self
            .store
            .passkeys(&user.id)
            .await?
            .iter()
            .map(|p| from_json::<Passkey>(&p.passkey, "stored passkey"))
            .collect::<Result<Vec<_>, _>>()?;
        if passkeys.is_empty() {
            return Err(DomainError::NotFound);
        }
        let (rcr, state) = self
            .relying()?
            .start_passkey_authentication(&passkeys)
            .map_err(|e| DomainError::internal_because("starting a passkey check", e))?;
        let binding = wristband_jose::b64::encode(&hash);
        self.put_ceremony(
            AUTHENTICATE,
            &binding,
            Some(&user.id),
            state_json(&state)?,
            options_json(&rcr)?,
        )
        .await
    }

    /// Checks a passkey assertion as the second step `step_hash` of `user`'s sign-in:
    /// `Some(amr)` of the passkey when it is right, `None` when it is not.
    pub(super) async fn check_passkey_factor(
        &self,
        user: &UserRecord,
        step_hash: &[u8],
        challenge_id: &str,
        credential: &PublicKeyCredential,
        client: &ClientInfo,
        now: i64,
    ) -> Result<Option<&'static str>, DomainError> {
        let binding = wristband_jose::b64::encode(step_hash);
        let Some(ceremony) = self
            .store
            .take_challenge(challenge_id, AUTHENTICATE, &binding, now)
            .await?
        else {
            return Ok(None);
        };
        let id = wristband_jose::b64::encode(credential.get_credential_id());
        let stored = match self.store.passkey(&id).await? {
            Some(p) if p.user_id == user.id && ceremony.user_id.as_deref() == Some(&user.id) => p,
            _ => return Ok(None),
        };
        let state: PasskeyAuthentication = from_json(&ceremony.state, "authentication state")?;
        let mut passkey: Passkey = from_json(&stored.passkey, "stored passkey")?;
        let result = self
            .relying()?
            .finish_passkey_authentication(credential, &state);
        match self
            .passkey_result(user, &stored, &mut passkey, result, client, now)
            .await
        {
            Ok(backup_eligible) => Ok(Some(if backup_eligible { "swk" } else { "hwk" })),
            Err(DomainError::PasskeyRefused) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_handles_are_stable_opaque_and_distinct() {
        assert_eq!(user_handle("usr_a"), user_handle("usr_a"));
        assert_ne!(user_handle("usr_a"), user_handle("usr_b"));
        assert!(!user_handle("usr_a").to_string().contains("usr"));
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(check_name("  Laptop  ").unwrap(), "Laptop");
        assert!(check_name("   ").is_err());
        assert!(check_name(&"é".repeat(64)).is_ok());
        assert!(check_name(&"é".repeat(65)).is_err());
        assert!(check_name("a\u{7}b").is_err());
    }

    #[test]
    fn a_relying_party_needs_a_host() {
        assert!(relying_party("http://localhost:8080").is_some());
        assert!(relying_party("https://auth.example.com").is_some());
        assert!(relying_party("not a url").is_none());
        assert!(relying_party("http://127.0.0.1:8080").is_none());
    }

    #[test]
    fn synced_passkeys_are_software_keys() {
        assert_eq!(passkey_amr(true), "swk mfa");
        assert_eq!(passkey_amr(false), "hwk mfa");
    }
}
