//! Signing and verifying keys: generation, PEM and JWK import and export, thumbprints.
//!
//! Every key has exactly one [`Algorithm`]. Keys are parsed once, when they are loaded, so
//! that signing and verifying only run the primitive.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::encoding::{AsBigEndian, AsDer};
use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPairComponents, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, ParsedPublicKey, RsaKeyPair, RsaParameters,
    RsaSubjectPublicKey,
};
use zeroize::Zeroizing;

use crate::alg::Algorithm;
use crate::b64;
use crate::error::{Error, ErrorKind, Result};
use crate::jwk::Jwk;
use crate::secret::{check_hmac_secret, SecretString};

/// Smallest RSA modulus accepted, in bits.
pub const RSA_MIN_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits (bounds the cost of a hostile JWKS, catalog E4).
pub const RSA_MAX_BITS: usize = 4096;

const PEM_PRIVATE: &str = "PRIVATE KEY";
const PEM_RSA_PRIVATE: &str = "RSA PRIVATE KEY";
const PEM_EC_PRIVATE: &str = "EC PRIVATE KEY";
const PEM_PUBLIC: &str = "PUBLIC KEY";
const PEM_RSA_PUBLIC: &str = "RSA PUBLIC KEY";

fn invalid_key() -> Error {
    Error::new(ErrorKind::InvalidKey)
}

fn key_err(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::with_source(ErrorKind::InvalidKey, e)
}

fn rsa_params(alg: Algorithm) -> &'static RsaParameters {
    match alg {
        Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        _ => &signature::RSA_PKCS1_2048_8192_SHA256,
    }
}

fn rsa_bits(n: &[u8]) -> usize {
    match n.iter().position(|&b| b != 0) {
        Some(i) => (n.len() - i - 1) * 8 + (8 - n[i].leading_zeros() as usize),
        None => 0,
    }
}

fn check_rsa_bits(bits: usize) -> Result<()> {
    if (RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
        Ok(())
    } else {
        Err(invalid_key())
    }
}

/// Decodes a JWK member that must be canonical base64url.
fn member(v: Option<&String>) -> Result<Vec<u8>> {
    b64::decode(v.ok_or_else(invalid_key)?).map_err(|_| invalid_key())
}

fn secret_member(v: Option<&SecretString>) -> Result<Zeroizing<Vec<u8>>> {
    let s = v.ok_or_else(invalid_key)?;
    b64::decode(s.expose())
        .map(Zeroizing::new)
        .map_err(|_| invalid_key())
}

fn parse_pem(text: &str) -> Result<pem::Pem> {
    pem::parse(text.trim()).map_err(key_err)
}

/// An HMAC secret: the prepared key, and the bytes for export. Zeroised on drop.
#[derive(Clone)]
struct HmacSecret {
    key: hmac::Key,
    bytes: Zeroizing<Vec<u8>>,
}

impl HmacSecret {
    fn new(secret: &[u8]) -> Result<Box<Self>> {
        check_hmac_secret(secret)?;
        Ok(Box::new(HmacSecret {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            bytes: Zeroizing::new(secret.to_vec()),
        }))
    }

    fn jwk(&self) -> Jwk {
        Jwk {
            kty: "oct".into(),
            k: Some(SecretString::new(b64::encode(&*self.bytes))),
            ..Jwk::default()
        }
    }
}

enum Material {
    Public(ParsedPublicKey),
    Hmac(Box<HmacSecret>),
}

struct VerifyingInner {
    alg: Algorithm,
    kid: String,
    material: Material,
    /// The public JWK, `None` for HS256.
    jwk: Option<Jwk>,
}

/// A key that checks signatures: a parsed public key, or an HS256 secret.
///
/// Cloning is cheap (the parsed key is shared).
#[derive(Clone)]
pub struct VerifyingKey(Arc<VerifyingInner>);

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("alg", &self.0.alg)
            .field("kid", &self.0.kid)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    fn from_parts(
        alg: Algorithm,
        material: Material,
        jwk: Option<Jwk>,
        kid: Option<String>,
    ) -> Result<Self> {
        let mut jwk = jwk;
        let thumb = match (&material, &jwk) {
            (Material::Hmac(s), _) => s.jwk().thumbprint(),
            (Material::Public(_), Some(j)) => j.thumbprint(),
            (Material::Public(_), None) => None,
        }
        .ok_or_else(invalid_key)?;
        let kid = kid.unwrap_or(thumb);
        if let Some(j) = &mut jwk {
            j.kid = Some(kid.clone());
            j.alg = Some(alg.as_str().to_owned());
            j.use_ = Some("sig".into());
            j.key_ops = None;
        }
        Ok(VerifyingKey(Arc::new(VerifyingInner {
            alg,
            kid,
            material,
            jwk,
        })))
    }

    fn rsa(alg: Algorithm, n: &[u8], e: &[u8], kid: Option<String>) -> Result<Self> {
        if n.first() == Some(&0) || e.first() == Some(&0) || e.is_empty() {
            return Err(invalid_key());
        }
        check_rsa_bits(rsa_bits(n))?;
        let parsed = PublicKeyComponents { n, e }
            .to_parsed_public_key(rsa_params(alg))
            .map_err(key_err)?;
        let jwk = Jwk {
            kty: "RSA".into(),
            n: Some(b64::encode(n)),
            e: Some(b64::encode(e)),
            ..Jwk::default()
        };
        Self::from_parts(alg, Material::Public(parsed), Some(jwk), kid)
    }

    fn ec(point: &[u8], kid: Option<String>) -> Result<Self> {
        if point.len() != 65 || point[0] != 4 {
            return Err(invalid_key());
        }
        let parsed =
            ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point).map_err(key_err)?;
        let jwk = Jwk {
            kty: "EC".into(),
            crv: Some("P-256".into()),
            x: Some(b64::encode(&point[1..33])),
            y: Some(b64::encode(&point[33..])),
            ..Jwk::default()
        };
        Self::from_parts(Algorithm::ES256, Material::Public(parsed), Some(jwk), kid)
    }

    fn ed25519(public: &[u8], kid: Option<String>) -> Result<Self> {
        if public.len() != 32 {
            return Err(invalid_key());
        }
        let parsed = ParsedPublicKey::new(&signature::ED25519, public).map_err(key_err)?;
        let jwk = Jwk {
            kty: "OKP".into(),
            crv: Some("Ed25519".into()),
            x: Some(b64::encode(public)),
            ..Jwk::default()
        };
        Self::from_parts(Algorithm::EdDSA, Material::Public(parsed), Some(jwk), kid)
    }

    /// An HS256 verifying key from a shared secret (at least 32 bytes, not a known value).
    pub fn hs256(secret: &[u8]) -> Result<Self> {
        Self::from_parts(
            Algorithm::HS256,
            Material::Hmac(HmacSecret::new(secret)?),
            None,
            None,
        )
    }

    /// Imports a JWK. The JWK must name its `alg`, except for EC P-256 and Ed25519 keys,
    /// whose algorithm follows from the curve. Private members, if any, are ignored, except
    /// `k` of an `oct` key, which is the HS256 secret.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self> {
        let alg = match (&jwk.alg, jwk.kty.as_str(), jwk.crv.as_deref()) {
            (Some(a), _, _) => a.parse()?,
            (None, "EC", Some("P-256")) => Algorithm::ES256,
            (None, "OKP", Some("Ed25519")) => Algorithm::EdDSA,
            _ => return Err(Error::new(ErrorKind::AlgorithmNotAllowed)),
        };
        Self::from_jwk_as(jwk, alg)
    }

    /// Imports a JWK for the given algorithm; refuses a JWK whose own `alg` differs.
    pub fn from_jwk_as(jwk: &Jwk, alg: Algorithm) -> Result<Self> {
        if let Some(a) = &jwk.alg {
            if a != alg.as_str() {
                return Err(Error::new(ErrorKind::AlgorithmMismatch));
            }
        }
        if let Some(u) = &jwk.use_ {
            if u != "sig" {
                return Err(invalid_key());
            }
        }
        if let Some(ops) = &jwk.key_ops {
            if !ops.iter().any(|o| o == "verify") {
                return Err(invalid_key());
            }
        }
        let kid = jwk.kid.clone();
        match (alg, jwk.kty.as_str()) {
            (Algorithm::RS256 | Algorithm::PS256, "RSA") => {
                if jwk.oth.is_some() {
                    return Err(invalid_key());
                }
                Self::rsa(alg, &member(jwk.n.as_ref())?, &member(jwk.e.as_ref())?, kid)
            }
            (Algorithm::ES256, "EC") => {
                if jwk.crv.as_deref() != Some("P-256") {
                    return Err(invalid_key());
                }
                let (x, y) = (member(jwk.x.as_ref())?, member(jwk.y.as_ref())?);
                if x.len() != 32 || y.len() != 32 {
                    return Err(invalid_key());
                }
                let mut point = Vec::with_capacity(65);
                point.push(4);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                Self::ec(&point, kid)
            }
            (Algorithm::EdDSA, "OKP") => {
                if jwk.crv.as_deref() != Some("Ed25519") {
                    return Err(invalid_key());
                }
                Self::ed25519(&member(jwk.x.as_ref())?, kid)
            }
            (Algorithm::HS256, "oct") => {
                let secret = secret_member(jwk.k.as_ref())?;
                let key =
                    Self::from_parts(alg, Material::Hmac(HmacSecret::new(&secret)?), None, kid)?;
                Ok(key)
            }
            _ => Err(invalid_key()),
        }
    }

    /// Imports a public key from PEM: SPKI (`PUBLIC KEY`) for every algorithm, or PKCS#1
    /// (`RSA PUBLIC KEY`) for RSA.
    pub fn from_public_pem(alg: Algorithm, pem_text: &str) -> Result<Self> {
        let pem = parse_pem(pem_text)?;
        match (pem.tag(), alg) {
            (PEM_PUBLIC | PEM_RSA_PUBLIC, Algorithm::RS256 | Algorithm::PS256) => {
                let pk = RsaSubjectPublicKey::from_der(pem.contents()).map_err(key_err)?;
                Self::rsa(
                    alg,
                    pk.modulus().big_endian_without_leading_zero(),
                    pk.exponent().big_endian_without_leading_zero(),
                    None,
                )
            }
            (PEM_PUBLIC, Algorithm::ES256) => {
                let parsed =
                    ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, pem.contents())
                        .map_err(key_err)?;
                let der = parsed.as_der().map_err(key_err)?;
                let der = der.as_ref();
                // Canonical P-256 SPKI ends with the 65-byte uncompressed point.
                let point = der
                    .get(der.len().saturating_sub(65)..)
                    .ok_or_else(invalid_key)?;
                Self::ec(point, None)
            }
            (PEM_PUBLIC, Algorithm::EdDSA) => {
                let parsed =
                    ParsedPublicKey::new(&signature::ED25519, pem.contents()).map_err(key_err)?;
                let der = parsed.as_der().map_err(key_err)?;
                let der = der.as_ref();
                let raw = der
                    .get(der.len().saturating_sub(32)..)
                    .ok_or_else(invalid_key)?;
                Self::ed25519(raw, None)
            }
            _ => Err(invalid_key()),
        }
    }

    /// The algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.0.alg
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.0.kid
    }

    /// The public JWK (with `kid`, `alg` and `use`), or `None` for an HS256 secret, which
    /// must never be published.
    pub fn to_jwk(&self) -> Option<&Jwk> {
        self.0.jwk.as_ref()
    }

    /// The public key as SPKI PEM; an error for HS256.
    pub fn to_public_pem(&self) -> Result<String> {
        match &self.0.material {
            Material::Public(p) => {
                let der = p
                    .as_der()
                    .map_err(|e| Error::with_source(ErrorKind::Crypto, e))?;
                Ok(pem::encode(&pem::Pem::new(
                    PEM_PUBLIC,
                    der.as_ref().to_vec(),
                )))
            }
            Material::Hmac(_) => Err(invalid_key()),
        }
    }

    /// A copy of this key under another `kid`.
    pub fn with_kid(&self, kid: impl Into<String>) -> Self {
        let kid = kid.into();
        let mut jwk = self.0.jwk.clone();
        if let Some(j) = &mut jwk {
            j.kid = Some(kid.clone());
        }
        let material = match &self.0.material {
            Material::Public(p) => Material::Public(p.clone()),
            Material::Hmac(h) => Material::Hmac(h.clone()),
        };
        VerifyingKey(Arc::new(VerifyingInner {
            alg: self.0.alg,
            kid,
            material,
            jwk,
        }))
    }

    /// Checks `signature` over `message`. HMAC tags are compared in constant time.
    pub fn verify_signature(&self, message: &[u8], signature: &[u8]) -> Result<()> {
        let ok = match &self.0.material {
            Material::Public(p) => p.verify_sig(message, signature).is_ok(),
            Material::Hmac(h) => hmac::verify(&h.key, message, signature).is_ok(),
        };
        if ok {
            Ok(())
        } else {
            Err(Error::new(ErrorKind::BadSignature))
        }
    }
}

enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    Hmac(Box<HmacSecret>),
}

/// A private key (or HS256 secret) that signs access tokens.
///
/// Private material is zeroised on drop and never printed: `Debug` shows only the
/// algorithm and `kid`.
pub struct SigningKey {
    signer: Signer,
    public: VerifyingKey,
    /// `base64url({"alg":…,"typ":"at+jwt","kid":…})`, computed once.
    header_b64: String,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.algorithm())
            .field("kid", &self.kid())
            .field("private", &format_args!("[redacted]"))
            .finish()
    }
}

impl SigningKey {
    fn from_signer(alg: Algorithm, signer: Signer, kid: Option<String>) -> Result<Self> {
        let public = match &signer {
            Signer::Rsa(pair) => {
                let pk = pair.public_key();
                VerifyingKey::rsa(
                    alg,
                    pk.modulus().big_endian_without_leading_zero(),
                    pk.exponent().big_endian_without_leading_zero(),
                    kid,
                )?
            }
            Signer::Ec(pair) => VerifyingKey::ec(pair.public_key().as_ref(), kid)?,
            Signer::Ed(pair) => VerifyingKey::ed25519(pair.public_key().as_ref(), kid)?,
            Signer::Hmac(h) => VerifyingKey::from_parts(alg, Material::Hmac(h.clone()), None, kid)?,
        };
        let header_b64 = Self::header_for(alg, public.kid());
        Ok(SigningKey {
            signer,
            public,
            header_b64,
        })
    }

    fn header_for(alg: Algorithm, kid: &str) -> String {
        let header = serde_json::json!({ "alg": alg.as_str(), "typ": "at+jwt", "kid": kid });
        b64::encode(header.to_string())
    }

    /// Generates a new key: RSA 2048 for RS256/PS256, P-256, Ed25519, or 32 random bytes.
    pub fn generate(alg: Algorithm) -> Result<Self> {
        Self::generate_with_rsa_bits(alg, 2048)
    }

    /// Like [`SigningKey::generate`], choosing the RSA size (2048, 3072 or 4096).
    pub fn generate_with_rsa_bits(alg: Algorithm, rsa_bits: usize) -> Result<Self> {
        let crypto = |e| Error::with_source(ErrorKind::Crypto, e);
        let signer = match alg {
            Algorithm::RS256 | Algorithm::PS256 => {
                let size = match rsa_bits {
                    2048 => KeySize::Rsa2048,
                    3072 => KeySize::Rsa3072,
                    4096 => KeySize::Rsa4096,
                    _ => return Err(invalid_key()),
                };
                Signer::Rsa(RsaKeyPair::generate(size).map_err(crypto)?)
            }
            Algorithm::ES256 => Signer::Ec(
                EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
                    .map_err(crypto)?,
            ),
            Algorithm::EdDSA => Signer::Ed(Ed25519KeyPair::generate().map_err(crypto)?),
            Algorithm::HS256 => {
                let mut secret = Zeroizing::new([0u8; 32]);
                aws_lc_rs::rand::fill(&mut secret[..]).map_err(crypto)?;
                Signer::Hmac(HmacSecret::new(&secret[..])?)
            }
        };
        Self::from_signer(alg, signer, None)
    }

    /// An HS256 key from a shared secret: at least 32 bytes, not a known or low-entropy value.
    pub fn hs256(secret: &[u8]) -> Result<Self> {
        Self::from_signer(
            Algorithm::HS256,
            Signer::Hmac(HmacSecret::new(secret)?),
            None,
        )
    }

    /// Imports a private key from PEM: PKCS#8 (`PRIVATE KEY`) for every asymmetric
    /// algorithm, PKCS#1 (`RSA PRIVATE KEY`) and SEC 1 (`EC PRIVATE KEY`) too.
    pub fn from_pem(alg: Algorithm, pem_text: &str) -> Result<Self> {
        let pem = parse_pem(pem_text)?;
        let tag = pem.tag().to_owned();
        let der = Zeroizing::new(pem.into_contents());
        let signer = match (alg, tag.as_str()) {
            (Algorithm::RS256 | Algorithm::PS256, PEM_PRIVATE | PEM_RSA_PRIVATE) => {
                let pair = if tag == PEM_PRIVATE {
                    RsaKeyPair::from_pkcs8(&der)
                } else {
                    RsaKeyPair::from_der(&der)
                }
                .map_err(key_err)?;
                check_rsa_bits(pair.public_modulus_len() * 8)?;
                Signer::Rsa(pair)
            }
            (Algorithm::ES256, PEM_PRIVATE | PEM_EC_PRIVATE) => {
                let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
                Signer::Ec(
                    if tag == PEM_PRIVATE {
                        EcdsaKeyPair::from_pkcs8(alg, &der)
                    } else {
                        EcdsaKeyPair::from_private_key_der(alg, &der)
                    }
                    .map_err(key_err)?,
                )
            }
            (Algorithm::EdDSA, PEM_PRIVATE) => {
                Signer::Ed(Ed25519KeyPair::from_pkcs8(&der).map_err(key_err)?)
            }
            _ => return Err(invalid_key()),
        };
        Self::from_signer(alg, signer, None)
    }

    /// Imports a private JWK (`d` and friends, or `k` for `oct`).
    pub fn from_jwk(jwk: &Jwk) -> Result<Self> {
        let alg: Algorithm = match &jwk.alg {
            Some(a) => a.parse()?,
            None => VerifyingKey::from_jwk(&jwk.to_public())?.algorithm(),
        };
        let kid = jwk.kid.clone();
        let signer = match (alg, jwk.kty.as_str()) {
            (Algorithm::RS256 | Algorithm::PS256, "RSA") => {
                if jwk.oth.is_some() {
                    return Err(invalid_key());
                }
                let n = member(jwk.n.as_ref())?;
                check_rsa_bits(rsa_bits(&n))?;
                let e = member(jwk.e.as_ref())?;
                let d = secret_member(jwk.d.as_ref())?;
                let p = secret_member(jwk.p.as_ref())?;
                let q = secret_member(jwk.q.as_ref())?;
                let dp = secret_member(jwk.dp.as_ref())?;
                let dq = secret_member(jwk.dq.as_ref())?;
                let qi = secret_member(jwk.qi.as_ref())?;
                let components = KeyPairComponents {
                    public_key: PublicKeyComponents {
                        n: &n[..],
                        e: &e[..],
                    },
                    d: &d[..],
                    p: &p[..],
                    q: &q[..],
                    dP: &dp[..],
                    dQ: &dq[..],
                    qInv: &qi[..],
                };
                Signer::Rsa(RsaKeyPair::from_components(&components).map_err(key_err)?)
            }
            (Algorithm::ES256, "EC") => {
                let public = VerifyingKey::from_jwk_as(&jwk.to_public(), alg)?;
                let d = secret_member(jwk.d.as_ref())?;
                let (x, y) = (member(jwk.x.as_ref())?, member(jwk.y.as_ref())?);
                let mut point = vec![4u8];
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                drop(public);
                Signer::Ec(
                    EcdsaKeyPair::from_private_key_and_public_key(
                        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                        &d,
                        &point,
                    )
                    .map_err(key_err)?,
                )
            }
            (Algorithm::EdDSA, "OKP") => {
                if jwk.crv.as_deref() != Some("Ed25519") {
                    return Err(invalid_key());
                }
                let d = secret_member(jwk.d.as_ref())?;
                let x = member(jwk.x.as_ref())?;
                Signer::Ed(Ed25519KeyPair::from_seed_and_public_key(&d, &x).map_err(key_err)?)
            }
            (Algorithm::HS256, "oct") => {
                Signer::Hmac(HmacSecret::new(&secret_member(jwk.k.as_ref())?)?)
            }
            _ => return Err(invalid_key()),
        };
        Self::from_signer(alg, signer, kid)
    }

    /// A copy of this key under another `kid` (the default is the RFC 7638 thumbprint).
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.public = self.public.with_kid(kid);
        self.header_b64 = Self::header_for(self.algorithm(), self.public.kid());
        self
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.public.algorithm()
    }

    /// The key id, by default the RFC 7638 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        self.public.kid()
    }

    /// The matching verifying key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.public
    }

    /// The private key as PKCS#8 PEM (an error for HS256, whose secret exports only as JWK).
    pub fn to_pem(&self) -> Result<Zeroizing<String>> {
        let crypto = |e| Error::with_source(ErrorKind::Crypto, e);
        let der: Zeroizing<Vec<u8>> = match &self.signer {
            Signer::Rsa(p) => Zeroizing::new(p.as_der().map_err(crypto)?.as_ref().to_vec()),
            Signer::Ec(p) => Zeroizing::new(p.to_pkcs8v1().map_err(crypto)?.as_ref().to_vec()),
            Signer::Ed(p) => Zeroizing::new(p.to_pkcs8v1().map_err(crypto)?.as_ref().to_vec()),
            Signer::Hmac(_) => return Err(invalid_key()),
        };
        Ok(Zeroizing::new(pem::encode(&pem::Pem::new(
            PEM_PRIVATE,
            der.to_vec(),
        ))))
    }

    /// The private key as a JWK, with `kid`, `alg` and `use`.
    pub fn to_private_jwk(&self) -> Result<Jwk> {
        let crypto = |e| Error::with_source(ErrorKind::Crypto, e);
        let secret = |b: &[u8]| Some(SecretString::new(b64::encode(b)));
        let mut jwk = match &self.signer {
            Signer::Hmac(h) => h.jwk(),
            Signer::Rsa(p) => {
                let der = p.as_der().map_err(crypto)?;
                let [_, _, d, pp, q, dp, dq, qi] =
                    crate::der::rsa_private_components(der.as_ref())?;
                let mut jwk = self.public.to_jwk().cloned().ok_or_else(invalid_key)?;
                jwk.d = secret(d);
                jwk.p = secret(pp);
                jwk.q = secret(q);
                jwk.dp = secret(dp);
                jwk.dq = secret(dq);
                jwk.qi = secret(qi);
                jwk
            }
            Signer::Ec(p) => {
                let d = p.private_key().as_be_bytes().map_err(crypto)?;
                let mut jwk = self.public.to_jwk().cloned().ok_or_else(invalid_key)?;
                jwk.d = secret(d.as_ref());
                jwk
            }
            Signer::Ed(p) => {
                let seed = p.seed().map_err(crypto)?;
                let seed = seed.as_be_bytes().map_err(crypto)?;
                let mut jwk = self.public.to_jwk().cloned().ok_or_else(invalid_key)?;
                jwk.d = secret(seed.as_ref());
                jwk
            }
        };
        jwk.kid = Some(self.kid().to_owned());
        jwk.alg = Some(self.algorithm().as_str().to_owned());
        jwk.use_ = Some("sig".into());
        Ok(jwk)
    }

    /// The encoded protected header of every token this key signs.
    pub(crate) fn header_b64(&self) -> &str {
        &self.header_b64
    }

    /// Signs `message` (a JWS signing input) and returns the raw signature.
    pub fn sign_bytes(&self, message: &[u8]) -> Result<Vec<u8>> {
        let crypto = |e| Error::with_source(ErrorKind::Crypto, e);
        Ok(match &self.signer {
            Signer::Rsa(pair) => {
                let padding: &'static dyn signature::RsaEncoding = match self.algorithm() {
                    Algorithm::PS256 => &signature::RSA_PSS_SHA256,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(padding, &SystemRandom::new(), message, &mut sig)
                    .map_err(crypto)?;
                sig
            }
            Signer::Ec(pair) => pair
                .sign(&SystemRandom::new(), message)
                .map_err(crypto)?
                .as_ref()
                .to_vec(),
            Signer::Ed(pair) => pair.sign(message).as_ref().to_vec(),
            Signer::Hmac(h) => hmac::sign(&h.key, message).as_ref().to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_pem_and_jwk() {
        for alg in Algorithm::ALL {
            let key = SigningKey::generate(alg).unwrap();
            let msg = b"hello";
            let sig = key.sign_bytes(msg).unwrap();
            key.verifying_key().verify_signature(msg, &sig).unwrap();

            let jwk = key.to_private_jwk().unwrap();
            let again = SigningKey::from_jwk(&jwk).unwrap();
            assert_eq!(again.kid(), key.kid());
            again.verifying_key().verify_signature(msg, &sig).unwrap();

            if alg.is_symmetric() {
                assert!(key.verifying_key().to_jwk().is_none());
                assert!(key.to_pem().is_err());
                continue;
            }
            let pem = key.to_pem().unwrap();
            let again = SigningKey::from_pem(alg, &pem).unwrap();
            assert_eq!(again.kid(), key.kid());
            let public = key.verifying_key().to_jwk().unwrap();
            assert!(!public.has_private_material());
            let vk = VerifyingKey::from_jwk(public).unwrap();
            vk.verify_signature(msg, &sig).unwrap();
            assert_eq!(vk.kid(), key.kid());
            let spki = key.verifying_key().to_public_pem().unwrap();
            let vk = VerifyingKey::from_public_pem(alg, &spki).unwrap();
            assert_eq!(vk.kid(), key.kid(), "{alg}");
            assert!(vk.verify_signature(b"other", &sig).is_err());
        }
    }

    #[test]
    fn debug_never_shows_private_material() {
        let key = SigningKey::generate(Algorithm::HS256).unwrap();
        let jwk = key.to_private_jwk().unwrap();
        let k = jwk.k.as_ref().unwrap().expose().to_owned();
        assert!(!format!("{key:?}").contains(&k));
        assert!(!format!("{jwk:?}").contains(&k));
        assert!(!format!("{:?}", key.verifying_key()).contains(&k));
    }

    #[test]
    fn rsa_size_bounds() {
        assert_eq!(rsa_bits(&[0x80, 0]), 16);
        assert_eq!(rsa_bits(&[0x01, 0]), 9);
        assert!(check_rsa_bits(1024).is_err());
        assert!(check_rsa_bits(8192).is_err());
        assert!(SigningKey::generate_with_rsa_bits(Algorithm::RS256, 1024).is_err());
    }
}
