//! Browser tests: headless Chromium (through chromedriver) against pages served by the
//! auth service. Each test needs `/usr/bin/chromium` and `/usr/bin/chromedriver`
//! (`.ci/browser.sh` installs them); without them a test fails in CI and says loudly
//! elsewhere that it did not run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod a11y;
mod harness;
mod mounted;
mod oidc;
mod pages;
mod passkeys;
mod tour;

/// One browser at a time: a headless Chromium is heavy for a small machine, and the
/// tests wait on timing-sensitive pages.
pub(crate) static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
