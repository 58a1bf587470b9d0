//! Why a verifier could not be built: its own module, so that the builder and the parts it
//! builds (the HS256 secret, the remote keys, the feed) share it without importing each other.

use crate::error::VerifyError;
use crate::feed::FeedError;
use crate::fetch::FetchError;

/// Why a [`Verifier`](crate::Verifier) could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A policy setting is out of range (leeway over 60 s, mixed algorithm families, ...).
    #[error("invalid verification policy")]
    Policy(#[source] VerifyError),
    /// The realm is empty or holds characters that need quoting.
    #[error("invalid realm")]
    Realm,
    /// A URL does not parse or has an unsupported scheme.
    #[error("invalid URL `{0}`")]
    Url(String),
    /// The issuer's metadata could not be fetched or is invalid.
    #[error("metadata discovery from `{0}` failed")]
    Discovery(String, #[source] FetchError),
    /// The key set could not be loaded.
    #[error("cannot load the key set from `{0}`")]
    Keys(String, #[source] FetchError),
    /// The static key set is empty or holds no key the policy allows.
    #[error("no usable verifying key")]
    NoKeys,
    /// The issuer's metadata does not advertise an endpoint a setting needs, or the
    /// endpoint's URL is unusable.
    #[error("the issuer's metadata has no usable `{0}`")]
    MissingEndpoint(&'static str),
    /// The revocation snapshot could not be read at start-up.
    #[error("cannot read the revocation feed")]
    Revocations(#[source] FeedError),
    /// The HS256 secret is unusable: not base64url, or a JWK that is not an HS256 `oct`
    /// key. The message never contains the secret.
    #[error("invalid HS256 secret: {0}")]
    Secret(String),
    /// The HS256 secret file could not be read.
    #[error("cannot read the HS256 secret file `{0}`")]
    SecretFile(String, #[source] std::io::Error),
    /// The HS256 secret is too weak to be a key: shorter than 32 bytes, a well-known value,
    /// or low-entropy. Generate one with `wristband keys generate --alg HS256`.
    #[error(
        "the HS256 secret is too weak ({0}): use at least 32 random bytes, for example from \
         `wristband keys generate --alg HS256`"
    )]
    WeakSecret(&'static str),
    /// The CA certificates given with [`VerifierBuilder::ca_certificates`](crate::VerifierBuilder::ca_certificates) are unusable.
    #[error("cannot use the CA certificates")]
    Ca(#[source] FetchError),
}
