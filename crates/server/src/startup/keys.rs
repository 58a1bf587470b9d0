//! The signing keys and the secrets that protect them: the master key, the HS256 secret.

use std::sync::Arc;

use wristband_jose::{SecretString, SigningKey};

use super::{create_private_dir, StartError};
use crate::config::{Config, ConfigError};
use crate::domain::{KeyEvent, KeyManager, KeySchedule, MasterKey, PolicyTemplate};
use crate::store::Store;

/// Opens the signing keys named by the configuration (master key, HS256 secret, rotation
/// schedule), running the schedule once. Used by the server and by `wristband keys`.
pub async fn open_keys(
    config: &Config,
    store: Arc<dyn Store>,
    now: i64,
) -> Result<(KeyManager, Vec<KeyEvent>), StartError> {
    let master = load_master_key(config)?;
    let hs256 = load_hs256_secret(config)?;
    let schedule = KeySchedule {
        alg: config.alg,
        rotate_every: (!config.key_rotation.is_zero()).then_some(config.key_rotation),
        prepublish: config.key_prepublish(),
        retire_for: config.key_retire_for(),
    };
    let template = PolicyTemplate {
        issuer: config.issuer(),
        audience: config.audience.clone(),
        max_lifetime: config.access_ttl,
    };
    let legacy = config.data_dir.join("keys");
    let (keys, events) =
        KeyManager::open(store, master, schedule, template, hs256, Some(&legacy), now).await?;
    Ok((keys, events))
}

/// The master key: from `WRISTBAND_MASTER_KEY`, the configured file, or `master.key` in
/// the data directory (created on first start, with a warning to move it).
pub fn load_master_key(config: &Config) -> Result<MasterKey, StartError> {
    if let Some(text) = &config.master_key {
        return Ok(MasterKey::from_text(text.expose())?);
    }
    if let Some(path) = &config.master_key_file {
        return Ok(MasterKey::read_file(path)?);
    }
    let path = config.data_dir.join("master.key");
    if path.exists() {
        return Ok(MasterKey::read_file(&path)?);
    }
    create_private_dir(&config.data_dir)?;
    let key = MasterKey::create_file(&path)?;
    tracing::warn!(
        file = %path.display(),
        "created a master key next to the database: anyone with both can read the signing \
         keys. Move it (--master-key-file or WRISTBAND_MASTER_KEY) and back it up apart \
         from the database"
    );
    Ok(key)
}

/// The HS256 secret in HS256 mode: `WRISTBAND_HS256_SECRET` or the configured file.
pub fn load_hs256_secret(config: &Config) -> Result<Option<SigningKey>, StartError> {
    let text = match (&config.hs256_secret, &config.hs256_secret_file) {
        (Some(s), _) => s.clone(),
        (None, Some(path)) => SecretString::new(
            std::fs::read_to_string(path)
                .map_err(|e| ConfigError::because(format!("cannot read {}", path.display()), e))?,
        ),
        (None, None) => return Ok(None),
    };
    Ok(Some(crate::domain::keys::hs256_key_from_text(
        text.expose(),
    )?))
}
