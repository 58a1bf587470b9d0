//! Backups of the stored keys: exported sealed, restored only with the same master key.

use serde::{Deserialize, Serialize};

use super::KeyManager;
use crate::domain::{audit, DomainError};
use crate::store::{KeyRecord, KeyState};

/// A backup of the stored keys. Private keys stay sealed under the master key: restoring
/// needs the same master key.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyExport {
    /// Format version, 1.
    pub version: u32,
    /// The keys that still have a private half.
    pub keys: Vec<ExportedKey>,
}

/// One key in a [`KeyExport`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedKey {
    /// Key id.
    pub kid: String,
    /// Algorithm.
    pub alg: String,
    /// State at export.
    pub state: String,
    /// Sealed private key, base64url.
    pub sealed_private_key: String,
    /// Public JWK.
    pub public_jwk: serde_json::Value,
    /// Creation time.
    pub created_at: i64,
}

impl KeyManager {
    /// A backup of every key that still has a private half, sealed as stored.
    pub async fn export(&self) -> Result<KeyExport, DomainError> {
        let rows = self.store.list_keys().await?;
        let keys = rows
            .into_iter()
            .filter_map(|r| {
                let sealed = r.private_key?;
                Some(ExportedKey {
                    sealed_private_key: wristband_jose::b64::encode(sealed),
                    public_jwk: serde_json::from_str(&r.public_jwk).ok()?,
                    kid: r.kid,
                    alg: r.alg.as_str().to_owned(),
                    state: r.state.as_str().to_owned(),
                    created_at: r.created_at,
                })
            })
            .collect();
        Ok(KeyExport { version: 1, keys })
    }

    /// Restores keys from a backup made with the same master key. Keys already in the store
    /// are skipped; an imported key that would be a second current or next key is imported
    /// as retired. Returns the kids imported.
    pub async fn import(&self, backup: &KeyExport, now: i64) -> Result<Vec<String>, DomainError> {
        self.require_stored()?;
        if backup.version != 1 {
            return Err(DomainError::invalid(format!(
                "unknown backup version {}",
                backup.version
            )));
        }
        let existing: Vec<KeyRecord> = self.store.list_keys().await?;
        let mut imported = Vec::new();
        for k in &backup.keys {
            if existing.iter().any(|r| r.kid == k.kid) {
                continue;
            }
            let sealed = wristband_jose::b64::decode(&k.sealed_private_key)
                .map_err(|_| DomainError::invalid(format!("key {}: bad sealed key", k.kid)))?;
            let record = KeyRecord {
                kid: k.kid.clone(),
                alg: k.alg.parse().map_err(|_| {
                    DomainError::invalid(format!("key {}: unknown algorithm", k.kid))
                })?,
                state: KeyState::parse(&k.state).unwrap_or(KeyState::Retired),
                private_key: Some(sealed),
                public_jwk: k.public_jwk.to_string(),
                created_at: k.created_at,
                activates_at: Some(now),
                activated_at: Some(now),
                retired_at: None,
                removes_at: None,
                revoked_at: None,
            };
            // Refuse anything the master key cannot open or whose id does not match.
            self.open_key(&record).map_err(|_| {
                DomainError::invalid(format!(
                    "key {}: cannot be opened with this master key",
                    k.kid
                ))
            })?;
            let mut r = record;
            if !r.state.is_published() {
                continue;
            }
            let taken = existing.iter().any(|e| e.state == r.state)
                && matches!(r.state, KeyState::Current | KeyState::Next);
            if taken || r.state == KeyState::Retired {
                r.state = KeyState::Retired;
                r.retired_at = Some(now);
                r.removes_at =
                    Some(now.saturating_add(wristband_jose::secs_i64(self.schedule.retire_for)));
            }
            self.store.insert_key(&r).await?;
            audit!("key_imported", kid = %r.kid, alg = %r.alg, state = r.state.as_str());
            imported.push(r.kid.clone());
        }
        self.reload().await?;
        Ok(imported)
    }
}
