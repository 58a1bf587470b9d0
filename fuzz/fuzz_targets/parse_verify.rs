//! Fuzz target: arbitrary bytes as a compact token (parse, verify, verify_jws, unverified
//! decode) and as a JWKS document (`Jwks::from_slice` + `KeySet::from_jwks`). Keys and "now"
//! are fixed, so runs are reproducible. Invariants are asserted in
//! [`wristband_jose_fuzz::check`]; any panic is a finding.
//!
//! Run: `bash .ci/fuzz.sh 60` from the repository root.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wristband_jose_fuzz::check(data);
});
