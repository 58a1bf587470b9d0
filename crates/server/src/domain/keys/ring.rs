//! The key ring in force, and the verification policy built from it.

use std::sync::Arc;
use std::time::Duration;

use wristband_jose::{Algorithm, Jwks, KeySet, Policy, SigningKey, VerifyingKey};

use super::{internal, Mode};
use crate::domain::DomainError;
use crate::store::KeyState;

/// The keys in force, rebuilt whenever the stored keys change.
pub struct KeyRing {
    pub(super) signing: Arc<SigningKey>,
    pub(super) keyset: KeySet,
    pub(super) jwks: Jwks,
    pub(super) algorithms: Vec<Algorithm>,
    pub(super) policy: Policy,
    /// (kid, state) of every stored key: tells whether a reload changed anything.
    pub(super) fingerprint: Vec<(String, KeyState)>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("signing", &self.signing.kid())
            .field("published", &self.keyset.len())
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// The key that signs access tokens.
    pub fn signing(&self) -> &SigningKey {
        &self.signing
    }

    /// The keys that verify our own tokens: every published key.
    pub fn keyset(&self) -> &KeySet {
        &self.keyset
    }

    /// The published JWKS: public keys only (empty in HS256 mode).
    pub fn jwks(&self) -> &Jwks {
        &self.jwks
    }

    /// The algorithms of the published keys.
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    /// The policy that verifies our own tokens: these keys' algorithms.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

/// What every ring's [`Policy`] is built from.
#[derive(Debug, Clone)]
pub struct PolicyTemplate {
    /// Our issuer.
    pub issuer: String,
    /// Our audience.
    pub audience: String,
    /// Longest access-token lifetime.
    pub max_lifetime: Duration,
}

impl PolicyTemplate {
    /// A policy for these algorithms, accepting `audiences` (default: ours).
    pub fn build(
        &self,
        algorithms: &[Algorithm],
        audiences: Option<Vec<String>>,
    ) -> Result<Policy, DomainError> {
        let mut b = Policy::builder(self.issuer.clone(), self.audience.clone());
        if let Some(a) = audiences {
            b = b.audiences(a);
        }
        b.algorithms(algorithms)
            .leeway(Duration::from_secs(5))
            .max_lifetime(self.max_lifetime)
            .build()
            .map_err(internal)
    }
}

/// In HS256 mode the ring is the secret and never changes. In stored mode this is a
/// placeholder (a throw-away key, with a fingerprint no store can have) that
/// [`KeyManager::open`] replaces with the stored keys before it returns.
pub(super) fn hs_or_placeholder(
    mode: &Mode,
    template: &PolicyTemplate,
) -> Result<KeyRing, DomainError> {
    let (signing, published) = match mode {
        Mode::Hs256(k) => (Arc::clone(k), true),
        Mode::Stored => (
            Arc::new(SigningKey::generate(Algorithm::EdDSA).map_err(internal)?),
            false,
        ),
    };
    let keyset = if published {
        KeySet::from_keys([signing.verifying_key().clone()]).map_err(internal)?
    } else {
        KeySet::from_keys(Vec::<VerifyingKey>::new()).map_err(internal)?
    };
    Ok(KeyRing {
        jwks: keyset.to_public_jwks(),
        policy: template.build(&[signing.algorithm()], None)?,
        algorithms: vec![signing.algorithm()],
        signing,
        keyset,
        fingerprint: vec![(String::new(), KeyState::Removed)],
    })
}
