//! [`Verifier`]: checks bearer tokens against a policy, a key source, the verified-token
//! cache and the revocation view.

use std::fmt;
use std::sync::Arc;

use wristband_jose::{
    Claims, Clock, ErrorKind, KeySet, Policy, UnverifiedToken, Verified, VerifyingKey,
};

use crate::cache::TokenCache;
use crate::cookie::CookieSource;
use crate::error::{token_digest, Realm, VerifyError};
use crate::feed::FeedRevocations;
use crate::introspect::{Introspector, OPAQUE_PREFIX};
use crate::remote::RemoteKeys;
use crate::revocation::RevocationView;

/// Where the verifying keys come from once the verifier is built.
#[derive(Clone)]
pub(crate) enum Keys {
    /// Keys given at start-up or read from a file: never change.
    Static(Arc<KeySet>),
    /// Keys fetched from a JWKS URL and kept fresh.
    Remote(Arc<RemoteKeys>),
}

impl Keys {
    fn current(&self) -> Arc<KeySet> {
        match self {
            Keys::Static(k) => Arc::clone(k),
            Keys::Remote(r) => r.current(),
        }
    }

    /// Changes whenever a key leaves the set; a cache entry made under another generation
    /// is a miss.
    #[inline]
    fn generation(&self) -> u64 {
        match self {
            Keys::Static(_) => 0,
            Keys::Remote(r) => r.generation(),
        }
    }
}

pub(crate) struct Inner {
    pub(crate) policy: Policy,
    pub(crate) keys: Keys,
    pub(crate) cache: Option<Arc<TokenCache>>,
    pub(crate) revocations: Arc<dyn RevocationView>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) realm: Realm,
    pub(crate) feed: Option<Arc<FeedRevocations>>,
    pub(crate) introspector: Option<Arc<Introspector>>,
    /// HS256 mode: the one shared-secret key, also used for tokens without `kid`.
    pub(crate) single_key: Option<VerifyingKey>,
    /// Where the access cookie is read from, when cookies are accepted at all.
    pub(crate) cookies: Option<CookieSource>,
    /// What every token the layer accepts must show of the user's sign-in (step-up).
    pub(crate) authn: Option<crate::stepup::AuthnRequirement>,
}

impl Inner {
    /// True when the key that signed `verified` is revoked: the header's `kid`, or for a
    /// token without one (HS256 mode only) the one key's.
    #[inline]
    pub(crate) fn key_revoked(&self, verified: &Verified<Claims>) -> bool {
        match verified
            .header()
            .kid()
            .or_else(|| self.single_key.as_ref().map(VerifyingKey::kid))
        {
            Some(kid) => self.revocations.is_key_revoked(kid),
            None => false,
        }
    }
}

/// Verifies access tokens locally: strict syntax, signature, claims, then revocation.
///
/// Cheap to clone (an [`Arc`] inside). Build one with [`Verifier::builder`]. A token that
/// verified once is kept in a bounded cache keyed by its exact bytes; a cache hit still
/// checks `exp` against the clock and asks the [`RevocationView`] about the claims and
/// about the signing key ([`RevocationView::is_key_revoked`]).
///
/// # Keys that go away
///
/// A cached token is only as good as the key that signed it:
///
/// - when a refresh of a fetched key set no longer finds a `kid` (the key was removed
///   from the JWKS), every entry cached before that refresh is checked again in full on
///   its next use, so a token signed by the removed key is refused (`unknown kid`). A key
///   that is retired but still published keeps verifying; a new `kid` causes the usual
///   unknown-`kid` refetch;
/// - when the revocation feed revokes a `kid`, tokens naming it are refused on their next
///   use, cached or not, and the key is dropped from a fetched key set.
#[derive(Clone)]
pub struct Verifier(pub(crate) Arc<Inner>);

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.0.policy.issuer())
            .field("audiences", &self.0.policy.audiences())
            .field("realm", &self.0.realm)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Starts a verifier for tokens from `issuer` (matched exactly) meant for `audience`.
    /// Without a key source the keys are discovered from the issuer's RFC 8414 metadata.
    pub fn builder(
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> crate::VerifierBuilder {
        crate::VerifierBuilder::new(issuer.into(), audience.into())
    }

    /// The verification policy.
    pub fn policy(&self) -> &Policy {
        &self.0.policy
    }

    /// A [`crate::RequireTokenLayer`] verifying with this verifier.
    pub fn layer(&self) -> crate::RequireTokenLayer {
        crate::RequireTokenLayer::new(self.clone())
    }

    /// The realm named in `WWW-Authenticate` challenges.
    pub fn realm(&self) -> &Realm {
        &self.0.realm
    }

    /// The cookies the access token may come from, when configured with
    /// [`crate::VerifierBuilder::access_cookie`].
    pub fn cookie_source(&self) -> Option<&CookieSource> {
        self.0.cookies.as_ref()
    }

    /// A snapshot of the current verifying keys.
    pub fn keys(&self) -> Arc<KeySet> {
        self.0.keys.current()
    }

    /// The JWKS URL the keys are fetched from, if they are remote.
    pub fn jwks_url(&self) -> Option<&url::Url> {
        match &self.0.keys {
            Keys::Remote(r) => Some(r.url()),
            Keys::Static(_) => None,
        }
    }

    /// The revocation feed this verifier follows, if any (see [`crate::FeedRevocations`]).
    pub fn revocation_feed(&self) -> Option<&FeedRevocations> {
        self.0.feed.as_deref()
    }

    /// Time since the revocation view was last in sync, when a feed is followed.
    pub fn revocation_staleness(&self) -> Option<std::time::Duration> {
        self.0.feed.as_ref().map(|f| f.staleness())
    }

    /// True when opaque (`wbo_`) tokens are checked by introspection.
    pub fn introspects_opaque_tokens(&self) -> bool {
        self.0.introspector.is_some()
    }

    /// Number of introspection answers cached.
    pub fn cached_introspections(&self) -> usize {
        self.0.introspector.as_ref().map_or(0, |i| i.cached())
    }

    /// Number of tokens in the verified-token cache.
    pub fn cached_tokens(&self) -> usize {
        self.0.cache.as_ref().map_or(0, |c| c.len())
    }

    /// Verifies `token`: from the cache when it was verified before (checking expiry and
    /// revocation again), otherwise fully. An unknown `kid` may trigger one refetch of a
    /// remote key set (at most once per cooldown), hence `async`.
    ///
    /// An opaque token (`wbo_…`) is checked by introspection when client credentials are
    /// configured (answers cached for a few seconds, never past `exp`), then against the
    /// same policy and revocation view as a JWT. Without credentials it is malformed.
    ///
    /// Failures are logged with their internal reason and the SHA-256 of the token, never
    /// the token itself.
    pub async fn verify(&self, token: &str) -> Result<Arc<Verified<Claims>>, VerifyError> {
        let result = match (&self.0.introspector, token.starts_with(OPAQUE_PREFIX)) {
            (Some(introspector), true) => self.verify_opaque(introspector, token).await,
            _ => match self.verify_cached(token) {
                Some(result) => result,
                None => self.verify_uncached(token).await,
            },
        };
        if let Err(e) = &result {
            log_rejection(token, e);
        }
        result
    }

    /// The cache-only part of [`Verifier::verify`]: `None` on a miss. A hit is checked for
    /// expiry and revocation (of the token and of its signing key). An entry made before a
    /// key left the key set counts as a miss. Failures are not logged here.
    #[inline]
    pub fn verify_cached(&self, token: &str) -> Option<Result<Arc<Verified<Claims>>, VerifyError>> {
        let inner = &*self.0;
        let entry = inner.cache.as_ref()?.get(token)?;
        if entry.generation != inner.keys.generation() {
            // A key left the key set since this token was verified: check it again.
            return None;
        }
        let hit = entry.verified;
        let now = inner.clock.now();
        // The same rule as the full check: expired once now >= exp + leeway.
        if now.as_secs()
            >= hit
                .exp
                .as_secs()
                .saturating_add(inner.policy.leeway().as_secs())
        {
            if let Some(cache) = &inner.cache {
                cache.remove(token);
            }
            return Some(Err(ErrorKind::Expired.into()));
        }
        if inner.key_revoked(&hit) || inner.revocations.is_revoked(&hit) {
            return Some(Err(ErrorKind::Revoked.into()));
        }
        Some(Ok(hit))
    }

    async fn verify_opaque(
        &self,
        introspector: &Introspector,
        token: &str,
    ) -> Result<Arc<Verified<Claims>>, VerifyError> {
        let verified = introspector.verify(token).await?;
        if self.0.revocations.is_revoked(&verified) {
            return Err(ErrorKind::Revoked.into());
        }
        Ok(verified)
    }

    async fn verify_uncached(&self, token: &str) -> Result<Arc<Verified<Claims>>, VerifyError> {
        let inner = &*self.0;
        // Read before the keys: if a key leaves the set meanwhile, the entry made below
        // carries the older generation and is checked again on its next use.
        let generation = inner.keys.generation();
        let parsed = UnverifiedToken::parse(token)?;
        if parsed
            .kid()
            .is_some_and(|kid| inner.revocations.is_key_revoked(kid))
        {
            // Whatever its signature, a token naming a revoked key is refused, and the key
            // is never fetched again.
            return Err(ErrorKind::Revoked.into());
        }
        let mut keys = inner.keys.current();
        if let (Keys::Remote(remote), Some(kid)) = (&inner.keys, parsed.kid()) {
            // Only a token that could verify once the key is known may cause a fetch.
            if !keys.contains(kid) && inner.policy.allows(parsed.header().alg()) {
                keys = remote.refetch_for_unknown_kid(kid).await;
            }
        }
        let now = inner.clock.now();
        let verified = match (&inner.single_key, parsed.kid()) {
            // HS256 mode: a token without `kid` may use the one key.
            (Some(key), None) => parsed.verify_with_key(key, &inner.policy, now)?,
            _ => parsed.verify(&keys, &inner.policy, now)?,
        };
        if inner.key_revoked(&verified) || inner.revocations.is_revoked(&verified) {
            return Err(ErrorKind::Revoked.into());
        }
        let verified = Arc::new(verified);
        if let Some(cache) = &inner.cache {
            cache.insert(token, Arc::clone(&verified), generation);
        }
        Ok(verified)
    }
}

/// Writes a security log event for a refused token: the internal reason code and the
/// SHA-256 of the token. The token itself is never logged.
pub(crate) fn log_rejection(token: &str, error: &VerifyError) {
    let reason = error.kind().code();
    if error.is_expired() {
        tracing::debug!(target: "wristband::security", reason, token_sha256 = %token_digest(token), "token refused");
    } else {
        tracing::warn!(target: "wristband::security", reason, token_sha256 = %token_digest(token), "token refused");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_sha256_hex() {
        assert_eq!(
            token_digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
