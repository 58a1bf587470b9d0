//! The master key (key-encryption key) and sealing of private keys at rest.
//!
//! Private signing keys and the refresh-token HMAC key are stored in the database only as
//! AES-256-GCM ciphertexts under the master key, with the row's identity as associated
//! data, so that a sealed key cannot be moved to another row unnoticed. The master key
//! itself never enters the database.

use std::fmt;
use std::path::Path;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use zeroize::Zeroizing;

use super::DomainError;

/// Version byte in front of every sealed value.
const VERSION: u8 = 1;
/// Length of a master key: 256 bits.
pub const MASTER_KEY_LEN: usize = 32;

/// The key-encryption key. Zeroised on drop (inside aws-lc) and redacted in `Debug`.
pub struct MasterKey {
    key: LessSafeKey,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

/// A sealed value could not be opened: the master key is wrong, or the data was altered.
#[derive(Debug, thiserror::Error)]
#[error("cannot decrypt with this master key (wrong key, or the data was altered)")]
pub struct OpenError;

impl MasterKey {
    /// A master key from 32 raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DomainError> {
        if bytes.len() != MASTER_KEY_LEN {
            return Err(DomainError::invalid(format!(
                "a master key is {MASTER_KEY_LEN} bytes, this one is {}",
                bytes.len()
            )));
        }
        let key = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| DomainError::internal("AES-256-GCM key"))?;
        Ok(MasterKey {
            key: LessSafeKey::new(key),
        })
    }

    /// Parses the text form: 32 bytes, base64url without padding (43 characters),
    /// surrounding whitespace ignored.
    pub fn from_text(text: &str) -> Result<Self, DomainError> {
        let bytes = Zeroizing::new(
            wristband_jose::b64::decode(text.trim())
                .map_err(|_| DomainError::invalid("a master key is 32 bytes in base64url"))?,
        );
        Self::from_bytes(&bytes)
    }

    /// Reads a master key file written by [`MasterKey::create_file`].
    pub fn read_file(path: &Path) -> Result<Self, DomainError> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            DomainError::invalid_because(format!("cannot read {}", path.display()), e)
        })?);
        Self::from_text(&text).map_err(|e| match e {
            DomainError::InvalidRequest { message, source } => DomainError::InvalidRequest {
                message: format!("{}: {message}", path.display()),
                source,
            },
            other => other,
        })
    }

    /// Generates a new master key and writes it to `path` (mode 0600, never overwriting).
    pub fn create_file(path: &Path) -> Result<Self, DomainError> {
        let mut bytes = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        aws_lc_rs::rand::fill(bytes.as_mut())
            .map_err(|e| DomainError::internal_because("random bytes", e))?;
        let text = Zeroizing::new(format!("{}\n", wristband_jose::b64::encode(*bytes)));
        write_private_file(path, text.as_bytes())
            .map_err(|e| DomainError::internal_because(path.display().to_string(), e))?;
        Self::from_bytes(bytes.as_ref())
    }

    /// Encrypts `plaintext`, binding it to `context` (for example the key id).
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Result<Vec<u8>, DomainError> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce)
            .map_err(|e| DomainError::internal_because("random bytes", e))?;
        let mut buf = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut buf,
            )
            .map_err(|_| DomainError::internal("sealing failed"))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + buf.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        zeroize::Zeroize::zeroize(&mut buf);
        Ok(out)
    }

    /// Decrypts a value made by [`MasterKey::seal`] with the same `context`.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        let (&version, rest) = sealed.split_first().ok_or(OpenError)?;
        if version != VERSION || rest.len() < NONCE_LEN {
            return Err(OpenError);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| OpenError)?;
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        let len = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buf)
            .map_err(|_| OpenError)?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

/// Creates a file that only the owner can read, refusing to overwrite one.
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    std::io::Write::write_all(&mut f, contents)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> MasterKey {
        MasterKey::from_bytes(&[byte; 32]).unwrap()
    }

    #[test]
    fn seal_then_open_round_trips_and_binds_the_context() {
        let k = key(7);
        let sealed = k.seal("kid-1", b"private key").unwrap();
        assert!(!sealed
            .windows(b"private key".len())
            .any(|w| w == b"private key"));
        assert_eq!(&**k.open("kid-1", &sealed).unwrap(), b"private key");
        assert!(k.open("kid-2", &sealed).is_err(), "context is bound");
        assert!(key(8).open("kid-1", &sealed).is_err(), "another key fails");
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(k.open("kid-1", &tampered).is_err());
        assert!(k.open("kid-1", &sealed[..5]).is_err());
        assert!(k.open("kid-1", &[]).is_err());
    }

    #[test]
    fn two_seals_differ() {
        let k = key(1);
        assert_ne!(k.seal("a", b"x").unwrap(), k.seal("a", b"x").unwrap());
    }

    #[test]
    fn text_form_is_strict() {
        let text = wristband_jose::b64::encode([9u8; 32]);
        assert!(MasterKey::from_text(&format!("  {text}\n")).is_ok());
        assert!(MasterKey::from_text(&wristband_jose::b64::encode([9u8; 31])).is_err());
        assert!(MasterKey::from_text("not base64!").is_err());
        assert_eq!(format!("{:?}", key(3)), "MasterKey([redacted])");
    }
}
