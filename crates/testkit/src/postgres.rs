//! PostgreSQL for tests: where the test server is, a fresh schema name per test, and what
//! a test does when no server answers.
//!
//! In CI every PostgreSQL test must run: when `CI` is set (non-empty) or
//! `WRISTBAND_REQUIRE_POSTGRES=1`, a test that cannot reach the server fails. Elsewhere it
//! says loudly on the terminal that it did not run, and how to run it, and returns.

use std::fmt::Display;
use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;

/// The variable that names the test server.
pub const URL_VAR: &str = "WRISTBAND_TEST_POSTGRES";
/// The variable that makes an unreachable server a test failure outside CI too.
pub const REQUIRE_VAR: &str = "WRISTBAND_REQUIRE_POSTGRES";
/// The server tried when [`URL_VAR`] is not set.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The test server's URL: [`URL_VAR`], or [`DEFAULT_URL`].
pub fn url() -> String {
    std::env::var(URL_VAR)
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_URL.to_owned())
}

/// True when PostgreSQL tests must not be left out: in CI (`CI` set and non-empty) or
/// with `WRISTBAND_REQUIRE_POSTGRES=1`.
pub fn required() -> bool {
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    let forced = std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1");
    ci || forced
}

/// A schema name for one test, unique within the server's lifetime in practice: letters,
/// digits and `_` from the test's last path segment, the process id and a per-process
/// counter. A schema left behind by a failed test can thus be found by its name.
pub fn schema_name(test: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let last = test.rsplit("::").next().unwrap_or(test);
    let stem: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(36)
        .collect();
    format!("wbt_{stem}_{}_{n}", std::process::id())
}

/// Reports that `test` could not reach the PostgreSQL server. Panics (failing the test)
/// when [`required`]; otherwise writes a warning straight to the terminal (past the test
/// harness's output capture, so it shows without `--nocapture`) and the caller returns.
pub fn not_run(test: &str, error: &dyn Display) {
    if required() {
        panic!(
            "{test}: PostgreSQL is required here (CI or {REQUIRE_VAR}=1) but {URL_VAR} \
             could not be reached: {error}"
        );
    }
    // One write per message, straight to the terminal: past the test harness's output
    // capture, and not interleaved with other tests' lines.
    static BANNER: Once = Once::new();
    let mut message = String::new();
    BANNER.call_once(|| {
        message = format!(
            "\n!!! WARNING: no PostgreSQL server answered; PostgreSQL tests did NOT run.\n\
             !!! Set {URL_VAR}=postgres://USER@HOST:PORT/DB (default {DEFAULT_URL}),\n\
             !!! or run .ci/run, to run them.\n"
        );
    });
    message.push_str(&format!(
        "!!! NOT RUN: {test} (PostgreSQL unreachable: {error}); set {URL_VAR}=postgres://... \
         (or run .ci/run) to run it\n"
    ));
    let _ = std::io::stderr().write_all(message.as_bytes());
}
