//! Test helpers for Wristband. Not published.
//!
//! - [`keys`]: signing keys per algorithm; RSA keys are generated once per process and
//!   reused, since generating them is slow.
//! - [`JwksServer`]: a JWKS and RFC 8414 metadata server on `127.0.0.1:0` whose key set,
//!   failure mode and `Cache-Control` can be changed mid-test, and which counts fetches.
//! - [`MockAuth`]: a mock auth service (metadata, JWKS, client credentials,
//!   introspection, revocation snapshot and stream) with controllable records and failures.
//! - [`Minter`]: mints valid and deliberately broken access tokens; [`catalog`] lists the
//!   security catalog's forged and confused tokens for one minter.
//! - [`Canary`]: a TCP listener that only counts connections, to prove that nothing
//!   reached it.
//! - [`http`]: a small HTTP client for black-box requests.
//! - [`postgres`]: the PostgreSQL test server, per-test schema names, and what a test
//!   does when no server answers.
//! - [`TcpProxy`]: a TCP proxy that spreads connections over several backends and can
//!   cut and restore them, to put a load balancer or a failing network in a test.
//! - `browser` (with the feature `browser`): headless Chromium over WebDriver
//!   (chromedriver) for page tests, and what a test does when no browser is installed.
//! - [`process`]: runs an example binary (such as `api_service`) as a child process and
//!   reads the address it listens on.
//! - [`slow_clients`]: many connections holding half-sent requests, to test that a server
//!   closes them and keeps serving.
//!
//! Helpers panic on setup failures: a broken fixture should stop the test loudly.

#![forbid(unsafe_code)]
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

#[cfg(feature = "browser")]
pub mod browser;
mod canary;
pub mod catalog;
pub mod http;
mod jwks_server;
pub mod keys;
mod minter;
pub mod mock_auth;
pub mod postgres;
pub mod process;
mod proxy;
pub mod slow_clients;

pub use canary::Canary;
pub use jwks_server::{JwksServer, Mode};
pub use minter::Minter;
pub use mock_auth::MockAuth;
pub use proxy::TcpProxy;
