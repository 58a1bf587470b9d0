//! TOTP against an independent implementation: codes that pyotp (PyPI) computes from
//! Wristband's secrets, through the `otpauth:` URI an app would scan, are the ones
//! Wristband accepts, at the steps it says.
//!
//! Needs `python3` with `pyotp` (`.ci/mfa.sh` installs it). Without it the test fails in CI
//! (`CI` set, or `WRISTBAND_REQUIRE_PYOTP=1`) and otherwise says loudly that it did not run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::Write;
use std::process::{Command, Stdio};

use wristband_server::domain::totp::{Settings, Totp};

fn required() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
        || std::env::var("WRISTBAND_REQUIRE_PYOTP").is_ok_and(|v| v == "1")
}

/// pyotp's codes for `uri` at each of `times`, one per line; `None` when pyotp is missing
/// and not required.
fn pyotp_codes(uri: &str, times: &[i64]) -> Option<Vec<String>> {
    let script = "import sys, pyotp\n\
                  totp = pyotp.parse_uri(sys.argv[1])\n\
                  for t in sys.argv[2:]:\n    print(totp.at(int(t)))\n";
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(script).arg(uri);
    cmd.args(times.iter().map(ToString::to_string));
    let out = cmd.stderr(Stdio::piped()).output();
    match out {
        Ok(o) if o.status.success() => Some(
            String::from_utf8(o.stdout)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect(),
        ),
        other => {
            let why = match other {
                // The exception, not the whole traceback.
                Ok(o) => String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .last()
                    .unwrap_or("no output")
                    .to_owned(),
                Err(e) => e.to_string(),
            };
            assert!(
                !required(),
                "pyotp is required here (CI or WRISTBAND_REQUIRE_PYOTP=1) but failed: {why}; \
                 run .ci/mfa.sh"
            );
            let _ = std::io::stderr().write_all(
                format!("\n!!! NOT RUN: totp_interop (pyotp: {why}); run .ci/mfa.sh\n").as_bytes(),
            );
            None
        }
    }
}

#[test]
fn pyotp_codes_are_accepted_at_their_steps() {
    let times = [
        59,
        1_111_111_109,
        1_700_000_000,
        1_700_000_029,
        1_700_000_030,
        2_000_000_000,
    ];
    for _ in 0..5 {
        let totp = Totp::generate().unwrap();
        let uri = totp.otpauth_uri("Wristband", "alice@example.com");
        let Some(codes) = pyotp_codes(&uri, &times) else {
            return;
        };
        assert_eq!(codes.len(), times.len(), "{codes:?}");
        for (code, &t) in codes.iter().zip(&times) {
            assert_eq!(code, totp.code_at(t).as_str(), "at {t}");
            let step = totp.verify(code, t, None);
            assert_eq!(step, Some(Settings::STANDARD.step_at(t)), "at {t}");
            // The same code again, once accepted, is a replay.
            assert_eq!(totp.verify(code, t, step), None, "replayed at {t}");
        }
    }
}
