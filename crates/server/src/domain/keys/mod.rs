//! Signing keys: stored (sealed) in the store and shared by every auth instance, rotated on
//! a schedule with pre-publication, retired, removed, or revoked in an emergency.
//!
//! A key moves `next` (published, not signing) → `current` (signing) → `retired` (still
//! published while its tokens can be valid) → `removed`. An emergency revocation takes a
//! key out of the JWKS at once and records a `kid` revocation that the feed pushes to
//! verifiers. In HS256 mode the signing secret comes from outside (a file or the
//! environment) and nothing rotates.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use aws_lc_rs::hmac;
use wristband_jose::{Algorithm, Jwk, KeySet, SigningKey, VerifyingKey};
use zeroize::Zeroizing;

use super::seal::MasterKey;
use super::{audit, DomainError};

mod backup;
mod event;
mod ring;

use crate::store::{KeyChange, KeyRecord, KeyState, Store, StoreError};
pub use backup::{ExportedKey, KeyExport};
pub use event::{KeyEvent, KeyEventKind};
use ring::hs_or_placeholder;
pub use ring::{KeyRing, PolicyTemplate};

/// Name of the sealed refresh-token HMAC key in the store.
const REFRESH_SECRET: &str = "refresh-hmac";
/// What the device-token key is derived from the refresh secret with.
const DEVICE_KEY_LABEL: &[u8] = b"wristband device-token key v1";
/// What the key that seals second factors' secrets is derived from the refresh secret
/// with. The refresh secret is sealed under the master key (and re-sealed when the master
/// key changes), so the factors' secrets stay under the master key without being re-sealed
/// one by one.
const FACTOR_KEY_LABEL: &[u8] = b"wristband second-factor sealing key v1";
/// Name of the value that proves the master key opens this store's secrets.
const MASTER_CHECK: &str = "master-key-check";
/// Plaintext of the master-key check.
const MASTER_CHECK_PLAINTEXT: &[u8] = b"wristband master key check v1";

fn internal(e: impl std::fmt::Display) -> DomainError {
    DomainError::internal(e.to_string())
}

/// When keys rotate and how long they stay published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySchedule {
    /// Algorithm of keys created by the schedule.
    pub alg: Algorithm,
    /// A current key is replaced this long after it started to sign; `None`: only by hand.
    pub rotate_every: Option<Duration>,
    /// A next key is published this long before it signs (at least one JWKS max-age).
    pub prepublish: Duration,
    /// A retired key stays published this long: the longest access-token lifetime plus
    /// leeway.
    pub retire_for: Duration,
}

pub(crate) enum Mode {
    /// Keys in the store, sealed under the master key.
    Stored,
    /// One HS256 secret from outside the store.
    Hs256(Arc<SigningKey>),
}

/// Owns the signing keys: loads them from the store, runs the rotation schedule and the
/// manual operations, and holds the ring in force.
pub struct KeyManager {
    store: Arc<dyn Store>,
    master: MasterKey,
    schedule: KeySchedule,
    template: PolicyTemplate,
    mode: Mode,
    refresh: hmac::Key,
    /// Signs device tokens: derived from the refresh secret, never used for anything else.
    device: hmac::Key,
    /// Seals TOTP secrets: derived from the refresh secret, never used for anything else.
    factors: MasterKey,
    ring: RwLock<Arc<KeyRing>>,
    /// Opened private keys by kid, so that a reload does not parse them again.
    opened: RwLock<HashMap<String, Arc<SigningKey>>>,
}

impl std::fmt::Debug for KeyManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyManager")
            .field("schedule", &self.schedule)
            .finish_non_exhaustive()
    }
}

/// Files of the key store before keys moved into the database: imported once.
fn legacy_signing_file(dir: &Path, alg: Algorithm) -> PathBuf {
    dir.join(format!("signing-{}.pem", alg.as_str().to_ascii_lowercase()))
}

impl KeyManager {
    /// Opens the key store: checks the master key against the store, loads (or creates) the
    /// refresh-token key, and in stored mode makes sure a current key exists. `hs256` is
    /// the external secret in HS256 mode. `legacy_dir` is the old key directory, whose
    /// files are imported into an empty store.
    pub async fn open(
        store: Arc<dyn Store>,
        master: MasterKey,
        schedule: KeySchedule,
        template: PolicyTemplate,
        hs256: Option<SigningKey>,
        legacy_dir: Option<&Path>,
        now: i64,
    ) -> Result<(Self, Vec<KeyEvent>), DomainError> {
        let check = master.seal(MASTER_CHECK, MASTER_CHECK_PLAINTEXT)?;
        let stored = store.secret_or_insert(MASTER_CHECK, &check, now).await?;
        match master.open(MASTER_CHECK, &stored) {
            Ok(p) if p.as_slice() == MASTER_CHECK_PLAINTEXT => {}
            _ => {
                return Err(DomainError::invalid(
                    "the master key does not open this database's keys: give the master key \
                     this database was created with (--master-key-file or WRISTBAND_MASTER_KEY)",
                ))
            }
        }

        let legacy_refresh = legacy_dir
            .map(|d| d.join("refresh-hmac.key"))
            .filter(|p| p.exists());
        let mut fresh = Zeroizing::new(vec![0u8; 32]);
        if let Some(path) = &legacy_refresh {
            fresh = Zeroizing::new(fs::read(path).map_err(internal)?);
        } else {
            aws_lc_rs::rand::fill(&mut fresh).map_err(internal)?;
        }
        let sealed = master.seal(REFRESH_SECRET, &fresh)?;
        let stored = store.secret_or_insert(REFRESH_SECRET, &sealed, now).await?;
        let secret = master
            .open(REFRESH_SECRET, &stored)
            .map_err(|e| DomainError::internal_because("refresh key", e))?;
        if secret.len() < 32 {
            return Err(internal("refresh key shorter than 32 bytes"));
        }

        let mode = match hs256 {
            Some(key) => Mode::Hs256(Arc::new(key)),
            None => Mode::Stored,
        };
        let mut events = Vec::new();
        if matches!(mode, Mode::Stored) && store.list_keys().await?.is_empty() {
            if let Some(path) = legacy_dir
                .map(|d| legacy_signing_file(d, schedule.alg))
                .filter(|p| p.exists())
            {
                let pem = Zeroizing::new(fs::read_to_string(&path).map_err(internal)?);
                let key = SigningKey::from_pem(schedule.alg, &pem)
                    .map_err(|e| DomainError::internal_because(path.display().to_string(), e))?;
                let record = seal_key(&master, &key, KeyState::Current, now, None)?;
                store.insert_key(&record).await?;
                tracing::warn!(
                    file = %path.display(),
                    "imported the signing key file into the database; the file can be deleted"
                );
                events.push(KeyEvent::new(
                    KeyEventKind::Activated,
                    &record.kid,
                    &record.alg,
                ));
            }
        }

        let refresh = hmac::Key::new(hmac::HMAC_SHA256, &secret);
        // A separate key for device tokens, so that no device-token MAC can ever be
        // presented as a refresh-token successor or a CSRF token, and the other way round.
        let device = hmac::Key::new(
            hmac::HMAC_SHA256,
            hmac::sign(&refresh, DEVICE_KEY_LABEL).as_ref(),
        );
        let factors = MasterKey::from_bytes(hmac::sign(&refresh, FACTOR_KEY_LABEL).as_ref())?;
        let placeholder = Arc::new(hs_or_placeholder(&mode, &template)?);
        let manager = KeyManager {
            store,
            master,
            schedule,
            template,
            mode,
            refresh,
            device,
            factors,
            ring: RwLock::new(placeholder),
            opened: RwLock::new(HashMap::new()),
        };
        events.extend(manager.tick(now).await?);
        manager.reload().await?;
        Ok((manager, events))
    }

    /// The ring in force.
    pub fn ring(&self) -> Arc<KeyRing> {
        Arc::clone(&self.ring.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The schedule.
    pub fn schedule(&self) -> &KeySchedule {
        &self.schedule
    }

    /// What the rings' policies are built from.
    pub fn policy_template(&self) -> &PolicyTemplate {
        &self.template
    }

    /// True in HS256 mode (an external secret, nothing stored or rotated).
    pub fn is_hs256(&self) -> bool {
        matches!(self.mode, Mode::Hs256(_))
    }

    /// The deterministic successor of a refresh token: HMAC-SHA256 under the server's
    /// refresh key. Every exchange of the same predecessor yields the same successor.
    pub fn successor(&self, token: &str) -> String {
        wristband_jose::b64::encode(hmac::sign(&self.refresh, token.as_bytes()).as_ref())
    }

    /// The CSRF token of a session: HMAC-SHA256 of `"csrf:" + sid` under the same server
    /// key, base64url. The label keeps it apart from refresh-token successors (which are
    /// computed over refresh tokens, never containing `:`).
    pub fn csrf_token(&self, session_id: &str) -> String {
        wristband_jose::b64::encode(hmac::sign(&self.refresh, &csrf_input(session_id)).as_ref())
    }

    /// The key that signs device tokens (see [`crate::domain::device`]).
    pub(crate) fn device_key(&self) -> &hmac::Key {
        &self.device
    }

    /// The key that seals second factors' secrets (see [`crate::domain::mfa`]).
    pub(crate) fn factor_key(&self) -> &MasterKey {
        &self.factors
    }

    /// Whether `token` is the CSRF token of `session_id`, checked in constant time.
    pub fn csrf_matches(&self, session_id: &str, token: &str) -> bool {
        match wristband_jose::b64::decode(token) {
            Ok(tag) => hmac::verify(&self.refresh, &csrf_input(session_id), &tag).is_ok(),
            Err(_) => false,
        }
    }

    /// Every stored key, oldest first.
    pub async fn list(&self) -> Result<Vec<KeyRecord>, DomainError> {
        Ok(self.store.list_keys().await?)
    }

    /// Re-reads the stored keys and swaps in a new ring when they changed. True when the
    /// ring changed.
    pub async fn reload(&self) -> Result<bool, DomainError> {
        if let Mode::Hs256(_) = self.mode {
            return Ok(false);
        }
        let rows = self.store.list_keys().await?;
        let fingerprint: Vec<(String, KeyState)> =
            rows.iter().map(|r| (r.kid.clone(), r.state)).collect();
        if self.ring().fingerprint == fingerprint {
            return Ok(false);
        }
        let first = self
            .ring()
            .fingerprint
            .first()
            .is_some_and(|(k, _)| k.is_empty());
        let ring = self.build_ring(&rows, fingerprint)?;
        if first {
            tracing::debug!(signing = ring.signing.kid(), "signing keys loaded");
        } else {
            tracing::info!(
                signing = ring.signing.kid(),
                published = ring.keyset.len(),
                "signing keys changed"
            );
        }
        *self.ring.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(ring);
        Ok(true)
    }

    fn build_ring(
        &self,
        rows: &[KeyRecord],
        fingerprint: Vec<(String, KeyState)>,
    ) -> Result<KeyRing, DomainError> {
        let current = rows
            .iter()
            .find(|r| r.state == KeyState::Current)
            .ok_or_else(|| internal("no current signing key in the store"))?;
        let signing = self.open_key(current)?;
        let mut verifying: Vec<VerifyingKey> = Vec::new();
        for r in rows.iter().filter(|r| r.state.is_published()) {
            let jwk: Jwk = serde_json::from_str(&r.public_jwk).map_err(internal)?;
            match VerifyingKey::from_jwk(&jwk) {
                Ok(k) => verifying.push(k),
                Err(e) => tracing::error!(kid = %r.kid, error = %e, "stored public key unusable"),
            }
        }
        let keyset = KeySet::from_keys(verifying).map_err(internal)?;
        let mut algorithms: Vec<Algorithm> = keyset.iter().map(VerifyingKey::algorithm).collect();
        algorithms.sort_by_key(|a| a.as_str());
        algorithms.dedup();
        Ok(KeyRing {
            jwks: keyset.to_public_jwks(),
            policy: self.template.build(&algorithms, None)?,
            signing,
            keyset,
            algorithms,
            fingerprint,
        })
    }

    fn open_key(&self, record: &KeyRecord) -> Result<Arc<SigningKey>, DomainError> {
        if let Some(k) = self
            .opened
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&record.kid)
        {
            return Ok(Arc::clone(k));
        }
        let alg = record.alg;
        let sealed = record
            .private_key
            .as_deref()
            .ok_or_else(|| internal(format!("key {} has no private half", record.kid)))?;
        let pem = self
            .master
            .open(&record.kid, sealed)
            .map_err(|e| DomainError::internal_because(format!("key {}", record.kid), e))?;
        let pem = std::str::from_utf8(&pem).map_err(internal)?;
        let key = Arc::new(SigningKey::from_pem(alg, pem).map_err(internal)?);
        if key.kid() != record.kid {
            return Err(internal(format!(
                "key {} does not match its id",
                record.kid
            )));
        }
        self.opened
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(record.kid.clone(), Arc::clone(&key));
        Ok(key)
    }

    async fn add_key(
        &self,
        alg: Algorithm,
        state: KeyState,
        now: i64,
        activates_at: Option<i64>,
    ) -> Result<Option<KeyRecord>, DomainError> {
        let key = tokio::task::spawn_blocking(move || SigningKey::generate(alg))
            .await
            .map_err(internal)?
            .map_err(internal)?;
        let record = seal_key(&self.master, &key, state, now, activates_at)?;
        match self.store.insert_key(&record).await {
            Ok(()) => Ok(Some(record)),
            // Another instance (or the CLI) added one at the same time.
            Err(StoreError::Conflict) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// One run of the rotation schedule at `now`: makes sure a key signs, publishes the
    /// next key ahead of time, promotes it when due, and removes retired keys whose tokens
    /// have all expired. Safe to run from several places at once: every change is
    /// conditional. Returns what changed (already audited); the caller reloads the ring.
    pub async fn tick(&self, now: i64) -> Result<Vec<KeyEvent>, DomainError> {
        if let Mode::Hs256(_) = self.mode {
            return Ok(Vec::new());
        }
        let s = self.schedule;
        let rows = self.store.list_keys().await?;
        let current = rows.iter().find(|r| r.state == KeyState::Current);
        let next = rows.iter().find(|r| r.state == KeyState::Next);
        let mut events = Vec::new();
        match (current, next) {
            (None, Some(n)) => {
                if self.promote(None, n, now).await? {
                    events.push(KeyEvent::new(KeyEventKind::Activated, &n.kid, &n.alg));
                }
            }
            (None, None) => {
                if let Some(r) = self.add_key(s.alg, KeyState::Current, now, None).await? {
                    events.push(KeyEvent::new(KeyEventKind::Activated, &r.kid, &r.alg));
                }
            }
            (Some(c), Some(n)) if n.activates_at.is_none_or(|t| t <= now) => {
                if self.promote(Some(c), n, now).await? {
                    events.push(KeyEvent::new(KeyEventKind::Retired, &c.kid, &c.alg));
                    events.push(KeyEvent::new(KeyEventKind::Activated, &n.kid, &n.alg));
                }
            }
            (Some(c), None) => {
                if let Some(every) = s.rotate_every {
                    let due = c
                        .activated_at
                        .unwrap_or(c.created_at)
                        .saturating_add(wristband_jose::secs_i64(every));
                    if now >= due.saturating_sub(wristband_jose::secs_i64(s.prepublish)) {
                        let at =
                            due.max(now.saturating_add(wristband_jose::secs_i64(s.prepublish)));
                        if let Some(r) = self.add_key(s.alg, KeyState::Next, now, Some(at)).await? {
                            events.push(KeyEvent::new(KeyEventKind::Published, &r.kid, &r.alg));
                        }
                    }
                }
            }
            (Some(_), Some(_)) => {}
        }
        for r in rows
            .iter()
            .filter(|r| r.state == KeyState::Retired && r.removes_at.is_some_and(|t| t <= now))
        {
            let change = KeyChange {
                kid: r.kid.clone(),
                from: KeyState::Retired,
                to: KeyState::Removed,
                at: now,
                until: None,
            };
            if self.store.change_keys(&[change]).await? {
                events.push(KeyEvent::new(KeyEventKind::Removed, &r.kid, &r.alg));
            }
        }
        for e in &events {
            e.audit();
        }
        Ok(events)
    }

    /// Makes `next` the signing key, retiring `current`. False when someone else did it.
    async fn promote(
        &self,
        current: Option<&KeyRecord>,
        next: &KeyRecord,
        now: i64,
    ) -> Result<bool, DomainError> {
        let mut changes = Vec::with_capacity(2);
        if let Some(c) = current {
            changes.push(KeyChange {
                kid: c.kid.clone(),
                from: KeyState::Current,
                to: KeyState::Retired,
                at: now,
                until: Some(now.saturating_add(wristband_jose::secs_i64(self.schedule.retire_for))),
            });
        }
        changes.push(KeyChange {
            kid: next.kid.clone(),
            from: KeyState::Next,
            to: KeyState::Current,
            at: now,
            until: None,
        });
        Ok(self.store.change_keys(&changes).await?)
    }

    fn require_stored(&self) -> Result<(), DomainError> {
        match self.mode {
            Mode::Stored => Ok(()),
            Mode::Hs256(_) => Err(DomainError::invalid(
                "HS256 mode uses one external secret: there are no stored keys to manage",
            )),
        }
    }

    /// Starts a rotation by hand: publishes a next key (of `alg`, default the schedule's)
    /// that signs after the pre-publication time, or at once with `immediate` (verifiers
    /// that have not seen it then fetch it on the first unknown `kid`). With a next key
    /// already waiting, `immediate` promotes it and anything else is refused.
    pub async fn rotate(
        &self,
        alg: Option<Algorithm>,
        immediate: bool,
        now: i64,
    ) -> Result<Vec<KeyEvent>, DomainError> {
        self.require_stored()?;
        let rows = self.store.list_keys().await?;
        let mut events = Vec::new();
        let next = match rows.iter().find(|r| r.state == KeyState::Next) {
            Some(n) if !immediate => {
                return Err(DomainError::invalid(format!(
                    "key {} is already waiting to sign at {}; use --immediate to promote it now",
                    n.kid,
                    n.activates_at.unwrap_or(now)
                )))
            }
            Some(n) => n.clone(),
            None => {
                let at = if immediate {
                    now
                } else {
                    now.saturating_add(wristband_jose::secs_i64(self.schedule.prepublish))
                };
                let alg = alg.unwrap_or(self.schedule.alg);
                if alg == Algorithm::HS256 {
                    return Err(DomainError::invalid(
                        "stored keys are asymmetric: HS256 is a separate mode",
                    ));
                }
                let r = self
                    .add_key(alg, KeyState::Next, now, Some(at))
                    .await?
                    .ok_or(DomainError::Conflict)?;
                events.push(KeyEvent::new(KeyEventKind::Published, &r.kid, &r.alg));
                r
            }
        };
        if immediate {
            let current = rows.iter().find(|r| r.state == KeyState::Current);
            if !self.promote(current, &next, now).await? {
                return Err(DomainError::Conflict);
            }
            if let Some(c) = current {
                events.push(KeyEvent::new(KeyEventKind::Retired, &c.kid, &c.alg));
            }
            events.push(KeyEvent::new(KeyEventKind::Activated, &next.kid, &next.alg));
        }
        for e in &events {
            e.audit();
        }
        self.reload().await?;
        Ok(events)
    }

    /// Retires a key by hand. The current key is replaced at once by the next key, or by a
    /// new one; a next key that never signed is removed.
    pub async fn retire(&self, kid: &str, now: i64) -> Result<Vec<KeyEvent>, DomainError> {
        self.require_stored()?;
        let rows = self.store.list_keys().await?;
        let key = rows
            .iter()
            .find(|r| r.kid == kid)
            .ok_or(DomainError::NotFound)?;
        let events = match key.state {
            KeyState::Current => self.rotate(None, true, now).await?,
            KeyState::Next => {
                let change = KeyChange {
                    kid: kid.to_owned(),
                    from: KeyState::Next,
                    to: KeyState::Removed,
                    at: now,
                    until: None,
                };
                if !self.store.change_keys(&[change]).await? {
                    return Err(DomainError::Conflict);
                }
                let e = KeyEvent::new(KeyEventKind::Removed, &key.kid, &key.alg);
                e.audit();
                vec![e]
            }
            other => {
                return Err(DomainError::invalid(format!(
                    "key {kid} is {} already",
                    other.as_str()
                )))
            }
        };
        self.reload().await?;
        Ok(events)
    }

    /// Emergency revocation: the key leaves the JWKS at once, its private half is erased,
    /// and a `kid` revocation (living `record_for`) tells verifiers to refuse its tokens.
    /// A revoked current key is replaced at once.
    pub async fn revoke(
        &self,
        kid: &str,
        record_for: Duration,
        now: i64,
    ) -> Result<Vec<KeyEvent>, DomainError> {
        self.require_stored()?;
        let rows = self.store.list_keys().await?;
        let key = rows
            .iter()
            .find(|r| r.kid == kid)
            .ok_or(DomainError::NotFound)?;
        if !key.state.is_published() {
            return Err(DomainError::invalid(format!(
                "key {kid} is {} already",
                key.state.as_str()
            )));
        }
        let mut events = Vec::new();
        let mut changes = vec![KeyChange {
            kid: kid.to_owned(),
            from: key.state,
            to: KeyState::Revoked,
            at: now,
            until: Some(now.saturating_add(wristband_jose::secs_i64(record_for))),
        }];
        if key.state == KeyState::Current {
            let next = match rows.iter().find(|r| r.state == KeyState::Next) {
                Some(n) => n.clone(),
                None => {
                    // The replacement signs with the revoked key's algorithm.
                    let alg = key.alg;
                    let r = self
                        .add_key(alg, KeyState::Next, now, Some(now))
                        .await?
                        .ok_or(DomainError::Conflict)?;
                    events.push(KeyEvent::new(KeyEventKind::Published, &r.kid, &r.alg));
                    r
                }
            };
            changes.push(KeyChange {
                kid: next.kid.clone(),
                from: KeyState::Next,
                to: KeyState::Current,
                at: now,
                until: None,
            });
            events.push(KeyEvent::new(KeyEventKind::Activated, &next.kid, &next.alg));
        }
        if !self.store.change_keys(&changes).await? {
            return Err(DomainError::Conflict);
        }
        events.insert(0, KeyEvent::new(KeyEventKind::Revoked, &key.kid, &key.alg));
        for e in &events {
            e.audit();
        }
        self.opened
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(kid);
        self.reload().await?;
        Ok(events)
    }
}

/// Seals a new key into a record.
fn csrf_input(session_id: &str) -> Vec<u8> {
    let mut input = b"csrf:".to_vec();
    input.extend_from_slice(session_id.as_bytes());
    input
}

fn seal_key(
    master: &MasterKey,
    key: &SigningKey,
    state: KeyState,
    now: i64,
    activates_at: Option<i64>,
) -> Result<KeyRecord, DomainError> {
    let pem = key.to_pem().map_err(internal)?;
    let jwk = key
        .verifying_key()
        .to_jwk()
        .ok_or_else(|| internal("stored keys are asymmetric"))?;
    Ok(KeyRecord {
        kid: key.kid().to_owned(),
        alg: key.algorithm(),
        state,
        private_key: Some(master.seal(key.kid(), pem.as_bytes())?),
        public_jwk: serde_json::to_string(&jwk).map_err(internal)?,
        created_at: now,
        activates_at,
        activated_at: (state == KeyState::Current).then_some(now),
        retired_at: None,
        removes_at: None,
        revoked_at: None,
    })
}

/// Moves every sealed value in the store (private signing keys and secrets) from the `old`
/// master key to `new`, in one transaction. Stop every auth instance first: one still
/// running with the old key would seal the keys it creates with it. Returns how many keys
/// and secrets were re-sealed.
pub async fn rewrap_master_key(
    store: &dyn Store,
    old: &MasterKey,
    new: &MasterKey,
) -> Result<(usize, usize), DomainError> {
    let refuse = |what: &str| {
        DomainError::invalid(format!(
            "{what} cannot be opened with the current master key: nothing was changed"
        ))
    };
    let mut keys = Vec::new();
    for k in store.list_keys().await? {
        if let Some(sealed) = &k.private_key {
            let plain = old
                .open(&k.kid, sealed)
                .map_err(|_| refuse(&format!("key {}", k.kid)))?;
            keys.push((k.kid.clone(), new.seal(&k.kid, &plain)?));
        }
    }
    let mut secrets = Vec::new();
    for (name, sealed) in store.secrets().await? {
        let plain = old
            .open(&name, &sealed)
            .map_err(|_| refuse(&format!("secret {name}")))?;
        secrets.push((name.clone(), new.seal(&name, &plain)?));
    }
    store.reseal(&keys, &secrets).await?;
    audit!(
        "master_key_changed",
        keys = keys.len(),
        secrets = secrets.len()
    );
    Ok((keys.len(), secrets.len()))
}

/// Reads an HS256 secret: a private JWK (`{"kty":"oct","k":...}`, as written by
/// `wristband keys generate --alg HS256`) or base64url text of at least 32 bytes. Short,
/// low-entropy and well-known secrets are refused.
pub fn hs256_key_from_text(text: &str) -> Result<SigningKey, DomainError> {
    let text = text.trim();
    let refuse = |e: wristband_jose::Error| DomainError::invalid_because("HS256 secret refused", e);
    if text.starts_with('{') {
        let jwk: Jwk = serde_json::from_str(text)
            .map_err(|_| DomainError::invalid("HS256 secret: not a JWK"))?;
        SigningKey::from_jwk(&jwk).map_err(refuse)
    } else {
        let bytes = Zeroizing::new(wristband_jose::b64::decode(text).map_err(|_| {
            DomainError::invalid(
                "HS256 secret: expected base64url text (at least 32 bytes) or a JWK",
            )
        })?);
        SigningKey::hs256(&bytes).map_err(refuse)
    }
}
