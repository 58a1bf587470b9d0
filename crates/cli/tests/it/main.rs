//! Black-box tests of the `wristband` binary.
//!
//! Every process these tests start is a binary cargo built before this test binary ran:
//! `wristband` (`CARGO_BIN_EXE_wristband`) and the API service example, which this package
//! declares as its example `cli_api_service` (the source of wristband-verify's
//! `api_service`) so that `cargo test -p wristband` builds it ([`api_service_binary`]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod connections;
mod fetch;
mod gate;
mod keys;
mod mfa;
mod mounted;
mod relay_tree;
mod revocation;
mod scale_out;
mod service;
mod startup;
mod tokens;

/// The API service example, built by cargo with this package's tests.
pub fn api_service_binary() -> std::path::PathBuf {
    wristband_testkit::process::example_binary("cli_api_service")
}
