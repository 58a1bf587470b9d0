//! Black-box tests of the auth service on a real SQLite file.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs,
    unreachable_pub
)]

mod abuse;
mod cookies;
mod cutoffs;
mod errors;
mod fanout;
mod flows;
mod helpers;
mod introspect;
mod keys;
mod metrics;
mod mfa;
mod mfa_pages;
mod mount;
mod oauth_token;
mod oidc;
mod oidc_logout;
mod opaque;
mod openapi;
mod pages;
mod refresh;
mod revocations;
mod sessions;
mod stream;
mod throttle;
