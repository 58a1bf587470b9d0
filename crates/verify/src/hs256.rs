//! [`Hs256Secret`]: the shared secret of HS256 mode, from a string, a JWK or a file.

use std::fmt;
use std::path::Path;

use wristband_jose::{
    b64, check_hmac_secret, is_common_secret, Jwk, SecretString, VerifyingKey, MIN_HMAC_SECRET_LEN,
};
use zeroize::Zeroizing;

use crate::build_error::BuildError;

/// Largest secret file read: a private JWK is a few hundred bytes.
const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// An HS256 shared secret for [`crate::VerifierBuilder::hs256_secret`].
///
/// The secret is held base64url-encoded, as in the `k` member of an `oct` JWK, and is
/// checked when the verifier is built: at least 32 bytes once decoded, not one of the
/// well-known tutorial values ([`wristband_jose::COMMON_SECRETS`]) and not obviously
/// low-entropy. It never appears in `Debug` output, logs or errors.
///
/// The key id is the `kid` of the JWK the secret was read from, if it had one, otherwise
/// the RFC 7638 thumbprint of the `oct` JWK: the `kid` the auth service puts in the
/// tokens it signs with that secret.
#[derive(Clone)]
pub struct Hs256Secret {
    /// Unpadded base64url.
    secret: SecretString,
    kid: Option<String>,
}

impl fmt::Debug for Hs256Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hs256Secret")
            .field("secret", &self.secret)
            .field("kid", &self.kid)
            .finish()
    }
}

impl From<SecretString> for Hs256Secret {
    fn from(secret: SecretString) -> Self {
        Hs256Secret::from_base64url(secret)
    }
}

impl Hs256Secret {
    /// A secret given base64url-encoded (surrounding whitespace and `=` padding are
    /// ignored), such as the value of `WRISTBAND_HS256_SECRET`.
    pub fn from_base64url(secret: SecretString) -> Self {
        Hs256Secret { secret, kid: None }
    }

    /// The secret of a private `oct` JWK (`{"kty":"oct","k":...}`), as written by
    /// `wristband keys generate --alg HS256`. Its `kid`, if any, becomes the key id. A JWK
    /// naming another algorithm than HS256 or another use than `sig` is refused.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, BuildError> {
        if jwk.kty != "oct" {
            return Err(BuildError::Secret("the JWK is not of type `oct`".into()));
        }
        if jwk.alg.as_deref().is_some_and(|a| a != "HS256") {
            return Err(BuildError::Secret("the JWK is not an HS256 key".into()));
        }
        if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
            return Err(BuildError::Secret("the JWK is not a signing key".into()));
        }
        let secret = jwk
            .k
            .clone()
            .ok_or_else(|| BuildError::Secret("the JWK has no `k`".into()))?;
        Ok(Hs256Secret {
            secret,
            kid: jwk.kid.clone(),
        })
    }

    /// Reads a secret file: either a private `oct` JWK (`secret.jwk.json`, see
    /// [`Hs256Secret::from_jwk`]) or a file whose trimmed content is the base64url-encoded
    /// secret. The secret's strength is checked by the builder, or at once by
    /// [`Hs256Secret::verifying_key`].
    pub fn read(path: impl AsRef<Path>) -> Result<Self, BuildError> {
        use std::io::Read;
        let path = path.as_ref();
        let shown = || path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| BuildError::SecretFile(shown(), e))?;
        let mut text = Zeroizing::new(String::new());
        file.take(MAX_SECRET_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| BuildError::SecretFile(shown(), e))?;
        if text.len() as u64 > MAX_SECRET_FILE_BYTES {
            return Err(BuildError::Secret(format!("`{}` is too large", shown())));
        }
        let trimmed = text.trim();
        if trimmed.starts_with('{') {
            let jwk: Jwk = serde_json::from_str(trimmed)
                .map_err(|_| BuildError::Secret(format!("`{}` is not a valid JWK", shown())))?;
            Self::from_jwk(&jwk)
        } else {
            Ok(Self::from_base64url(SecretString::new(trimmed.to_owned())))
        }
    }

    /// The key id given with the secret (a JWK's `kid`), if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// Decodes and checks the secret and returns the HS256 verifying key, whose `kid` is
    /// the given one or the RFC 7638 thumbprint of the `oct` JWK.
    ///
    /// Fails with [`BuildError::Secret`] when the text is not base64url, and with
    /// [`BuildError::WeakSecret`] when the secret is shorter than 32 bytes, is (or repeats)
    /// a well-known value, or has low entropy.
    pub fn verifying_key(&self) -> Result<VerifyingKey, BuildError> {
        let text = self.secret.expose().trim().trim_end_matches('=');
        if is_common_secret(text.as_bytes()) {
            return Err(BuildError::WeakSecret("a well-known value"));
        }
        let bytes = Zeroizing::new(b64::decode(text).map_err(|_| {
            BuildError::Secret("the HS256 secret is not base64url (RFC 4648 §5)".into())
        })?);
        if bytes.len() < MIN_HMAC_SECRET_LEN {
            return Err(BuildError::WeakSecret("shorter than 32 bytes"));
        }
        if is_common_secret(&bytes) {
            return Err(BuildError::WeakSecret("a well-known value"));
        }
        if check_hmac_secret(&bytes).is_err() {
            return Err(BuildError::WeakSecret("low entropy"));
        }
        let key =
            VerifyingKey::hs256(&bytes).map_err(|_| BuildError::WeakSecret("refused by jose"))?;
        Ok(match &self.kid {
            Some(kid) => key.with_kid(kid.clone()),
            None => key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> Hs256Secret {
        Hs256Secret::from_base64url(SecretString::new(text.to_owned()))
    }

    #[test]
    fn decodes_and_names_the_key_by_thumbprint() {
        let raw = [
            7u8, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
        ]
        .iter()
        .chain(&[21u8, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32])
        .copied()
        .collect::<Vec<u8>>();
        let text = b64::encode(&raw);
        let key = secret(&format!("  {text}\n")).verifying_key().unwrap();
        let jwk = Jwk {
            kty: "oct".into(),
            k: Some(SecretString::new(text.clone())),
            ..Jwk::default()
        };
        assert_eq!(key.kid(), jwk.thumbprint().unwrap());
        assert_eq!(key.algorithm(), wristband_jose::Algorithm::HS256);
        let named = Hs256Secret::from_jwk(&Jwk {
            kid: Some("hs-1".into()),
            alg: Some("HS256".into()),
            ..jwk.clone()
        })
        .unwrap();
        assert_eq!(named.verifying_key().unwrap().kid(), "hs-1");
        assert!(!format!("{named:?}").contains(&text), "redacted");
    }

    #[test]
    fn refuses_bad_and_weak_secrets() {
        let weak = |t: &str| match secret(t).verifying_key() {
            Err(BuildError::WeakSecret(reason)) => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(weak(&b64::encode([9u8; 31])), "shorter than 32 bytes");
        assert_eq!(weak("your-256-bit-secret"), "a well-known value");
        assert_eq!(
            weak(&b64::encode(b"gZH75aKtMN3Yj0iPS4hcgUuTqjAKp3ti")),
            "a well-known value"
        );
        assert_eq!(weak(&b64::encode([b'a'; 48])), "low entropy");
        assert!(matches!(
            secret("not base64url!").verifying_key(),
            Err(BuildError::Secret(_))
        ));
        for (jwk, what) in [
            (r#"{"kty":"RSA","k":"AAAA"}"#, "kty"),
            (r#"{"kty":"oct","alg":"HS512","k":"AAAA"}"#, "alg"),
            (r#"{"kty":"oct","use":"enc","k":"AAAA"}"#, "use"),
            (r#"{"kty":"oct"}"#, "k"),
        ] {
            let jwk: Jwk = serde_json::from_str(jwk).unwrap();
            assert!(
                matches!(Hs256Secret::from_jwk(&jwk), Err(BuildError::Secret(_))),
                "{what}"
            );
        }
    }
}
