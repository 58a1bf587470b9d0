//! Sign and verify per algorithm, in one run: Wristband, the bare aws-lc-rs primitive on
//! the same bytes, and `jsonwebtoken` 12 (aws-lc-rs backend) on the same token.
//!
//! ```text
//! cargo bench -p wristband-jose --bench jose -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Groups are `verify/<ALG>` and `sign/<ALG>`, each with the functions `wristband`, `raw`
//! and `jsonwebtoken`. The set-up checks that all three agree on the same token (interop)
//! and stops loudly if they do not.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::time::Duration;
use wristband_jose::Clock as _;

use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, Ed25519KeyPair, ParsedPublicKey, RsaEncoding, RsaKeyPair,
};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::Value;
use wristband_jose::{
    b64, sign, Algorithm, Claims, KeySet, Policy, SigningKey, UnixTime, UnverifiedToken,
};

const ISS: &str = "https://auth.example.com";
const AUD: &str = "https://api.example.com/orders";

/// The bare primitive that checks a signature, parsed once.
enum RawVerifier {
    Public(ParsedPublicKey),
    Hmac(Box<hmac::Key>),
}

impl RawVerifier {
    fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            RawVerifier::Public(key) => key.verify_sig(message, signature).is_ok(),
            RawVerifier::Hmac(key) => hmac::verify(key, message, signature).is_ok(),
        }
    }
}

/// The bare primitive that signs, parsed once.
enum RawSigner {
    Rsa(RsaKeyPair, &'static dyn RsaEncoding),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    Hmac(Box<hmac::Key>),
}

impl RawSigner {
    fn sign(&self, rng: &SystemRandom, message: &[u8]) -> Vec<u8> {
        match self {
            RawSigner::Rsa(pair, padding) => {
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(*padding, rng, message, &mut sig).unwrap();
                sig
            }
            RawSigner::Ec(pair) => pair.sign(rng, message).unwrap().as_ref().to_vec(),
            RawSigner::Ed(pair) => pair.sign(message).as_ref().to_vec(),
            RawSigner::Hmac(key) => hmac::sign(key, message).as_ref().to_vec(),
        }
    }
}

/// One algorithm's key, token and the three implementations' prepared state.
struct Fixture {
    key: SigningKey,
    claims: Claims,
    keys: KeySet,
    policy: Policy,
    now: UnixTime,
    token: String,
    signing_input: Vec<u8>,
    signature: Vec<u8>,
    rng: SystemRandom,
    raw_verifier: RawVerifier,
    raw_signer: RawSigner,
    jwt_decoding: jsonwebtoken::DecodingKey,
    jwt_encoding: jsonwebtoken::EncodingKey,
    jwt_validation: jsonwebtoken::Validation,
    jwt_header: jsonwebtoken::Header,
}

/// A realistic RFC 9068 access token's claims, issued at `iat`.
fn access_token_claims(iat: UnixTime) -> Claims {
    Claims::new(
        ISS,
        "user-7f3a9c2e-5d1b-4e8a-9f60-2b7c1d4e8a90",
        AUD,
        iat,
        Duration::from_secs(15 * 60),
    )
    .with_client_id("web-app")
    .with_role("editor")
    .with_sid("s-4b9e1f0c2a7d")
    .with_scope("orders:read orders:write profile")
}

/// The RSAPrivateKey (PKCS#1) inside a PKCS#8 PrivateKeyInfo: without its PEM feature,
/// jsonwebtoken takes RSA private keys only as PKCS#1 DER.
fn pkcs8_to_pkcs1(der: &[u8]) -> Vec<u8> {
    /// One DER element: (tag, contents, rest).
    fn tlv(input: &[u8]) -> (u8, &[u8], &[u8]) {
        let (len, header) = match input[1] {
            l if l < 0x80 => (usize::from(l), 2),
            0x81 => (usize::from(input[2]), 3),
            0x82 => ((usize::from(input[2]) << 8) | usize::from(input[3]), 4),
            other => panic!("unexpected DER length byte {other:#x}"),
        };
        (
            input[0],
            &input[header..header + len],
            &input[header + len..],
        )
    }
    let (tag, info, _) = tlv(der);
    assert_eq!(tag, 0x30, "PrivateKeyInfo is a SEQUENCE");
    let (_, _version, rest) = tlv(info);
    let (_, _algorithm, rest) = tlv(rest);
    let (tag, key, _) = tlv(rest);
    assert_eq!(tag, 0x04, "privateKey is an OCTET STRING");
    key.to_vec()
}

fn pem_der(text: &str) -> Vec<u8> {
    pem::parse(text).unwrap().into_contents()
}

/// The raw primitives and jsonwebtoken's keys, from the key material of `key` exported
/// and imported again.
fn raw_keys(
    key: &SigningKey,
    alg: Algorithm,
) -> (
    RawVerifier,
    RawSigner,
    jsonwebtoken::DecodingKey,
    jsonwebtoken::EncodingKey,
) {
    if alg.is_symmetric() {
        let jwk = key.to_private_jwk().unwrap();
        let secret = b64::decode(jwk.k.as_ref().unwrap().expose()).unwrap();
        (
            RawVerifier::Hmac(Box::new(hmac::Key::new(hmac::HMAC_SHA256, &secret))),
            RawSigner::Hmac(Box::new(hmac::Key::new(hmac::HMAC_SHA256, &secret))),
            jsonwebtoken::DecodingKey::from_secret(&secret).unwrap(),
            jsonwebtoken::EncodingKey::from_secret(&secret).unwrap(),
        )
    } else {
        let pkcs8 = pem_der(&key.to_pem().unwrap());
        let spki = pem_der(&key.verifying_key().to_public_pem().unwrap());
        let (verify_alg, signer, encoding): (
            &'static dyn signature::VerificationAlgorithm,
            RawSigner,
            jsonwebtoken::EncodingKey,
        ) = match alg {
            Algorithm::RS256 | Algorithm::PS256 => {
                let (params, padding): (_, &'static dyn RsaEncoding) = if alg == Algorithm::PS256 {
                    (
                        &signature::RSA_PSS_2048_8192_SHA256,
                        &signature::RSA_PSS_SHA256,
                    )
                } else {
                    (
                        &signature::RSA_PKCS1_2048_8192_SHA256,
                        &signature::RSA_PKCS1_SHA256,
                    )
                };
                (
                    params,
                    RawSigner::Rsa(RsaKeyPair::from_pkcs8(&pkcs8).unwrap(), padding),
                    jsonwebtoken::EncodingKey::from_rsa_der(&pkcs8_to_pkcs1(&pkcs8)),
                )
            }
            Algorithm::ES256 => (
                &signature::ECDSA_P256_SHA256_FIXED,
                RawSigner::Ec(
                    EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8)
                        .unwrap(),
                ),
                jsonwebtoken::EncodingKey::from_ec_der(&pkcs8),
            ),
            Algorithm::EdDSA => (
                &signature::ED25519,
                RawSigner::Ed(Ed25519KeyPair::from_pkcs8(&pkcs8).unwrap()),
                jsonwebtoken::EncodingKey::from_ed_der(&pkcs8),
            ),
            Algorithm::HS256 => unreachable!(),
        };
        // jsonwebtoken reads the published JWK, as a service reading a JWKS would.
        let public_jwk = serde_json::to_string(key.verifying_key().to_jwk().unwrap()).unwrap();
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_str(&public_jwk).unwrap();
        (
            RawVerifier::Public(ParsedPublicKey::new(verify_alg, &spki).unwrap()),
            signer,
            jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(),
            encoding,
        )
    }
}

/// jsonwebtoken's validation and header for `alg`, with the `kid` of the signing key.
fn jwt_settings(alg: Algorithm, kid: &str) -> (jsonwebtoken::Validation, jsonwebtoken::Header) {
    let jwt_alg = match alg {
        Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
        Algorithm::PS256 => jsonwebtoken::Algorithm::PS256,
        Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
        Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        Algorithm::HS256 => jsonwebtoken::Algorithm::HS256,
    };
    // As strict as jsonwebtoken gets: it ignores `iat` and `jti` in the required list
    // and never checks `typ`, so it still does less than Wristband.
    let mut jwt_validation = jsonwebtoken::Validation::new(jwt_alg);
    jwt_validation.set_issuer(&[ISS]);
    jwt_validation.set_audience(&[AUD]);
    jwt_validation.set_required_spec_claims(&["exp", "iat", "sub", "jti", "iss", "aud"]);
    jwt_validation.validate_nbf = true;
    jwt_validation.leeway = 0;
    let mut jwt_header = jsonwebtoken::Header::new(jwt_alg);
    jwt_header.typ = Some("at+jwt".into());
    jwt_header.kid = Some(kid.to_owned());
    (jwt_validation, jwt_header)
}

impl Fixture {
    fn new(alg: Algorithm) -> Self {
        let key = SigningKey::generate(alg).unwrap();
        // jsonwebtoken checks `exp` against the system clock, so the token is issued now
        // (and lives 15 minutes, far longer than the run).
        let iat = wristband_jose::SystemClock.now();
        let now = UnixTime::from_secs(iat.as_secs() + 1);
        let claims = access_token_claims(iat);
        let token = sign(&key, &claims).unwrap();
        let (signing_input, signature_b64) = token.rsplit_once('.').unwrap();
        let signing_input = signing_input.as_bytes().to_vec();
        let signature = b64::decode(signature_b64).unwrap();

        let keys = KeySet::from_keys([key.verifying_key().clone()]).unwrap();
        let algorithms: &[Algorithm] = if alg.is_symmetric() {
            &[Algorithm::HS256]
        } else {
            &Algorithm::ASYMMETRIC
        };
        let policy = Policy::builder(ISS, AUD)
            .algorithms(algorithms)
            .build()
            .unwrap();

        let (raw_verifier, raw_signer, jwt_decoding, jwt_encoding) = raw_keys(&key, alg);
        let (jwt_validation, jwt_header) = jwt_settings(alg, key.kid());

        let fixture = Fixture {
            key,
            claims,
            keys,
            policy,
            now,
            token,
            signing_input,
            signature,
            rng: SystemRandom::new(),
            raw_verifier,
            raw_signer,
            jwt_decoding,
            jwt_encoding,
            jwt_validation,
            jwt_header,
        };
        fixture.check_interop(alg);
        fixture
    }

    fn verify_wristband(&self, token: &str) -> wristband_jose::Result<()> {
        UnverifiedToken::parse(token)?
            .verify(&self.keys, &self.policy, self.now)
            .map(drop)
    }

    /// All three implementations accept the token and each other's signatures; a
    /// failure here would make the numbers meaningless, so it stops the run.
    fn check_interop(&self, alg: Algorithm) {
        self.verify_wristband(&self.token)
            .unwrap_or_else(|e| panic!("{alg}: Wristband rejects its own token: {e:?}"));
        assert!(
            self.raw_verifier
                .verify(&self.signing_input, &self.signature),
            "{alg}: the raw primitive rejects Wristband's signature"
        );
        let decoded =
            jsonwebtoken::decode::<Value>(&self.token, &self.jwt_decoding, &self.jwt_validation)
                .unwrap_or_else(|e| panic!("{alg}: jsonwebtoken rejects Wristband's token: {e}"));
        assert_eq!(
            decoded.claims,
            serde_json::to_value(&self.claims).unwrap(),
            "{alg}: jsonwebtoken reads different claims"
        );
        let theirs = jsonwebtoken::encode(&self.jwt_header, &self.claims, &self.jwt_encoding)
            .unwrap_or_else(|e| panic!("{alg}: jsonwebtoken cannot sign: {e}"));
        self.verify_wristband(&theirs)
            .unwrap_or_else(|e| panic!("{alg}: Wristband rejects jsonwebtoken's token: {e:?}"));
        let raw_sig = self.raw_signer.sign(&self.rng, &self.signing_input);
        assert!(
            self.raw_verifier.verify(&self.signing_input, &raw_sig),
            "{alg}: the raw signer's signature does not verify"
        );
    }
}

fn benches(c: &mut Criterion) {
    assert!(
        jsonwebtoken::crypto::CryptoProvider::try_get_default().is_some(),
        "jsonwebtoken has no crypto provider: enable exactly its aws_lc_rs feature"
    );
    for alg in Algorithm::ALL {
        let f = Fixture::new(alg);

        let mut group = c.benchmark_group(format!("verify/{alg}"));
        group.bench_function("wristband", |b| {
            b.iter(|| f.verify_wristband(black_box(&f.token)).unwrap())
        });
        group.bench_function("raw", |b| {
            b.iter(|| {
                assert!(f
                    .raw_verifier
                    .verify(black_box(&f.signing_input), black_box(&f.signature)))
            })
        });
        group.bench_function("jsonwebtoken", |b| {
            b.iter(|| {
                jsonwebtoken::decode::<Value>(
                    black_box(&f.token),
                    &f.jwt_decoding,
                    &f.jwt_validation,
                )
                .unwrap()
            })
        });
        group.finish();

        let mut group = c.benchmark_group(format!("sign/{alg}"));
        group.bench_function("wristband", |b| {
            b.iter(|| sign(&f.key, black_box(&f.claims)).unwrap())
        });
        group.bench_function("raw", |b| {
            b.iter(|| f.raw_signer.sign(&f.rng, black_box(&f.signing_input)))
        });
        group.bench_function("jsonwebtoken", |b| {
            b.iter(|| {
                jsonwebtoken::encode(&f.jwt_header, black_box(&f.claims), &f.jwt_encoding).unwrap()
            })
        });
        group.finish();
    }
}

criterion_group!(jose, benches);
criterion_main!(jose);
