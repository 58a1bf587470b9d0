//! HS256 shared-secret mode: the secret from a `secret.jwk.json`, a base64url file or a
//! string; the `kid` rules; RS256 tokens and algorithm confusion refused; weak secrets
//! refused at build time; and the `api_service` example started with
//! `--hs256-secret-file` and with `WRISTBAND_HS256_SECRET`.

use std::path::PathBuf;

use http::StatusCode;
use wristband_jose::{b64, Algorithm, ErrorKind, Jwk, SecretString, SigningKey};
use wristband_testkit::http::Client;
use wristband_testkit::process::ServiceProcess;
use wristband_testkit::{keys, Minter};
use wristband_verify::{BuildError, Hs256Secret, Verifier, INVALID_BODY};

use crate::{AUDIENCE, ISSUER};

/// A file in the temporary directory, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> Self {
        let mut r = [0u8; 8];
        aws_lc_rs::rand::fill(&mut r).unwrap();
        let path = std::env::temp_dir().join(format!(
            "wristband-test-{}-{}-{name}",
            std::process::id(),
            b64::encode(r)
        ));
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The shared secret of slot 0 and its `secret.jwk.json` text.
fn shared_secret() -> (SigningKey, String) {
    let key = keys::fixed(Algorithm::HS256, 0);
    let jwk = serde_json::to_string_pretty(&key.to_private_jwk().unwrap()).unwrap();
    (key, jwk)
}

fn k_of(key: &SigningKey) -> String {
    key.to_private_jwk().unwrap().k.unwrap().expose().to_owned()
}

async fn hs256_verifier(secret: impl Into<Hs256Secret>) -> Result<Verifier, BuildError> {
    Verifier::builder(ISSUER, AUDIENCE)
        .hs256_secret(secret)
        .build()
        .await
}

#[tokio::test]
async fn accepts_tokens_signed_with_the_secret_and_refuses_the_rest() {
    let (key, jwk_text) = shared_secret();
    let file = TempFile::new("secret.jwk.json", &jwk_text);
    let v = hs256_verifier(Hs256Secret::read(&file.0).unwrap())
        .await
        .unwrap();

    // The key id is the RFC 7638 thumbprint of the oct JWK, as in the server's tokens.
    let oct = Jwk {
        kty: "oct".into(),
        k: Some(SecretString::new(k_of(&key))),
        ..Jwk::default()
    };
    let thumbprint = oct.thumbprint().unwrap();
    assert_eq!(key.kid(), thumbprint);
    assert!(v.keys().contains(&thumbprint));
    assert_eq!(v.keys().len(), 1);

    let m = Minter::new(key, ISSUER, AUDIENCE);
    let token = m.token("alice", Some("admin"));
    let verified = v.verify(&token).await.unwrap();
    assert_eq!(verified.sub, "alice");
    assert_eq!(verified.header().kid(), Some(thumbprint.as_str()));

    // Without kid, the one key is used; with another kid, refused.
    let mut header = m.header();
    header.as_object_mut().unwrap().remove("kid");
    let no_kid = m.sign_with_header(&header, &m.claims("bob"));
    assert_eq!(v.verify(&no_kid).await.unwrap().sub, "bob");
    let err = v
        .verify(&m.with_kid("another-kid", "carol"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownKeyId);

    // Another secret: bad signature, with or without our kid.
    let other = Minter::new(keys::fixed(Algorithm::HS256, 1), ISSUER, AUDIENCE);
    let err = v
        .verify(&other.with_kid(&thumbprint, "eve"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadSignature);
    let mut header = other.header();
    header.as_object_mut().unwrap().remove("kid");
    let err = v
        .verify(&other.sign_with_header(&header, &other.claims("eve")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadSignature);

    // RS256 and ES256 tokens are refused: under their own kid no key matches, under our
    // kid or without kid the HS256-only allow-list refuses them.
    for alg in [Algorithm::RS256, Algorithm::ES256] {
        let asym = Minter::new(keys::fixed(alg, 0), ISSUER, AUDIENCE);
        let err = v.verify(&asym.token("mallory", None)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnknownKeyId, "{alg}");
        let mut header = asym.header();
        header.as_object_mut().unwrap().remove("kid");
        let err = v
            .verify(&asym.sign_with_header(&header, &asym.claims("mallory")))
            .await
            .unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::AlgorithmNotAllowed,
            "{alg} without kid"
        );
        let err = v
            .verify(&asym.with_kid(&thumbprint, "mallory"))
            .await
            .unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::AlgorithmNotAllowed,
            "{alg} under our kid"
        );
    }

    // Algorithm confusion: an HS256 token whose HMAC key is an RSA public key (the PEM
    // text and the JWKS member bytes) the attacker knows.
    let rsa = keys::fixed(Algorithm::RS256, 0);
    let pem = rsa.verifying_key().to_public_pem().unwrap();
    let jwk_json = serde_json::to_string(rsa.verifying_key().to_jwk().unwrap()).unwrap();
    for public in [pem.as_bytes(), jwk_json.as_bytes()] {
        let forged_key = SigningKey::hs256(public).unwrap().with_kid(&thumbprint);
        let forger = Minter::new(forged_key, ISSUER, AUDIENCE);
        let err = v
            .verify(&forger.token("mallory", Some("admin")))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadSignature);
    }
}

#[tokio::test]
async fn secret_as_base64url_file_or_string() {
    let (key, _) = shared_secret();
    let k = k_of(&key);
    let m = Minter::new(key, ISSUER, AUDIENCE);
    let token = m.token("u", None);

    let file = TempFile::new("secret.b64", &format!("{k}\n"));
    let from_file = hs256_verifier(Hs256Secret::read(&file.0).unwrap())
        .await
        .unwrap();
    assert!(from_file.verify(&token).await.is_ok());
    let from_string = hs256_verifier(SecretString::new(k.clone())).await.unwrap();
    assert!(from_string.verify(&token).await.is_ok());
    assert_eq!(
        from_string.keys().iter().next().unwrap().kid(),
        m.key().kid(),
        "the same kid whichever way the secret came"
    );

    // A JWK with its own kid: tokens carry that kid (the server signs with the JWK as is).
    let mut jwk = m.key().to_private_jwk().unwrap();
    jwk.kid = Some("hs-2026".into());
    let named = SigningKey::from_jwk(&jwk).unwrap();
    let v = hs256_verifier(Hs256Secret::from_jwk(&jwk).unwrap())
        .await
        .unwrap();
    let mn = Minter::new(named, ISSUER, AUDIENCE);
    assert!(v.verify(&mn.token("u", None)).await.is_ok());
    assert_eq!(
        v.verify(&token).await.unwrap_err().kind(),
        ErrorKind::UnknownKeyId,
        "the thumbprint kid is not the JWK's kid"
    );

    // Unreadable and malformed files.
    assert!(matches!(
        Hs256Secret::read("/nonexistent/secret.jwk.json"),
        Err(BuildError::SecretFile(_, _))
    ));
    let public = TempFile::new(
        "public.jwk.json",
        &serde_json::to_string(
            keys::fixed(Algorithm::ES256, 0)
                .verifying_key()
                .to_jwk()
                .unwrap(),
        )
        .unwrap(),
    );
    assert!(matches!(
        Hs256Secret::read(&public.0),
        Err(BuildError::Secret(_))
    ));
    let garbage = TempFile::new("garbage", "{not json");
    assert!(matches!(
        Hs256Secret::read(&garbage.0),
        Err(BuildError::Secret(_))
    ));
    let not_b64 = TempFile::new("not-b64", "this is not base64url at all!");
    let err = hs256_verifier(Hs256Secret::read(&not_b64.0).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, BuildError::Secret(_)), "{err:?}");
}

#[tokio::test]
async fn weak_secrets_are_refused_at_build_time() {
    let weak = |text: String| async move {
        match hs256_verifier(SecretString::new(text.clone())).await {
            Err(BuildError::WeakSecret(reason)) => {
                let message = BuildError::WeakSecret(reason).to_string();
                assert!(message.contains("too weak"), "{message}");
                assert!(!message.contains(&text), "the secret is never shown");
                reason
            }
            other => panic!("{other:?}"),
        }
    };
    // Short: 31 random bytes.
    let mut short = [0u8; 31];
    aws_lc_rs::rand::fill(&mut short).unwrap();
    assert_eq!(weak(b64::encode(short)).await, "shorter than 32 bytes");
    // Low entropy: 64 bytes of two values.
    let low: Vec<u8> = (0..64)
        .map(|i| if i % 2 == 0 { b'a' } else { b'b' })
        .collect();
    assert_eq!(weak(b64::encode(&low)).await, "low entropy");
    // Known values from tutorials, encoded or written as they are.
    assert_eq!(
        weak(b64::encode(
            "your-super-secret-jwt-token-with-at-least-32-characters-long"
        ))
        .await,
        "a well-known value"
    );
    assert_eq!(
        weak(b64::encode("a-string-secret-at-least-256-bits-long")).await,
        "a well-known value"
    );
    assert_eq!(
        weak("your-256-bit-secret".to_owned()).await,
        "a well-known value"
    );
    // The same through a secret file.
    let file = TempFile::new(
        "weak.jwk.json",
        r#"{"kty":"oct","alg":"HS256","k":"c2VjcmV0"}"#,
    );
    let err = hs256_verifier(Hs256Secret::read(&file.0).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, BuildError::WeakSecret(_)), "{err:?}");

    // A secret with an asymmetric allow-list set afterwards has no usable key.
    let (key, _) = shared_secret();
    let err = Verifier::builder(ISSUER, AUDIENCE)
        .hs256_secret(SecretString::new(k_of(&key)))
        .algorithms(&[Algorithm::RS256])
        .build()
        .await
        .unwrap_err();
    assert!(matches!(err, BuildError::NoKeys), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_service_in_hs256_mode() {
    let binary = crate::api_service_binary();
    let (key, jwk_text) = shared_secret();
    let k = k_of(&key);
    let file = TempFile::new("secret.jwk.json", &jwk_text);
    let path = file.0.display().to_string();
    let common = [
        "--listen",
        "127.0.0.1:0",
        "--issuer",
        ISSUER,
        "--audience",
        AUDIENCE,
    ];
    let mut with_file = common.to_vec();
    with_file.extend(["--hs256-secret-file", &path]);
    let by_file = ServiceProcess::spawn(&binary, &with_file).await;
    let by_env =
        ServiceProcess::spawn_with_env(&binary, &common, &[("WRISTBAND_HS256_SECRET", &k)]).await;

    let m = Minter::new(key, ISSUER, AUDIENCE);
    let rsa = Minter::new(keys::fixed(Algorithm::RS256, 0), ISSUER, AUDIENCE);
    let client = Client::new();
    for svc in [&by_file, &by_env] {
        let r = client
            .get_bearer(&svc.url("/resource"), &m.token("alice", None))
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json()["sub"], "alice");
        let r = client
            .get_bearer(&svc.url("/resource"), &rsa.token("alice", None))
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.body.as_ref(), INVALID_BODY.as_bytes());
        assert!(
            svc.logs().iter().all(|l| !l.contains(&k)),
            "the secret is never logged"
        );
    }

    // A weak secret stops the start-up with a clear error, without printing the secret.
    let weak = b64::encode("your-super-secret-jwt-token-with-at-least-32-characters-long");
    let out = tokio::process::Command::new(&binary)
        .args(common)
        .env("WRISTBAND_HS256_SECRET", &weak)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("too weak"), "{stderr}");
    assert!(!stderr.contains(&weak), "{stderr}");
    // --jwks and a secret exclude each other.
    let out = tokio::process::Command::new(&binary)
        .args(common)
        .args([
            "--jwks",
            "http://127.0.0.1:1/jwks.json",
            "--hs256-secret-file",
            &path,
        ])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
}
