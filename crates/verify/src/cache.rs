//! The verified-token cache: a repeated token skips parsing and signature work.
//!
//! Entries are keyed by the full token string, so two tokens share an entry only when they
//! are byte-identical. What a hit still checks (expiry against the clock, revocation of
//! the token and of its signing key, and that the key set has lost no key since the entry
//! was made) is done by the [`crate::Verifier`], on every hit.

use std::sync::Arc;

use quick_cache::sync::Cache;
use wristband_jose::{Claims, Verified};

/// Default number of verified tokens kept.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

/// A verified token and the key-set generation it was verified under.
#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) verified: Arc<Verified<Claims>>,
    pub(crate) generation: u64,
}

/// A bounded map from token string to its verified claims.
pub(crate) struct TokenCache {
    map: Cache<Box<str>, Entry>,
}

impl TokenCache {
    /// A cache holding up to `capacity` tokens (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        TokenCache {
            map: Cache::new(capacity.max(1)),
        }
    }

    #[inline]
    pub(crate) fn get(&self, token: &str) -> Option<Entry> {
        self.map.get(token)
    }

    pub(crate) fn insert(&self, token: &str, verified: Arc<Verified<Claims>>, generation: u64) {
        self.map.insert(
            token.into(),
            Entry {
                verified,
                generation,
            },
        );
    }

    pub(crate) fn remove(&self, token: &str) {
        self.map.remove(token);
    }

    /// Forgets every entry (used when a key leaves the key set).
    pub(crate) fn clear(&self) {
        self.map.clear();
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}
