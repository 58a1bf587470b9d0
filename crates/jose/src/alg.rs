//! The signature algorithms Wristband supports.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, ErrorKind};

/// A JWS signature algorithm (RFC 7518 / RFC 8037). Each key has exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256, RSA 2048 to 4096 bits.
    RS256,
    /// RSASSA-PSS with SHA-256 and MGF1-SHA-256, RSA 2048 to 4096 bits.
    PS256,
    /// ECDSA on P-256 with SHA-256, signature as 64-byte `R || S`.
    ES256,
    /// Ed25519 (RFC 8037).
    EdDSA,
    /// HMAC with SHA-256 and a secret of at least 32 bytes. Single-service setups only.
    HS256,
}

impl Algorithm {
    /// Every supported algorithm.
    pub const ALL: [Algorithm; 5] = [
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::ES256,
        Algorithm::EdDSA,
        Algorithm::HS256,
    ];

    /// The asymmetric algorithms: the default allow-list of a verifier.
    pub const ASYMMETRIC: [Algorithm; 4] = [
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::ES256,
        Algorithm::EdDSA,
    ];

    /// The name used in the JWS `alg` header and in JWKs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::PS256 => "PS256",
            Algorithm::ES256 => "ES256",
            Algorithm::EdDSA => "EdDSA",
            Algorithm::HS256 => "HS256",
        }
    }

    /// True for HS256, whose key is a shared secret.
    pub const fn is_symmetric(self) -> bool {
        matches!(self, Algorithm::HS256)
    }

    pub(crate) const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = Error;

    /// Parses an `alg` value. Matching is exact and case-sensitive (RFC 7515 §4.1.1).
    fn from_str(s: &str) -> Result<Self, Error> {
        Ok(match s {
            "RS256" => Algorithm::RS256,
            "PS256" => Algorithm::PS256,
            "ES256" => Algorithm::ES256,
            "EdDSA" => Algorithm::EdDSA,
            "HS256" => Algorithm::HS256,
            _ => return Err(Error::new(ErrorKind::AlgorithmNotAllowed)),
        })
    }
}

impl serde::Serialize for Algorithm {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Algorithm {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse()
            .map_err(|_| serde::de::Error::custom(format_args!("unsupported algorithm {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alg_names_are_case_sensitive() {
        for a in Algorithm::ALL {
            assert_eq!(a.as_str().parse::<Algorithm>().unwrap(), a);
        }
        for bad in ["hs256", "RS256 ", "none", "None", "ES512", ""] {
            assert!(bad.parse::<Algorithm>().is_err(), "{bad}");
        }
    }
}
