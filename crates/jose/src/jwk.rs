//! JSON Web Keys (RFC 7517) and key sets.

use serde::{Deserialize, Serialize};

use crate::secret::SecretString;

/// A JSON Web Key. Public members are plain strings; private members are [`SecretString`]s,
/// which never print and are zeroised on drop.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type: `RSA`, `EC`, `OKP` or `oct`.
    pub kty: String,
    /// Key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// The one algorithm this key is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Intended use; `sig` for Wristband keys.
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    /// Permitted operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_ops: Option<Vec<String>>,
    /// RSA modulus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA public exponent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// Curve name for `EC` and `OKP` keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// Public x coordinate (`EC`) or public key (`OKP`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// Public y coordinate (`EC`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// Private exponent (`RSA`) or private key (`EC`, `OKP`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d: Option<SecretString>,
    /// RSA first prime factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p: Option<SecretString>,
    /// RSA second prime factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<SecretString>,
    /// RSA first factor CRT exponent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dp: Option<SecretString>,
    /// RSA second factor CRT exponent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dq: Option<SecretString>,
    /// RSA first CRT coefficient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qi: Option<SecretString>,
    /// Symmetric key value (`oct`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<SecretString>,
    /// RSA "other primes": never supported, present only so that it can be refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oth: Option<serde_json::Value>,
}

impl Jwk {
    /// True when the key carries any private or symmetric material.
    pub fn has_private_material(&self) -> bool {
        self.d.is_some()
            || self.p.is_some()
            || self.q.is_some()
            || self.dp.is_some()
            || self.dq.is_some()
            || self.qi.is_some()
            || self.k.is_some()
            || self.oth.is_some()
            || self.kty == "oct"
    }

    /// A copy with every private member removed.
    pub fn to_public(&self) -> Jwk {
        Jwk {
            kty: self.kty.clone(),
            kid: self.kid.clone(),
            alg: self.alg.clone(),
            use_: self.use_.clone(),
            key_ops: self.key_ops.clone(),
            n: self.n.clone(),
            e: self.e.clone(),
            crv: self.crv.clone(),
            x: self.x.clone(),
            y: self.y.clone(),
            ..Jwk::default()
        }
    }

    /// The RFC 7638 thumbprint (SHA-256, base64url), or `None` when a required member is missing.
    pub fn thumbprint(&self) -> Option<String> {
        // Required members in lexicographic order, serialized without whitespace.
        let canonical = match self.kty.as_str() {
            "RSA" => {
                serde_json::json!({ "e": self.e.as_ref()?, "kty": "RSA", "n": self.n.as_ref()? })
            }
            "EC" => serde_json::json!({
                "crv": self.crv.as_ref()?, "kty": "EC", "x": self.x.as_ref()?, "y": self.y.as_ref()?
            }),
            "OKP" => {
                serde_json::json!({ "crv": self.crv.as_ref()?, "kty": "OKP", "x": self.x.as_ref()? })
            }
            "oct" => serde_json::json!({ "k": self.k.as_ref()?.expose(), "kty": "oct" }),
            _ => return None,
        };
        // serde_json's Map is ordered by key, so this is the canonical form.
        let bytes = serde_json::to_vec(&canonical).ok()?;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes);
        Some(crate::b64::encode(digest.as_ref()))
    }
}

/// A JSON Web Key Set. As published by Wristband it holds public keys only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    /// The keys.
    pub keys: Vec<Jwk>,
}

impl Jwks {
    /// Parses a JWKS document.
    pub fn from_slice(bytes: &[u8]) -> crate::Result<Self> {
        serde_json::from_slice(bytes)
            .map_err(|e| crate::Error::with_source(crate::ErrorKind::InvalidKey, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 §3.1
        let jwk: Jwk = serde_json::from_str(r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#).unwrap();
        assert_eq!(
            jwk.thumbprint().unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn public_copy_drops_private_members() {
        let jwk = Jwk {
            kty: "EC".into(),
            d: Some(SecretString::new("secret".into())),
            x: Some("x".into()),
            ..Jwk::default()
        };
        assert!(jwk.has_private_material());
        let public = jwk.to_public();
        assert!(!public.has_private_material());
        let text = serde_json::to_string(&public).unwrap();
        assert!(!text.contains("secret") && !text.contains("\"d\""));
        assert!(!format!("{jwk:?}").contains("secret"));
    }
}
