//! Local verification of Wristband access tokens for API services.
//!
//! An API service checks every bearer token itself, with public keys only and no call to
//! the auth service. This crate wraps the token core (`wristband_jose`) with what a service
//! needs around it:
//!
//! - [`Verifier`] (built by [`VerifierBuilder`]): policy, keys, cache and revocation in one
//!   cheap-to-clone handle. Keys are static, read from a JWKS file, fetched from a JWKS URL,
//!   discovered from the issuer's RFC 8414 metadata, or one HS256 shared secret
//!   ([`VerifierBuilder::hs256_secret`], [`Hs256Secret`]).
//! - `remote` (configured through [`RemoteOptions`]): the fetched key set: retries at
//!   start-up, background refresh by `Cache-Control: max-age` clamped to [1 min, 24 h],
//!   one single-flight refetch per cooldown on an unknown `kid`, last good keys kept on
//!   any failure, fetches bounded in size and time.
//! - `cache`: verified tokens keyed by their exact bytes, bounded; a hit still checks `exp`
//!   and the [`RevocationView`] ([`NoRevocations`] until revocation is configured), for the
//!   token and for its signing key, and counts as a miss once a key left the key set.
//! - [`RequireTokenLayer`]: the tower layer that reads `Authorization: Bearer`, verifies,
//!   and puts [`Claims`] into the request extensions.
//! - [`CookieSource`] (enabled by [`VerifierBuilder::access_cookie`]): the access token
//!   from the auth service's `__Host-wb_at` cookie when no bearer header is sent, with the
//!   double-submit CSRF rule (403 `csrf_failed`) on state-changing requests.
//! - [`FeedRevocations`] (enabled by [`VerifierBuilder::revocation_feed`]): the revocation
//!   view that follows the auth service's feed (snapshot, then Server-Sent Events, with
//!   backoff and a polling fallback) and its [`StalenessPolicy`].
//! - `introspect`: opaque `wbo_` tokens checked by RFC 7662 introspection with a short
//!   bounded cache, through the same [`Verifier::verify`].
//! - [`relay`]: re-serving the followed feed to downstream verifiers ([`relay::Relay`]),
//!   which follow it with [`VerifierBuilder::revocation_feed_url`], so that a fleet forms
//!   a tree of relays.
//! - [`Claims`], [`Custom`], [`HasRole`], [`HasScope`]: axum extractors.
//! - [`AuthnRequirement`]: step-up authentication (RFC 9470), what a route needs of how
//!   and when the user signed in (`acr`, `amr`, `auth_time`), enforced for every token
//!   ([`VerifierBuilder::require_authn`]), per route ([`Verifier::require_authn`],
//!   [`RequireAuthnLayer`]) or in a handler ([`Claims::require_authn`]).
//! - [`AuthError`]: the one error type, answered as RFC 6750 and RFC 9470 prescribe.
//!
//! `examples/api_service/` is a whole API service built on this crate (the walkthrough's
//! "API Service"), served through `wristband-serve`.
//!
//! ```
//! use std::time::Duration;
//! use axum::{routing::get, Router};
//! use tower::ServiceExt;
//! use wristband_jose::{sign, Algorithm, Clock, KeySet, SigningKey, SystemClock};
//! use wristband_verify::{Claims, RequireTokenLayer, Verifier};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The auth service signs; the API service holds only the public key.
//! let key = SigningKey::generate(Algorithm::ES256)?;
//! let verifier = Verifier::builder("https://auth.example", "api://orders")
//!     .keys(KeySet::from_keys([key.verifying_key().clone()])?)
//!     .build()
//!     .await?;
//!
//! let claims = wristband_jose::Claims::new(
//!     "https://auth.example", "user-7f3a", "api://orders", SystemClock.now(), Duration::from_secs(900),
//! )
//! .with_client_id("web")
//! .with_role("admin");
//! let token = sign(&key, &claims)?;
//!
//! // Direct use.
//! let verified = verifier.verify(&token).await?;
//! assert_eq!(verified.sub, "user-7f3a");
//!
//! // As a tower layer with an axum extractor.
//! let app = Router::new()
//!     .route("/whoami", get(|claims: Claims| async move { claims.sub.clone() }))
//!     .layer(RequireTokenLayer::new(verifier));
//! let request = http::Request::get("/whoami")
//!     .header("authorization", format!("Bearer {token}"))
//!     .body(axum::body::Body::empty())?;
//! assert_eq!(app.clone().oneshot(request).await?.status(), 200);
//!
//! // No token: 401 with a bare challenge.
//! let request = http::Request::get("/whoami").body(axum::body::Body::empty())?;
//! let response = app.oneshot(request).await?;
//! assert_eq!(response.status(), 401);
//! assert_eq!(response.headers()["www-authenticate"], "Bearer realm=\"wristband\"");
//! # Ok(())
//! # }
//! ```

//!
//! # Revocation feed, staleness policy and opaque tokens
//!
//! With a resource-server client's credentials the verifier follows the auth service's
//! revocation feed, so a revoked token is refused within about a second without any call
//! on the request path, and it accepts opaque `wbo_` tokens by introspection:
//!
//! ```no_run
//! use std::time::Duration;
//! use wristband_verify::{StalenessPolicy, Verifier};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let verifier = Verifier::builder("https://auth.example", "api://orders")
//!     .client_credentials("rs-client-id", "rs-client-secret")
//!     .revocation_feed()
//!     .staleness_policy(StalenessPolicy::FailClosed)
//!     .max_staleness(Duration::from_secs(60))
//!     .build()
//!     .await?;
//! let staleness = verifier.revocation_staleness();
//! # let _ = staleness;
//! # Ok(())
//! # }
//! ```
//!
//! Out of sync for longer than `max_staleness`, [`StalenessPolicy::FailOpen`] (the
//! default) keeps accepting tokens and logs errors, and [`StalenessPolicy::FailClosed`]
//! refuses tokens issued before the last sync; see [`FeedRevocations`].
//!
//! # Step-up (RFC 9470)
//!
//! Access tokens carry how and when the user signed in: `amr` (RFC 8176 method names),
//! `acr` ([`wristband_jose::authn::ACR_PWD`], [`ACR_MFA`](wristband_jose::authn::ACR_MFA)
//! or [`ACR_PHR`](wristband_jose::authn::ACR_PHR), weakest first) and `auth_time`. A route
//! that needs more than a valid token puts an [`AuthnRequirement`] behind the token layer;
//! a valid token that falls short gets 401 `insufficient_user_authentication`, whose
//! challenge names the `acr_values` and `max_age` the client should ask for when it sends
//! the user to sign in again:
//!
//! ```
//! use std::time::Duration;
//! use axum::{routing::get, Router};
//! use tower::ServiceExt;
//! use wristband_jose::{authn, sign, Algorithm, Clock, KeySet, SigningKey, SystemClock};
//! use wristband_verify::{AuthnRequirement, Claims, Verifier};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let key = SigningKey::generate(Algorithm::ES256)?;
//! let verifier = Verifier::builder("https://auth.example", "api://orders")
//!     .keys(KeySet::from_keys([key.verifying_key().clone()])?)
//!     .build()
//!     .await?;
//! // /admin: a second factor (or a passkey), signed in within the last 5 minutes.
//! let admin = Router::new()
//!     .route("/admin", get(|c: Claims| async move { c.sub.clone() }))
//!     .route_layer(verifier.require_authn(AuthnRequirement::mfa().max_age(Duration::from_secs(300))));
//! let app = Router::new()
//!     .route("/orders", get(|| async { "orders" }))
//!     .merge(admin)
//!     .layer(verifier.layer());
//!
//! // A password-only sign-in: fine for /orders, refused on /admin.
//! let now = SystemClock.now();
//! let claims = wristband_jose::Claims::new(
//!     "https://auth.example", "user-7f3a", "api://orders", now, Duration::from_secs(900),
//! )
//! .with_client_id("web")
//! .with_authentication(&["pwd"], authn::ACR_PWD, now);
//! let token = sign(&key, &claims)?;
//! let request = |path: &str| {
//!     http::Request::get(path)
//!         .header("authorization", format!("Bearer {token}"))
//!         .body(axum::body::Body::empty())
//! };
//! assert_eq!(app.clone().oneshot(request("/orders")?).await?.status(), 200);
//! let response = app.oneshot(request("/admin")?).await?;
//! assert_eq!(response.status(), 401);
//! assert_eq!(
//!     response.headers()["www-authenticate"],
//!     "Bearer realm=\"wristband\", error=\"insufficient_user_authentication\", \
//!      error_description=\"A different authentication level is required\", \
//!      acr_values=\"urn:wristband:acr:mfa urn:wristband:acr:phr\", max_age=300"
//! );
//! # Ok(())
//! # }
//! ```
//!
//! [`VerifierBuilder::require_authn`] applies one requirement to every token the layer and
//! [`Verifier::authenticate`] accept; the `max_age` of any requirement is measured by the
//! verifier's clock ([`Verifier::now`]).
//!
//! # Key rotation, removal and emergency revocation
//!
//! - A key that is retired but still published keeps verifying; a token under a new `kid`
//!   causes one refetch of the JWKS (at most one per cooldown).
//! - A key that a JWKS refresh no longer finds is dropped, and tokens it signed are refused
//!   from then on, even those in the verified-token cache.
//! - With the revocation feed, a `kid` record ([`RevocationKind::Kid`]) revokes a key in an
//!   emergency: tokens naming it are refused on the next request, cached or not, the key
//!   leaves the fetched key set, and a stale JWKS copy that still publishes it does not
//!   bring it back while the record lives. While no key is revoked the per-request check
//!   is one atomic load.
//!
//! # HS256 mode
//!
//! ```no_run
//! use wristband_verify::{Hs256Secret, Verifier};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // `secret.jwk.json` from `wristband keys generate --alg HS256`, or a file holding the
//! // base64url secret. Weak secrets are refused by `build`.
//! let verifier = Verifier::builder("https://auth.example", "api://orders")
//!     .hs256_secret(Hs256Secret::read("secret.jwk.json")?)
//!     .build()
//!     .await?;
//! # let _ = verifier;
//! # Ok(())
//! # }
//! ```
//!
//! Only HS256 is allowed then, so no public key can be mistaken for the secret; tokens must
//! name the secret's `kid` (its RFC 7638 thumbprint) or no `kid` at all.

#![forbid(unsafe_code)]

mod build_error;
mod builder;
mod cache;
mod cookie;
mod error;
mod extract;
mod feed;
mod fetch;
mod hs256;
mod introspect;
mod layer;
pub mod relay;
mod remote;
mod revocation;
mod stepup;
mod verifier;

pub use builder::{metadata_url, BuildError, VerifierBuilder, METADATA_SUFFIX};
pub use cache::DEFAULT_CACHE_CAPACITY;
pub use cookie::{CookieSource, ACCESS_COOKIE, CSRF_COOKIE, CSRF_HEADER};
pub use error::token_digest;
pub use error::{
    step_up_body, AuthError, AuthErrorKind, Realm, VerifyError, CSRF_FAILED_BODY, EXPIRED_BODY,
    INVALID_BODY, STEP_UP_DESCRIPTION,
};
pub use extract::{Claims, Custom, HasRole, HasScope, RoleName, ScopeName};
pub use feed::{
    FeedError, FeedOptions, FeedRevocations, RevocationKind, RevocationRecord, RevocationSet,
    StalenessPolicy,
};
pub use fetch::{
    fetch_document, FetchError, FetchOptions, DEFAULT_FETCH_TIMEOUT, DEFAULT_MAX_FETCH_BYTES,
};
pub use hs256::Hs256Secret;
pub use introspect::{
    is_opaque, DEFAULT_INTROSPECTION_CAPACITY, DEFAULT_INTROSPECTION_TTL, OPAQUE_PREFIX,
};
pub use layer::{RequireToken, RequireTokenLayer, ResponseFuture, MAX_FORM_SCAN_BYTES};
pub use remote::{
    RemoteOptions, DEFAULT_REFETCH_COOLDOWN, DEFAULT_REFRESH, MAX_REFRESH, MIN_REFRESH,
};
pub use revocation::{NoRevocations, RevocationView};
pub use stepup::{AuthnFuture, AuthnRequirement, InvalidAcrValue, RequireAuthn, RequireAuthnLayer};
pub use verifier::Verifier;
