//! Black-box tests of the `wristband` binary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod connections;
mod keys;
mod revocation;
mod scale_out;
mod service;
mod startup;
mod tokens;
