//! [`SigningKey`]: generation, PEM and JWK import and export, and signing.

use super::*;

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
        let mut buf = [0u8; MAX_SIGNATURE_LEN];
        let n = self.sign_into(message, &mut buf)?;
        Ok(buf.get(..n).unwrap_or_default().to_vec())
    }

    /// Signs `message` into `out` and returns the signature's length.
    pub(crate) fn sign_into(
        &self,
        message: &[u8],
        out: &mut [u8; MAX_SIGNATURE_LEN],
    ) -> Result<usize> {
        let crypto = |e| Error::with_source(ErrorKind::Crypto, e);
        let copy = |sig: &[u8], out: &mut [u8; MAX_SIGNATURE_LEN]| -> Result<usize> {
            let dest = out.get_mut(..sig.len()).ok_or_else(invalid_key)?;
            dest.copy_from_slice(sig);
            Ok(sig.len())
        };
        match &self.signer {
            Signer::Rsa(pair) => {
                let padding: &'static dyn signature::RsaEncoding = match self.algorithm() {
                    Algorithm::PS256 => &signature::RSA_PSS_SHA256,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                let n = pair.public_modulus_len();
                let sig = out.get_mut(..n).ok_or_else(invalid_key)?;
                pair.sign(padding, &SystemRandom::new(), message, sig)
                    .map_err(crypto)?;
                Ok(n)
            }
            Signer::Ec(pair) => copy(
                pair.sign(&SystemRandom::new(), message)
                    .map_err(crypto)?
                    .as_ref(),
                out,
            ),
            Signer::Ed(pair) => copy(pair.sign(message).as_ref(), out),
            Signer::Hmac(h) => copy(hmac::sign(&h.key, message).as_ref(), out),
        }
    }
}
