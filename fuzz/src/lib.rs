//! The fixed keys, seeds and invariants behind the `parse_verify` fuzz target.
//!
//! Keys come from fixed material (an HS256 secret and the RFC 8037 Ed25519 key) and "now" is
//! pinned, so every run and every crash reproduces. A panic anywhere is a finding; the
//! asserts below state what must hold for any input.

#![forbid(unsafe_code)]

use std::sync::OnceLock;
use std::time::Duration;

use wristband_jose::dangerous::{decode_without_verification, sign_raw};
use wristband_jose::{
    b64, sign, verify_jws, Algorithm, Claims, ErrorKind, Jwk, Jwks, KeySet, Policy, SigningKey,
    UnixTime, UnverifiedToken, VerifyingKey, MAX_JWKS_KEYS, MAX_TOKEN_BYTES,
};

/// The pinned "now" of every run.
pub const NOW: UnixTime = UnixTime::from_secs(1_800_000_000);
const ISS: &str = "https://auth.example";
const AUD: &str = "api://orders";

/// One deployment profile: a signer, the set holding its public half, and a policy.
pub struct Profile {
    /// The signing key.
    pub signer: SigningKey,
    /// The verifier's key set.
    pub keys: KeySet,
    /// The verifier's policy.
    pub policy: Policy,
}

/// The HS256 and EdDSA profiles.
pub fn profiles() -> &'static [Profile; 2] {
    static PROFILES: OnceLock<[Profile; 2]> = OnceLock::new();
    PROFILES.get_or_init(|| {
        // 32 distinct bytes: passes the secret-strength checks, and is fixed.
        let secret: Vec<u8> = (0u8..32)
            .map(|i| i.wrapping_mul(7).wrapping_add(3))
            .collect();
        let hs = SigningKey::hs256(&secret)
            .expect("hs key")
            .with_kid("hs-fuzz");
        // RFC 8037 Appendix A.1.
        let ed_jwk = Jwk {
            kty: "OKP".into(),
            crv: Some("Ed25519".into()),
            d: Some(wristband_jose::SecretString::new(
                "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A".into(),
            )),
            x: Some("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo".into()),
            ..Jwk::default()
        };
        let ed = SigningKey::from_jwk(&ed_jwk)
            .expect("ed key")
            .with_kid("ed-fuzz");
        let profile = |signer: SigningKey, algs: &[Algorithm]| Profile {
            keys: KeySet::from_keys([signer.verifying_key().clone()]).expect("set"),
            policy: Policy::builder(ISS, AUD)
                .algorithms(algs)
                .build()
                .expect("policy"),
            signer,
        };
        [
            profile(hs, &[Algorithm::HS256]),
            profile(ed, &Algorithm::ASYMMETRIC),
        ]
    })
}

/// Seed inputs: valid tokens of both profiles and JWKS documents.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for p in profiles() {
        let alg = p.signer.algorithm();
        let mut base = Claims::new(
            ISS,
            "user-7f3a",
            AUD,
            UnixTime::from_secs(NOW.as_secs() - 60),
            Duration::from_secs(900),
        )
        .with_client_id("web")
        .with_role("admin")
        .with_scope("read write");
        base.jti = format!("seed-{alg}");
        out.push((
            format!("token-{alg}"),
            sign(&p.signer, &base).expect("sign"),
        ));
        let mut rich = base
            .clone()
            .with_sid("s-1")
            .with_claim("tenant", serde_json::json!({"id": 7, "tags": ["a", "b"]}))
            .expect("claim");
        rich.aud = ["api://billing", AUD].into_iter().collect();
        rich.jti = format!("seed-rich-{alg}");
        out.push((
            format!("token-rich-{alg}"),
            sign(&p.signer, &rich).expect("sign"),
        ));
    }
    let published = profiles()[1].keys.to_public_jwks();
    out.push((
        "jwks-ed25519".into(),
        serde_json::to_string(&published).expect("jwks"),
    ));
    // RFC 7638 §3.1's RSA key, as a published JWKS.
    out.push(("jwks-rsa".into(), RFC7638_JWKS.to_owned()));
    out.into_iter()
        .map(|(name, text)| (name, text.into_bytes()))
        .collect()
}

const RFC7638_JWKS: &str = r#"{"keys":[{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}]}"#;

/// Runs every invariant on one input.
pub fn check(data: &[u8]) {
    check_jwks(data);
    if let Ok(text) = std::str::from_utf8(data) {
        check_token(text);
    }
}

fn check_jwks(data: &[u8]) {
    let Ok(jwks) = Jwks::from_slice(data) else {
        return;
    };
    let (set, skipped) = KeySet::from_jwks(&jwks);
    assert_eq!(set.len() + skipped.len(), jwks.keys.len());
    assert!(set.len() <= MAX_JWKS_KEYS);
    for key in set.iter() {
        assert!(
            !key.algorithm().is_symmetric(),
            "a JWKS never loads an HS key"
        );
        let jwk = key.to_jwk().expect("a public key has a JWK");
        assert!(!jwk.has_private_material());
        let again = VerifyingKey::from_jwk(jwk).expect("a loaded key re-imports");
        assert_eq!(again.kid(), key.kid());
        assert_eq!(again.algorithm(), key.algorithm());
    }
    let (again, skipped_again) = KeySet::from_jwks(&set.to_public_jwks());
    assert!(
        skipped_again.is_empty(),
        "what was loaded republishes cleanly"
    );
    assert_eq!(again.len(), set.len());
}

fn segments(token: &str) -> (&str, &str) {
    let mut it = token.split('.');
    (it.next().unwrap_or(""), it.next().unwrap_or(""))
}

fn check_token(text: &str) {
    let parsed = UnverifiedToken::parse(text);
    match &parsed {
        Ok(_) => {
            assert!(text.len() <= MAX_TOKEN_BYTES);
            assert_eq!(text.bytes().filter(|&b| b == b'.').count(), 2);
            assert!(text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
            assert!(decode_without_verification(text).is_ok());
        }
        Err(e) => {
            assert_ne!(e.kind(), ErrorKind::Expired, "parsing never reports expiry");
            assert_eq!(e.public_reason(), "token invalid");
        }
    }
    drop(parsed);
    for p in profiles() {
        let result = UnverifiedToken::parse(text).and_then(|t| t.verify(&p.keys, &p.policy, NOW));
        match result {
            Ok(v) => {
                assert_eq!(v.header().alg(), p.signer.algorithm());
                // Both algorithms are deterministic: what verifies is exactly what our key
                // signs for the same header and payload bytes.
                let (h, pl) = segments(text);
                let header = b64::decode(h).expect("canonical header");
                let payload = b64::decode(pl).expect("canonical payload");
                assert_eq!(sign_raw(&p.signer, &header, &payload).expect("sign"), text);
                // And the claims sign and verify again to the same claims.
                let again = sign(&p.signer, v.claims()).expect("re-sign");
                let v2 = UnverifiedToken::parse(&again)
                    .and_then(|t| t.verify(&p.keys, &p.policy, NOW))
                    .expect("re-verify");
                assert_eq!(v2.claims(), v.claims());
            }
            Err(e) => {
                let expired = e.kind() == ErrorKind::Expired;
                let want = if expired {
                    "token expired"
                } else {
                    "token invalid"
                };
                assert_eq!(e.public_reason(), want);
            }
        }
        if let Ok(payload) = verify_jws(text, p.signer.verifying_key()) {
            let header = b64::decode(segments(text).0).expect("canonical header");
            assert_eq!(sign_raw(&p.signer, &header, &payload).expect("sign"), text);
        }
    }
    let _ = decode_without_verification(text);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed_dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds")
    }

    /// The checked-in seeds are exactly what `seeds()` makes (set WRISTBAND_WRITE_SEEDS=1
    /// to rewrite them), and the token seeds verify, so the fuzzer starts from the deepest
    /// paths.
    #[test]
    fn seeds_are_current_and_valid() {
        let write = std::env::var_os("WRISTBAND_WRITE_SEEDS").is_some();
        for (name, bytes) in seeds() {
            let path = seed_dir().join(&name);
            if write {
                std::fs::write(&path, &bytes).expect("write seed");
            }
            let on_disk = std::fs::read(&path).expect("seed file");
            assert_eq!(on_disk, bytes, "{name} is stale");
            check(&bytes);
            if name.starts_with("token-") {
                let text = std::str::from_utf8(&bytes).expect("utf-8");
                let ok = profiles().iter().any(|p| {
                    UnverifiedToken::parse(text)
                        .and_then(|t| t.verify(&p.keys, &p.policy, NOW))
                        .is_ok()
                });
                assert!(ok, "{name} verifies");
            }
        }
    }

    #[test]
    fn check_survives_hostile_inputs() {
        for input in [
            &b""[..],
            b".",
            b"..",
            b"{\"keys\":[{}]}",
            b"{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAA\"}]}",
            b"eyJhbGciOiJub25lIn0.e30.",
        ] {
            check(input);
        }
    }
}
