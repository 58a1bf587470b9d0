//! The Wristband gate: a forward-auth decision service that reverse proxies ask before
//! every request (nginx `auth_request`, Traefik `forwardAuth`, Caddy `forward_auth`,
//! Envoy `ext_authz`), verifying tokens locally with `wristband-verify`: the verified-token
//! cache, the revocation view and the staleness policy, with no call to the auth service
//! on the request path.
//!
//! - [`original`]: the original request as each proxy describes it ([`Protocol`]), trusted
//!   only from the configured proxies, and the navigation test.
//! - [`path`]: the normalisation a path goes through before rules see it.
//! - [`policy`]: the TOML policy compiled into ordered rules ([`Policy`]).
//! - [`Gate`] (in `decision`): one decision for every protocol ([`Decision`]).
//! - `response`: the one mapping of a decision to each protocol's answer.
//! - [`headers`]: the decision headers, from the verified token only.
//! - [`router`]: the axum routes; `reload`: following the policy file; `metrics`.
//!
//! ```
//! use axum::body::Body;
//! use axum::extract::ConnectInfo;
//! use std::net::SocketAddr;
//! use tower::ServiceExt;
//! use wristband_gate::{router, Gate, GateOptions, Policy, PolicyHandle};
//! use wristband_jose::{Algorithm, KeySet, SigningKey};
//! use wristband_verify::Verifier;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = SigningKey::generate(Algorithm::ES256)?;
//! let verifier = Verifier::builder("https://auth.example", "wristband")
//!     .keys(KeySet::from_keys([key.verifying_key().clone()])?)
//!     .build()
//!     .await?;
//! let policy = Policy::parse("[[rule]]\npath = \"/public\"\nrequire = \"anonymous\"\n")?;
//! let gate = Gate::new(verifier, PolicyHandle::new(policy), GateOptions::for_issuer("https://auth.example"));
//!
//! // nginx asks about GET https://app.example/public/page: anonymous, so allowed.
//! let peer: SocketAddr = "127.0.0.1:40000".parse()?;
//! let mut request = http::Request::get("/authz/auth-request")
//!     .header("x-original-url", "https://app.example/public/page")
//!     .header("x-original-method", "GET")
//!     .body(Body::empty())?;
//! request.extensions_mut().insert(ConnectInfo(peer));
//! assert_eq!(router(gate).oneshot(request).await?.status(), 200);
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

mod decision;
pub mod headers;
mod metrics;
pub mod original;
pub mod path;
pub mod policy;
mod reload;
mod response;
mod router;

pub use decision::{
    default_trusted_proxies, Decision, Denial, Gate, GateOptions, PolicyHandle, Verdict,
};
pub use original::{Original, Protocol};
pub use policy::{Policy, PolicyError, Require, Rule};
pub use reload::POLL_INTERVAL;
pub use response::{
    login_location, step_up_location, INSUFFICIENT_BODY, MISSING_BODY, NO_RULE_BODY, ORIGINAL_BODY,
    PATH_BODY, TWICE_BODY,
};
pub use router::router;
