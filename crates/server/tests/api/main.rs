//! Black-box tests of the auth service on a real SQLite file.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod errors;
mod flows;
mod helpers;
mod refresh;
mod throttle;
