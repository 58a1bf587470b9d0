//! An in-memory set of verifying keys, looked up by `kid`.

use std::collections::HashMap;

use crate::error::{Error, ErrorKind, Result};
use crate::jwk::Jwks;
use crate::key::VerifyingKey;

/// The most keys a JWKS may contribute (catalog E4).
pub const MAX_JWKS_KEYS: usize = 64;

/// Keys by `kid`. A set holds either HS256 secrets or asymmetric keys, never both.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: HashMap<Box<str>, VerifyingKey>,
}

/// A JWKS entry that was not loaded, and why.
#[derive(Debug)]
pub struct SkippedKey {
    /// The entry's `kid`, if it had one.
    pub kid: Option<String>,
    /// Why it was skipped.
    pub error: Error,
}

impl KeySet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// A set from keys; fails on mixed symmetric and asymmetric keys or a repeated `kid`.
    pub fn from_keys(keys: impl IntoIterator<Item = VerifyingKey>) -> Result<Self> {
        let mut set = KeySet::new();
        for k in keys {
            set.insert(k)?;
        }
        Ok(set)
    }

    /// Loads the usable keys of a published JWKS. Entries that are malformed, weaker than
    /// policy, symmetric, carry private material, repeat a `kid` or come past
    /// [`MAX_JWKS_KEYS`] are skipped and returned, so that the caller can log them.
    pub fn from_jwks(jwks: &Jwks) -> (KeySet, Vec<SkippedKey>) {
        let mut set = KeySet::new();
        let mut skipped = Vec::new();
        for (i, jwk) in jwks.keys.iter().enumerate() {
            let kid = jwk.kid.clone();
            let result = if i >= MAX_JWKS_KEYS || jwk.has_private_material() || jwk.kid.is_none() {
                Err(Error::new(ErrorKind::InvalidKey))
            } else {
                VerifyingKey::from_jwk(jwk).and_then(|k| set.insert(k))
            };
            if let Err(error) = result {
                skipped.push(SkippedKey { kid, error });
            }
        }
        (set, skipped)
    }

    /// Adds a key; fails when its `kid` is taken or its family differs from the set's.
    pub fn insert(&mut self, key: VerifyingKey) -> Result<()> {
        if let Some(other) = self.keys.values().next() {
            if other.algorithm().is_symmetric() != key.algorithm().is_symmetric() {
                return Err(Error::new(ErrorKind::InvalidKey));
            }
        }
        if self.keys.contains_key(key.kid()) {
            return Err(Error::new(ErrorKind::InvalidKey));
        }
        self.keys.insert(key.kid().into(), key);
        Ok(())
    }

    /// Removes a key by `kid`.
    pub fn remove(&mut self, kid: &str) -> Option<VerifyingKey> {
        self.keys.remove(kid)
    }

    /// The key with this `kid`.
    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.get(kid)
    }

    /// True when a key has this `kid`.
    pub fn contains(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when the set is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &VerifyingKey> {
        self.keys.values()
    }

    /// The public keys as a JWKS. HS256 secrets are never included.
    pub fn to_public_jwks(&self) -> Jwks {
        let mut keys: Vec<_> = self
            .keys
            .values()
            .filter_map(|k| k.to_jwk().cloned())
            .collect();
        keys.sort_by(|a, b| a.kid.cmp(&b.kid));
        Jwks { keys }
    }
}
