//! `cargo bench -p wristband-server --bench second_factor`
//!
//! What a second step adds to a sign-in's CPU, next to the first step's Argon2id check in
//! the same run: checking a TOTP code (opening the sealed secret, then the HMACs of the
//! ±1-step window) and checking a passkey's assertion (starting the ceremony and finishing
//! it with `webauthn-rs`: the client data, the authenticator data and an ES256 signature).
//! The assertion is made here, as an authenticator would, outside the timed part.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use serde_json::json;
use webauthn_rs::prelude::{Passkey, PublicKeyCredential, Url, WebauthnBuilder};
use wristband_server::domain::totp::{Settings, Totp};
use wristband_server::domain::MasterKey;

const RP_ID: &str = "auth.example.com";
const ORIGIN: &str = "https://auth.example.com";

fn b64(bytes: &[u8]) -> String {
    wristband_jose::b64::encode(bytes)
}

/// A software authenticator's key and the passkey the relying party keeps for it.
fn software_passkey() -> (EcdsaKeyPair, Passkey) {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
    let point = key.public_key().as_ref();
    let (x, y) = (&point[1..33], &point[33..65]);
    let passkey = json!({"cred": {
        "cred_id": b64(b"bench-credential-id-0001"),
        "cred": {"type_": "ES256", "key": {"EC_EC2": {"curve": "SECP256R1", "x": x, "y": y}}},
        "counter": 0,
        "transports": null,
        "user_verified": true,
        "backup_eligible": false,
        "backup_state": false,
        "registration_policy": "required",
        "extensions": {"cred_protect": "NotRequested", "hmac_create_secret": "NotRequested",
                       "appid": "NotRequested", "cred_props": "Ignored"},
        "attestation": {"data": "None", "metadata": "None"},
        "attestation_format": "none"
    }});
    (key, serde_json::from_value(passkey).expect("a passkey"))
}

/// The authenticator's answer to `challenge` (base64url), signed with `key`, counter `n`.
fn assertion(key: &EcdsaKeyPair, challenge: &str, n: u32) -> PublicKeyCredential {
    let client_data = json!({"type": "webauthn.get", "challenge": challenge,
                             "origin": ORIGIN, "crossOrigin": false})
    .to_string();
    let mut auth_data = digest::digest(&digest::SHA256, RP_ID.as_bytes())
        .as_ref()
        .to_vec();
    auth_data.push(0x05); // user present, user verified
    auth_data.extend_from_slice(&n.to_be_bytes());
    let mut signed = auth_data.clone();
    signed.extend_from_slice(digest::digest(&digest::SHA256, client_data.as_bytes()).as_ref());
    let signature = key.sign(&SystemRandom::new(), &signed).unwrap();
    let id = b64(b"bench-credential-id-0001");
    serde_json::from_value(json!({
        "id": id, "rawId": id, "type": "public-key",
        "response": {"clientDataJSON": b64(client_data.as_bytes()),
                     "authenticatorData": b64(&auth_data),
                     "signature": b64(signature.as_ref()), "userHandle": null}
    }))
    .unwrap()
}

fn second_factor(c: &mut Criterion) {
    let mut g = c.benchmark_group("sign_in");
    g.sample_size(20);

    // The first step: one Argon2id check with the default parameters.
    let argon = Argon2::default();
    let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
    let hash = argon
        .hash_password(b"bench passphrase for load tests", &salt)
        .unwrap()
        .to_string();
    let parsed = PasswordHash::new(&hash).unwrap();
    g.bench_function("first_step_argon2id_verify", |b| {
        b.iter(|| {
            argon
                .verify_password(b"bench passphrase for load tests", &parsed)
                .unwrap();
        });
    });

    // TOTP: the sealed secret opened, then the code checked (the code of the window's
    // last step, so that every candidate is computed).
    let sealer = MasterKey::from_bytes(&[7u8; 32]).unwrap();
    let totp = Totp::generate().unwrap();
    let sealed = sealer.seal("totp:usr_bench", totp.secret()).unwrap();
    let now = 1_800_000_000;
    let code = totp.code_at(now + 30);
    g.sample_size(100);
    g.bench_function("second_step_totp_verify", |b| {
        b.iter(|| {
            let secret = sealer.open("totp:usr_bench", &sealed).unwrap();
            let t = Totp::new(secret.to_vec(), Settings::STANDARD);
            assert!(t.verify(&code, now, None).is_some());
        });
    });

    // WebAuthn: start (the challenge and options) and finish (the assertion checked).
    let origin = Url::parse(ORIGIN).unwrap();
    let webauthn = WebauthnBuilder::new(RP_ID, &origin)
        .unwrap()
        .build()
        .unwrap();
    let (key, passkey) = software_passkey();
    let passkeys = [passkey];
    g.bench_function("second_step_webauthn_start", |b| {
        b.iter(|| webauthn.start_passkey_authentication(&passkeys).unwrap());
    });
    let mut counter = 0u32;
    g.bench_function("second_step_webauthn_finish", |b| {
        b.iter_batched(
            || {
                let (rcr, state) = webauthn.start_passkey_authentication(&passkeys).unwrap();
                let challenge = serde_json::to_value(&rcr).unwrap()["publicKey"]["challenge"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                counter += 1;
                (assertion(&key, &challenge, counter), state)
            },
            |(credential, state)| {
                webauthn
                    .finish_passkey_authentication(&credential, &state)
                    .unwrap()
            },
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

criterion_group!(benches, second_factor);
criterion_main!(benches);
