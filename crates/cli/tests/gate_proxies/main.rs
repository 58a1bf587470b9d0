//! The gate behind real proxies: `wristband serve`, `wristband gate`, the Flask upstream of
//! `examples/flask-upstream/` and nginx or Caddy started with the configurations shipped in
//! `deploy/` (only their ports replaced), all as child processes on loopback ports.
//!
//! Each test needs nginx or Caddy and Python with Flask (`.ci/gate.sh` installs them);
//! without them a test fails in CI and says loudly elsewhere that it did not run. The
//! browser test also needs Chromium and chromedriver (`.ci/browser.sh`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod browser;
mod caddy;
mod nginx;
mod shipped;
mod spoofing;
mod stack;

/// The percent-decoded value of query parameter `name` in `url`, if present.
pub(crate) fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}
