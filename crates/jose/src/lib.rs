//! Wristband's token core: keys, JWK/JWKS, signing and strict local verification of
//! RFC 9068 access tokens. Pure: no I/O, no async, no globals.
//!
//! - [`key`]: [`SigningKey`] and [`VerifyingKey`] for RS256, PS256, ES256, EdDSA and HS256,
//!   parsed once at load, with PEM and JWK import and export and RFC 7638 thumbprints.
//! - [`KeySet`]: keys by `kid`, built from static keys or a published [`Jwks`].
//! - [`UnverifiedToken`]: strict syntax. Its claims are unreadable until
//!   [`UnverifiedToken::verify`] turns it into [`Verified<Claims>`].
//! - [`Policy`]: issuer, audiences, algorithm allow-list, leeway and maximum lifetime.
//! - [`dangerous`]: decoding without verification, for debugging tools only.
//!
//! ```
//! use std::time::Duration;
//! use wristband_jose::{sign, Algorithm, Claims, KeySet, Policy, SigningKey, UnixTime, UnverifiedToken};
//!
//! let key = SigningKey::generate(Algorithm::ES256)?;
//! let now = UnixTime::from_secs(1_800_000_000);
//! let claims = Claims::new("https://auth.example", "user-7f3a", "api://orders", now, Duration::from_secs(900))
//!     .with_client_id("web")
//!     .with_role("admin");
//! let token = sign(&key, &claims)?;
//!
//! // An API service holds only public keys.
//! let keys = KeySet::from_keys([key.verifying_key().clone()])?;
//! let policy = Policy::builder("https://auth.example", "api://orders").build()?;
//! let verified = UnverifiedToken::parse(&token)?.verify(&keys, &policy, now)?;
//! assert_eq!(verified.sub, "user-7f3a");
//! assert!(verified.has_role("admin"));
//!
//! // Fifteen minutes later the same token is expired.
//! let later = UnixTime::from_secs(1_800_000_900);
//! let err = UnverifiedToken::parse(&token)?.verify(&keys, &policy, later).unwrap_err();
//! assert_eq!(err.public_reason(), "token expired");
//! # Ok::<(), wristband_jose::Error>(())
//! ```

#![forbid(unsafe_code)]

mod alg;
pub mod b64;
mod claims;
pub mod dangerous;
mod der;
mod error;
mod flat;
mod json;
mod jwk;
pub mod key;
mod keyset;
mod policy;
mod secret;
mod time;
mod token;

pub use alg::Algorithm;
pub use claims::{authn, Audience, Claims, IAT_MS, REGISTERED};
pub use error::{Error, ErrorKind, Result};
pub use jwk::{Jwk, Jwks};
pub use key::{SigningKey, VerifyingKey};
pub use keyset::{KeySet, SkippedKey, MAX_JWKS_KEYS};
pub use policy::{Policy, PolicyBuilder, DEFAULT_MAX_LIFETIME, MAX_LEEWAY};
pub use secret::{
    check_hmac_secret, is_common_secret, SecretString, COMMON_SECRETS, MIN_HMAC_SECRET_LEN,
};
pub use time::{millis_i64, secs_i64, Clock, FixedClock, SystemClock, UnixTime, MAX_NUMERIC_DATE};
pub use token::{
    sign, sign_claims, verify_jws, Header, UnverifiedToken, Verified, FORBIDDEN_HEADER_PARAMS,
    MAX_TOKEN_BYTES,
};
