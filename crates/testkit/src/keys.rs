//! Signing keys for tests.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use wristband_jose::{Algorithm, KeySet, SigningKey};

/// A new key of `alg` (RSA 2048 for RS256/PS256). Slow for RSA: prefer [`fixed`].
pub fn fresh(alg: Algorithm) -> SigningKey {
    SigningKey::generate(alg).expect("key generation")
}

/// The key of `alg` in `slot`: the same key every time it is asked for in this process
/// (it is generated on first use), and a different key for each slot.
pub fn fixed(alg: Algorithm, slot: usize) -> SigningKey {
    static CACHE: OnceLock<Mutex<HashMap<(Algorithm, usize), String>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let existing = cache.lock().unwrap().get(&(alg, slot)).cloned();
    let encoded = match existing {
        Some(e) => e,
        None => {
            let key = fresh(alg);
            let encoded = if alg == Algorithm::HS256 {
                serde_json::to_string(&key.to_private_jwk().unwrap()).unwrap()
            } else {
                key.to_pem().unwrap().to_string()
            };
            cache
                .lock()
                .unwrap()
                .entry((alg, slot))
                .or_insert(encoded)
                .clone()
        }
    };
    if alg == Algorithm::HS256 {
        SigningKey::from_jwk(&serde_json::from_str(&encoded).unwrap()).unwrap()
    } else {
        SigningKey::from_pem(alg, &encoded).unwrap()
    }
}

/// The public keys of `keys` as a key set.
pub fn key_set<'a>(keys: impl IntoIterator<Item = &'a SigningKey>) -> KeySet {
    KeySet::from_keys(keys.into_iter().map(|k| k.verifying_key().clone())).unwrap()
}

/// The public keys of `keys` as a JWKS document.
pub fn jwks<'a>(keys: impl IntoIterator<Item = &'a SigningKey>) -> wristband_jose::Jwks {
    key_set(keys).to_public_jwks()
}
