//! The revocation hook consulted on every verification, cached or not.

use wristband_jose::Claims;

/// Answers "has this token been revoked?" for verified claims.
///
/// The verifier asks on every request: on a verified-token cache hit as well as after a
/// full verification, so a revocation takes effect on the next request even for a cached
/// token. The call is synchronous and on the hot path: an implementation keeps an
/// in-memory snapshot (refreshed in the background) and answers from it in well under a
/// microsecond.
///
/// Revocation must be keyed on claims, never on the token bytes (an ECDSA signature can be
/// re-encoded, catalog A6). The keys an implementation is expected to use are:
///
/// - `(iss, jti)`: one access token;
/// - `sid`: every token of a session (logout);
/// - `(iss, sub)` with a cut-off time: every token of a user issued at or before the
///   cut-off (`iat <= cutoff`), for password changes and disabled accounts;
/// - the signing key's `kid` ([`RevocationView::is_key_revoked`]): every token signed by
///   a key revoked in an emergency. The verifier asks with the `kid` of the token's
///   verified header, on cache hits as on full verifications (for a token without `kid`,
///   accepted only in HS256 mode, with the `kid` of the one HS256 key).
///
/// A revoked token is answered with 401 `invalid_token`, like any other bad token.
/// Closures `Fn(&Claims) -> bool` implement the trait.
pub trait RevocationView: Send + Sync + 'static {
    /// True when the token with these (verified) claims must be refused.
    fn is_revoked(&self, claims: &Claims) -> bool;

    /// True when every token signed by the key `kid` must be refused (an emergency key
    /// revocation). Called on every verification, so it must answer in a few nanoseconds
    /// when no key is revoked. Default: no key is ever revoked.
    #[inline]
    fn is_key_revoked(&self, kid: &str) -> bool {
        let _ = kid;
        false
    }
}

/// The view used until a revocation source is configured: nothing is revoked.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRevocations;

impl RevocationView for NoRevocations {
    #[inline]
    fn is_revoked(&self, _claims: &Claims) -> bool {
        false
    }
}

impl<F> RevocationView for F
where
    F: Fn(&Claims) -> bool + Send + Sync + 'static,
{
    fn is_revoked(&self, claims: &Claims) -> bool {
        self(claims)
    }
}
