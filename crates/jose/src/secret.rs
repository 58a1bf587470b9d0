//! Secret material: a redacting, zeroising string, and checks on HMAC secrets.

use std::fmt;

use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};

/// A string that holds secret material. It prints as `[redacted]` and is zeroised on drop.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    /// Wraps a secret.
    pub fn new(s: String) -> Self {
        SecretString(Zeroizing::new(s))
    }

    /// The secret itself. Call only where the value must be used.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<String> for SecretString {
    fn from(s: String) -> Self {
        SecretString::new(s)
    }
}

impl serde::Serialize for SecretString {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for SecretString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(SecretString::new)
    }
}

/// The smallest HS256 secret we accept, in bytes (RFC 7518 §3.2: at least the hash size).
pub const MIN_HMAC_SECRET_LEN: usize = 32;

/// Well-known secrets from tutorials, documentation and default configs. Tokens signed with
/// any of them are forgeable by anyone; `token audit` tries each against an HS256 token.
pub const COMMON_SECRETS: &[&str] = &[
    "your-256-bit-secret",
    "your-384-bit-secret",
    "your-512-bit-secret",
    "a-string-secret-at-least-256-bits-long",
    "secret",
    "Secret",
    "SECRET",
    "secretkey",
    "secret-key",
    "secret_key",
    "secretKey",
    "mysecret",
    "my-secret",
    "my_secret",
    "mysecretkey",
    "my-secret-key",
    "my_secret_key",
    "mySecretKey",
    "supersecret",
    "super-secret",
    "super_secret",
    "supersecretkey",
    "super-secret-key",
    "topsecret",
    "jwt",
    "jwtsecret",
    "jwt-secret",
    "jwt_secret",
    "JWT_SECRET",
    "jwtSecret",
    "jwt-secret-key",
    "jwt_secret_key",
    "your-secret",
    "your_secret",
    "your-secret-key",
    "your_secret_key",
    "yoursecretkey",
    "your-jwt-secret",
    "your_jwt_secret",
    "your-super-secret-jwt-token-with-at-least-32-characters-long",
    "change-me",
    "changeme",
    "change_me",
    "changeit",
    "change-this-secret",
    "CHANGE_ME",
    "password",
    "Password",
    "password1",
    "password123",
    "pass",
    "admin",
    "root",
    "test",
    "testing",
    "test-secret",
    "testsecret",
    "dev",
    "development",
    "default",
    "example",
    "key",
    "private",
    "privatekey",
    "public",
    "token",
    "auth",
    "authentication",
    "shhhhh",
    "shhhhhared-secret",
    "keyboard cat",
    "hello",
    "helloworld",
    "hello world",
    "qwerty",
    "qwertyuiop",
    "123",
    "1234",
    "12345",
    "123456",
    "1234567",
    "12345678",
    "123456789",
    "1234567890",
    "0123456789abcdef0123456789abcdef",
    "00000000000000000000000000000000",
    "abcdefghijklmnopqrstuvwxyz",
    "abcdefghijklmnopqrstuvwxyz012345",
    "gZH75aKtMN3Yj0iPS4hcgUuTqjAKp3ti",
    "s3cr3t",
    "s3cret",
    "notasecret",
    "not-a-secret",
    "insecure",
    "insecure-secret",
    "django-insecure",
    "replace-me",
    "replaceme",
    "thisisasecret",
    "this-is-a-secret",
    "thisismysecret",
    "ThisIsMySecretKey",
    "verysecret",
    "very-secret",
    "very_secret_key",
    "somesecret",
    "some-secret",
    "",
];

/// Checks that `secret` is fit to be an HS256 key: long enough, not a known value and not
/// obviously low-entropy (estimated from its byte distribution).
pub fn check_hmac_secret(secret: &[u8]) -> Result<()> {
    if secret.len() < MIN_HMAC_SECRET_LEN {
        return Err(Error::new(ErrorKind::WeakSecret));
    }
    if is_common_secret(secret) {
        return Err(Error::new(ErrorKind::WeakSecret));
    }
    if estimated_entropy_bits(secret) < 128.0 {
        return Err(Error::new(ErrorKind::WeakSecret));
    }
    Ok(())
}

/// True when `secret` is, or merely repeats, one of [`COMMON_SECRETS`].
pub fn is_common_secret(secret: &[u8]) -> bool {
    COMMON_SECRETS.iter().any(|c| {
        let c = c.as_bytes();
        if c.is_empty() {
            return secret.is_empty();
        }
        secret.eq_ignore_ascii_case(c)
            || (secret.len().is_multiple_of(c.len())
                && secret
                    .chunks(c.len())
                    .all(|chunk| chunk.eq_ignore_ascii_case(c)))
    })
}

/// Shannon entropy of the byte histogram times the length: a rough upper bound on the
/// secret's entropy, good enough to refuse `aaaa…` and repeated words.
fn estimated_entropy_bits(secret: &[u8]) -> f64 {
    let mut counts = [0u32; 256];
    for &b in secret {
        counts[b as usize] += 1;
    }
    let n = secret.len() as f64;
    let per_byte: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum();
    per_byte * n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_secrets_are_refused() {
        for weak in [
            &b""[..],
            b"\0",
            b"your-256-bit-secret",
            b"a-string-secret-at-least-256-bits-long",
            b"secretsecretsecretsecretsecretsecret",
            b"passwordpasswordpasswordpassword",
            &[b'a'; 64],
            &[0u8; 32],
        ] {
            assert!(check_hmac_secret(weak).is_err(), "{weak:?}");
        }
    }

    #[test]
    fn random_secrets_pass() {
        let mut s = [0u8; 32];
        aws_lc_rs::rand::fill(&mut s).unwrap();
        check_hmac_secret(&s).unwrap();
        let hex: String = s.iter().map(|b| format!("{b:02x}")).collect();
        check_hmac_secret(hex.as_bytes()).unwrap();
    }

    #[test]
    fn secret_string_is_redacted() {
        let s = SecretString::new("hunter2".into());
        assert_eq!(format!("{s:?}"), "[redacted]");
    }
}
