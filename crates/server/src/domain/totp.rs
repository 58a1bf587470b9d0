//! Time-based one-time passwords (RFC 6238, built on HOTP, RFC 4226): the six-digit codes
//! that every authenticator app computes from a shared secret and the clock.
//!
//! Wristband enrols every secret with [`Settings::STANDARD`] (SHA-1, 6 digits, 30 s): the
//! settings every app honours (apps given SHA-256 in an `otpauth:` URI often fall back to
//! SHA-1 silently and then show wrong codes). The functions take other settings so that
//! the RFC's own test vectors check them.
//!
//! A code is accepted within one step either side of now, to allow for clock drift and
//! for typing, and never for a step at or before the last one accepted for the same
//! secret: [`Totp::verify`] returns the step it matched, which the caller stores, so that a
//! code seen over a shoulder or replayed from a log cannot be used again.

use std::fmt;

use aws_lc_rs::{constant_time, hmac};
use zeroize::Zeroizing;

use super::DomainError;

/// The HMAC of the HOTP computation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    /// HMAC-SHA-1: what authenticator apps compute; not a use of SHA-1 for collision
    /// resistance (HMAC-SHA-1 is not affected by SHA-1's collisions).
    Sha1,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-512.
    Sha512,
}

impl Hash {
    fn algorithm(self) -> hmac::Algorithm {
        match self {
            Hash::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Hash::Sha256 => hmac::HMAC_SHA256,
            Hash::Sha512 => hmac::HMAC_SHA512,
        }
    }

    /// The `algorithm` parameter of an `otpauth:` URI.
    pub fn uri_name(self) -> &'static str {
        match self {
            Hash::Sha1 => "SHA1",
            Hash::Sha256 => "SHA256",
            Hash::Sha512 => "SHA512",
        }
    }
}

/// How codes are computed from a secret and the time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// The HMAC.
    pub hash: Hash,
    /// Digits per code, 6 to 8.
    pub digits: u32,
    /// Seconds per step.
    pub period: u32,
    /// Steps accepted either side of now.
    pub skew: u32,
}

impl Settings {
    /// What Wristband enrols: SHA-1, 6 digits, 30 s, one step either side.
    pub const STANDARD: Settings = Settings {
        hash: Hash::Sha1,
        digits: 6,
        period: 30,
        skew: 1,
    };

    /// The step of a Unix time in seconds (negative times are step 0).
    pub fn step_at(&self, unix_secs: i64) -> u64 {
        u64::try_from(unix_secs).unwrap_or(0) / u64::from(self.period.max(1))
    }
}

/// The HOTP value of `counter` under `key` (RFC 4226 §5.3): dynamic truncation of the
/// HMAC, reduced to `digits` decimal digits.
pub fn hotp(key: &[u8], counter: u64, hash: Hash, digits: u32) -> u32 {
    let key = hmac::Key::new(hash.algorithm(), key);
    let mac = hmac::sign(&key, &counter.to_be_bytes());
    let mac = mac.as_ref();
    // The last byte's low nibble picks four bytes; its top bit is dropped.
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let word = u32::from_be_bytes([
        mac[offset] & 0x7f,
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]);
    word % 10u32.pow(digits.clamp(6, 8))
}

/// A shared TOTP secret. Zeroised on drop and redacted in `Debug`.
#[derive(Clone)]
pub struct Totp {
    secret: Zeroizing<Vec<u8>>,
    settings: Settings,
}

impl fmt::Debug for Totp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Totp")
            .field("secret", &"[redacted]")
            .field("settings", &self.settings)
            .finish()
    }
}

/// Bytes in a new secret: 160 bits, the HMAC-SHA-1 block RFC 4226 recommends.
pub const SECRET_BYTES: usize = 20;

impl Totp {
    /// A secret with the given settings.
    pub fn new(secret: Vec<u8>, settings: Settings) -> Self {
        Totp {
            secret: Zeroizing::new(secret),
            settings,
        }
    }

    /// A secret typed in base32 (as [`Totp::secret_base32`] writes it, padding and case
    /// optional); `None` when it is not base32.
    pub fn from_base32(text: &str, settings: Settings) -> Option<Self> {
        let clean: String = text
            .trim_end_matches('=')
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let secret = data_encoding::BASE32_NOPAD.decode(clean.as_bytes()).ok()?;
        Some(Totp::new(secret, settings))
    }

    /// A new random secret with [`Settings::STANDARD`].
    pub fn generate() -> Result<Self, DomainError> {
        let mut secret = Zeroizing::new(vec![0u8; SECRET_BYTES]);
        aws_lc_rs::rand::fill(&mut secret)
            .map_err(|e| DomainError::internal_because("random bytes", e))?;
        Ok(Totp {
            secret,
            settings: Settings::STANDARD,
        })
    }

    /// The secret's bytes, to be sealed for storage.
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }

    /// The settings.
    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// The secret in base32 without padding, as apps take it typed in.
    pub fn secret_base32(&self) -> Zeroizing<String> {
        Zeroizing::new(data_encoding::BASE32_NOPAD.encode(&self.secret))
    }

    /// The code of `step`, zero-padded to the digits of the settings.
    pub fn code_of_step(&self, step: u64) -> Zeroizing<String> {
        let s = &self.settings;
        let value = hotp(&self.secret, step, s.hash, s.digits);
        Zeroizing::new(format!("{value:0width$}", width = s.digits as usize))
    }

    /// The code at a Unix time in seconds.
    pub fn code_at(&self, unix_secs: i64) -> Zeroizing<String> {
        self.code_of_step(self.settings.step_at(unix_secs))
    }

    /// The step `code` matches at `now` (Unix seconds), within the settings' skew, and
    /// after `last_used` (the step of the last code accepted for this secret), if any.
    /// The caller stores the returned step as the new `last_used` before it accepts the
    /// code, atomically, so that a concurrent use of the same code has one winner. Every
    /// candidate step is compared, in constant time, whatever matched.
    pub fn verify(&self, code: &str, now: i64, last_used: Option<u64>) -> Option<u64> {
        let s = &self.settings;
        if code.len() != s.digits as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let now_step = s.step_at(now);
        let first = now_step.saturating_sub(u64::from(s.skew));
        let last = now_step.saturating_add(u64::from(s.skew));
        let mut matched = None;
        for step in first..=last {
            let expected = self.code_of_step(step);
            let equal =
                constant_time::verify_slices_are_equal(expected.as_bytes(), code.as_bytes())
                    .is_ok();
            let fresh = last_used.is_none_or(|used| step > used);
            if equal && fresh && matched.is_none() {
                matched = Some(step);
            }
        }
        matched
    }

    /// The `otpauth://totp/` URI an app reads from a QR code: `issuer` names the service,
    /// `account` the user, both shown by the app.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> Zeroizing<String> {
        let enc = |s: &str| {
            url::form_urlencoded::byte_serialize(s.as_bytes())
                .collect::<String>()
                .replace('+', "%20")
        };
        let s = &self.settings;
        Zeroizing::new(format!(
            "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm={}&digits={}&period={}",
            enc(issuer),
            enc(account),
            self.secret_base32().as_str(),
            enc(issuer),
            s.hash.uri_name(),
            s.digits,
            s.period,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA1_SEED: &[u8] = b"12345678901234567890";
    const SHA256_SEED: &[u8] = b"12345678901234567890123456789012";
    const SHA512_SEED: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

    /// RFC 4226 Appendix D: HOTP, SHA-1, 6 digits, counters 0 to 9.
    #[test]
    fn rfc4226_appendix_d() {
        let expected = [
            755_224, 287_082, 359_152, 969_429, 338_314, 254_676, 287_922, 162_583, 399_871,
            520_489,
        ];
        for (counter, want) in expected.into_iter().enumerate() {
            assert_eq!(hotp(SHA1_SEED, counter as u64, Hash::Sha1, 6), want);
        }
    }

    /// RFC 6238 Appendix B: TOTP, 8 digits, 30 s, each HMAC with its seed.
    #[test]
    fn rfc6238_appendix_b() {
        let table: [(i64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1_111_111_109, "07081804", "68084774", "25091201"),
            (1_111_111_111, "14050471", "67062674", "99943326"),
            (1_234_567_890, "89005924", "91819424", "93441116"),
            (2_000_000_000, "69279037", "90698825", "38618901"),
            (20_000_000_000, "65353130", "77737706", "47863826"),
        ];
        let with = |seed: &[u8], hash| {
            Totp::new(
                seed.to_vec(),
                Settings {
                    hash,
                    digits: 8,
                    ..Settings::STANDARD
                },
            )
        };
        let (sha1, sha256, sha512) = (
            with(SHA1_SEED, Hash::Sha1),
            with(SHA256_SEED, Hash::Sha256),
            with(SHA512_SEED, Hash::Sha512),
        );
        for (t, a, b, c) in table {
            assert_eq!(sha1.code_at(t).as_str(), a, "SHA-1 at {t}");
            assert_eq!(sha256.code_at(t).as_str(), b, "SHA-256 at {t}");
            assert_eq!(sha512.code_at(t).as_str(), c, "SHA-512 at {t}");
            // Verification accepts each at its own time.
            assert!(sha1.verify(a, t, None).is_some());
        }
    }

    fn standard() -> Totp {
        Totp::new(SHA1_SEED.to_vec(), Settings::STANDARD)
    }

    #[test]
    fn one_step_either_side_and_no_further() {
        let t = standard();
        let now = 1_700_000_000;
        for (offset, accepted) in [
            (-60, false),
            (-30, true),
            (0, true),
            (30, true),
            (60, false),
        ] {
            let code = t.code_at(now + offset);
            assert_eq!(
                t.verify(&code, now, None).is_some(),
                accepted,
                "a code from {offset} s away"
            );
        }
    }

    #[test]
    fn a_used_step_and_the_ones_before_it_are_refused() {
        let t = standard();
        let now = 1_700_000_000;
        let code = t.code_at(now);
        let step = t.verify(&code, now, None).expect("a fresh code");
        assert_eq!(step, Settings::STANDARD.step_at(now));
        assert_eq!(t.verify(&code, now, Some(step)), None, "replayed");
        assert_eq!(
            t.verify(&code, now + 20, Some(step)),
            None,
            "replayed later"
        );
        let earlier = t.code_at(now - 30);
        assert_eq!(t.verify(&earlier, now, Some(step)), None, "an older step");
        let next = t.code_at(now + 30);
        assert_eq!(t.verify(&next, now + 30, Some(step)), Some(step + 1));
    }

    #[test]
    fn malformed_codes_are_refused() {
        let t = standard();
        let now = 1_700_000_000;
        let code = t.code_at(now);
        for bad in ["", "12345", "1234567", "12345a", " 12345", "١٢٣٤٥٦"] {
            assert_eq!(t.verify(bad, now, None), None, "{bad:?}");
        }
        assert_eq!(t.verify(&format!("{} ", code.as_str()), now, None), None);
    }

    #[test]
    fn the_uri_names_the_standard_settings_and_encodes_names() {
        let t = standard();
        let uri = t.otpauth_uri("Wristband", "alice smith");
        assert_eq!(
            uri.as_str(),
            "otpauth://totp/Wristband:alice%20smith?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Wristband&algorithm=SHA1&digits=6&period=30"
        );
        assert!(!format!("{t:?}").contains("GEZDG"));
    }

    #[test]
    fn generated_secrets_are_fresh_and_full_length() {
        let a = Totp::generate().unwrap();
        let b = Totp::generate().unwrap();
        assert_eq!(a.secret().len(), SECRET_BYTES);
        assert_ne!(a.secret(), b.secret());
        assert_eq!(a.secret_base32().len(), 32);
    }
}
