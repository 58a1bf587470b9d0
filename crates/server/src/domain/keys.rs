//! Key material of the auth service: the token-signing key and the refresh-token HMAC key.
//!
//! Both live as files in the data directory, created with mode 0600 on first start.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use aws_lc_rs::hmac;
use wristband_jose::{Algorithm, Jwk, Jwks, KeySet, SigningKey};
use zeroize::Zeroizing;

use super::DomainError;

/// The keys a running auth service uses.
pub struct KeyMaterial {
    signing: SigningKey,
    keyset: KeySet,
    refresh: hmac::Key,
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("signing", &self.signing)
            .finish_non_exhaustive()
    }
}

fn io(path: &Path, e: std::io::Error) -> DomainError {
    DomainError::Internal(format!("{}: {e}", path.display()))
}

/// Creates a file that only the owner can read, refusing to overwrite one.
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

fn key_file(dir: &Path, alg: Algorithm) -> PathBuf {
    match alg {
        Algorithm::HS256 => dir.join("signing-hs256.jwk.json"),
        other => dir.join(format!(
            "signing-{}.pem",
            other.as_str().to_ascii_lowercase()
        )),
    }
}

impl KeyMaterial {
    /// Loads the keys from `dir`, creating any that are missing. Returns the keys and
    /// whether a new signing key was created.
    pub fn load_or_create(dir: &Path, alg: Algorithm) -> Result<(Self, bool), DomainError> {
        fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let path = key_file(dir, alg);
        let (signing, created) = if path.exists() {
            let text = Zeroizing::new(fs::read_to_string(&path).map_err(|e| io(&path, e))?);
            let key = match alg {
                Algorithm::HS256 => {
                    let jwk: Jwk = serde_json::from_str(&text)
                        .map_err(|e| DomainError::Internal(format!("{}: {e}", path.display())))?;
                    SigningKey::from_jwk(&jwk)
                }
                _ => SigningKey::from_pem(alg, &text),
            }
            .map_err(|e| DomainError::Internal(format!("{}: {e}", path.display())))?;
            (key, false)
        } else {
            let key =
                SigningKey::generate(alg).map_err(|e| DomainError::Internal(e.to_string()))?;
            let bytes = match alg {
                Algorithm::HS256 => {
                    let jwk = key
                        .to_private_jwk()
                        .map_err(|e| DomainError::Internal(e.to_string()))?;
                    Zeroizing::new(
                        serde_json::to_string_pretty(&jwk)
                            .map_err(|e| DomainError::Internal(e.to_string()))?,
                    )
                }
                _ => key
                    .to_pem()
                    .map_err(|e| DomainError::Internal(e.to_string()))?,
            };
            write_private_file(&path, bytes.as_bytes()).map_err(|e| io(&path, e))?;
            (key, true)
        };

        let refresh_path = dir.join("refresh-hmac.key");
        let refresh_secret = if refresh_path.exists() {
            Zeroizing::new(fs::read(&refresh_path).map_err(|e| io(&refresh_path, e))?)
        } else {
            let mut secret = Zeroizing::new(vec![0u8; 32]);
            aws_lc_rs::rand::fill(&mut secret).map_err(|e| DomainError::Internal(e.to_string()))?;
            write_private_file(&refresh_path, &secret).map_err(|e| io(&refresh_path, e))?;
            secret
        };
        if refresh_secret.len() < 32 {
            return Err(DomainError::Internal(format!(
                "{}: refresh key shorter than 32 bytes",
                refresh_path.display()
            )));
        }
        let keyset = KeySet::from_keys([signing.verifying_key().clone()])
            .map_err(|e| DomainError::Internal(e.to_string()))?;
        Ok((
            KeyMaterial {
                refresh: hmac::Key::new(hmac::HMAC_SHA256, &refresh_secret),
                signing,
                keyset,
            },
            created,
        ))
    }

    /// The key that signs access tokens.
    pub fn signing(&self) -> &SigningKey {
        &self.signing
    }

    /// The keys that verify our own tokens.
    pub fn keyset(&self) -> &KeySet {
        &self.keyset
    }

    /// The published JWKS: public keys only (empty in HS256 mode).
    pub fn jwks(&self) -> Jwks {
        self.keyset.to_public_jwks()
    }

    /// The deterministic successor of a refresh token: HMAC-SHA256 under the server's
    /// refresh key. Every exchange of the same predecessor yields the same successor.
    pub fn successor(&self, token: &str) -> String {
        wristband_jose::b64::encode(hmac::sign(&self.refresh, token.as_bytes()).as_ref())
    }
}
