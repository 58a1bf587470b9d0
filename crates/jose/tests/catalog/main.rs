//! The security catalog (`SECURITY-CATALOG.md`), sections A–E, as table-driven tests of the
//! token core: one table per section, each row a hostile token built with real keys and the
//! outcome we require. Every rejection must also show only "token invalid" (or "token
//! expired" for expiry) to a client, and fail fast.
//!
//! Rows, or parts of rows, that only the HTTP verifier can show are covered in
//! crates/verify/tests:
//! - B2: zero outbound requests for `jku`/`x5u` (canary listener); here we show the header is
//!   refused before any key lookup.
//! - B5: "no extra latency, no callback" over HTTP; here every row is timed.
//! - B6, E5: at most one JWKS refetch per cool-down for unknown `kid`s.
//! - D8 (disabled or deleted users), D12 (replay after logout or revocation, keyed on
//!   `(iss, jti)`; see also A6 below).
//! - H1–H8: transport, uniform 401 bodies, timing, JWKS outage, logs.
//!
//! A8's "modified PKCS#1 v1.5 / PSS padding" needs the RSA private operation on chosen
//! values; the Wycheproof `ModifiedPadding` and `ModifiedSignature` vectors in
//! `tests/wycheproof.rs` cover it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use base64::Engine;
use serde_json::{json, Map, Value};
use wristband_jose::b64;
use wristband_jose::dangerous::sign_raw;
use wristband_jose::{
    verify_jws, Algorithm, ErrorKind, Jwks, KeySet, Policy, SigningKey, UnixTime, UnverifiedToken,
    VerifyingKey, MAX_JWKS_KEYS,
};

mod section_a;
mod section_b;
mod section_c;
mod section_d;
mod section_e;

const NOW: UnixTime = UnixTime::from_secs(1_800_000_000);
const ISS: &str = "https://auth.example";
const AUD: &str = "api://orders";
const LEEWAY: u64 = 30;

/// The catalog's sample payload `P`.
const P: &str = "eyJpc3MiOiJodHRwczovL2F1dGguZXhhbXBsZSIsInN1YiI6InVzZXItMTIzIiwiYXVkIjoiYXBpOi8vb3JkZXJzIiwiZXhwIjo0MTAyNDQ0ODAwLCJpYXQiOjE3MDAwMDAwMDAsImp0aSI6InQxIn0";

/// The order of the P-256 group, big-endian.
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// The order L of the Ed25519 base point, little-endian.
const ED25519_L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

// ---------------------------------------------------------------------------------------------
// Fixture: real keys, made once for the whole file (RSA generation is slow in debug builds).

struct Fixture {
    rs: SigningKey,
    ps: SigningKey,
    es: SigningKey,
    es2: SigningKey,
    ed: SigningKey,
    hs: SigningKey,
    /// Keys of an attacker: not in any set.
    evil_rs: SigningKey,
    evil_es: SigningKey,
    asym: KeySet,
    hs_set: KeySet,
    asym_policy: Policy,
    hs_policy: Policy,
    es_only_policy: Policy,
}

fn fx() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let gen = |alg, kid: &str| SigningKey::generate(alg).unwrap().with_kid(kid);
        let rs = gen(Algorithm::RS256, "rsa-1");
        let ps = gen(Algorithm::PS256, "ps-1");
        let es = gen(Algorithm::ES256, "k1");
        let es2 = gen(Algorithm::ES256, "k2");
        let ed = gen(Algorithm::EdDSA, "ed-1");
        let hs = gen(Algorithm::HS256, "hs-1");
        let evil_rs = gen(Algorithm::RS256, "rsa-1");
        let evil_es = gen(Algorithm::ES256, "hs-1");
        let asym = KeySet::from_keys([&rs, &ps, &es, &es2, &ed].map(|k| k.verifying_key().clone()))
            .unwrap();
        let hs_set = KeySet::from_keys([hs.verifying_key().clone()]).unwrap();
        let policy = |algs: &[Algorithm]| {
            Policy::builder(ISS, AUD)
                .algorithms(algs)
                .leeway(Duration::from_secs(LEEWAY))
                .build()
                .unwrap()
        };
        Fixture {
            asym_policy: policy(&Algorithm::ASYMMETRIC),
            hs_policy: policy(&[Algorithm::HS256]),
            es_only_policy: policy(&[Algorithm::ES256]),
            rs,
            ps,
            es,
            es2,
            ed,
            hs,
            evil_rs,
            evil_es,
            asym,
            hs_set,
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Token builders.

fn b64s(bytes: impl AsRef<[u8]>) -> String {
    b64::encode(bytes)
}

/// `{"alg":alg,"typ":"at+jwt","kid":kid}` as JSON text, members in that order (as the
/// catalog's example headers have them).
fn header(alg: &str, kid: &str) -> String {
    let q = |v: &str| serde_json::to_string(v).unwrap();
    format!(
        "{{\"alg\":{},\"typ\":\"at+jwt\",\"kid\":{}}}",
        q(alg),
        q(kid)
    )
}

/// The claims of a good access token at [`NOW`].
fn claims() -> Map<String, Value> {
    let now = NOW.as_secs();
    let Value::Object(m) = json!({
        "iss": ISS, "sub": "user-123", "aud": AUD, "exp": now + 600, "iat": now - 60,
        "jti": "t1", "client_id": "web",
    }) else {
        unreachable!()
    };
    m
}

/// Claims with changes applied: `Some(v)` sets, `None` removes.
fn claims_with(changes: &[(&str, Option<Value>)]) -> Vec<u8> {
    let mut c = claims();
    for (k, v) in changes {
        match v {
            Some(v) => c.insert((*k).to_owned(), v.clone()),
            None => c.remove(*k),
        };
    }
    serde_json::to_vec(&c).unwrap()
}

/// A token signed by `key` with its own proper header over `payload`.
fn signed(key: &SigningKey, payload: &[u8]) -> String {
    let h = header(key.algorithm().as_str(), key.kid());
    sign_raw(key, h.as_bytes(), payload).unwrap()
}

/// A good token from `key`.
fn good(key: &SigningKey) -> String {
    signed(key, &claims_with(&[]))
}

/// `header_b64.payload_b64.HMAC-SHA256(secret)`, with any secret at all (no strength checks:
/// this is the attacker's side).
fn hmac_token(header_b64: &str, payload_b64: &str, secret: &[u8]) -> String {
    let input = format!("{header_b64}.{payload_b64}");
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), input.as_bytes());
    format!("{input}.{}", b64s(tag.as_ref()))
}

fn split3(token: &str) -> (&str, &str, &str) {
    let mut it = token.splitn(3, '.');
    (it.next().unwrap(), it.next().unwrap(), it.next().unwrap())
}

/// The token with its signature replaced by `sig`.
fn with_sig(token: &str, sig: &[u8]) -> String {
    let (h, p, _) = split3(token);
    format!("{h}.{p}.{}", b64s(sig))
}

fn sig_of(token: &str) -> Vec<u8> {
    b64::decode(split3(token).2).unwrap()
}

/// Big-endian `a - b` for equal-length numbers with `a >= b`.
fn sub_be(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; a.len()];
    let mut borrow = 0i16;
    for i in (0..a.len()).rev() {
        let mut d = i16::from(a[i]) - i16::from(b[i]) - borrow;
        borrow = i16::from(d < 0);
        if d < 0 {
            d += 256;
        }
        out[i] = u8::try_from(d).unwrap();
    }
    assert_eq!(borrow, 0);
    out
}

/// Little-endian `a + b` (no overflow expected).
fn add_le(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; a.len()];
    let mut carry = 0u16;
    for i in 0..a.len() {
        let s = u16::from(a[i]) + u16::from(b[i]) + carry;
        out[i] = (s & 0xff) as u8;
        carry = s >> 8;
    }
    assert_eq!(carry, 0);
    out
}

/// DER encoding of an ECDSA signature given as `r || s`.
fn ecdsa_der(raw: &[u8]) -> Vec<u8> {
    let int = |v: &[u8]| {
        let mut v: Vec<u8> = v.iter().copied().skip_while(|&b| b == 0).collect();
        if v.first().is_none_or(|&b| b & 0x80 != 0) {
            v.insert(0, 0);
        }
        let mut out = vec![0x02, u8::try_from(v.len()).unwrap()];
        out.extend(v);
        out
    };
    let mut body = int(&raw[..32]);
    body.extend(int(&raw[32..]));
    let mut out = vec![0x30, u8::try_from(body.len()).unwrap()];
    out.extend(body);
    out
}

// ---------------------------------------------------------------------------------------------
// The table runner.

#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Asymmetric key set (RS256, PS256, ES256 x2, EdDSA) with the default allow-list.
    Asym,
    /// The HS256 deployment profile: one shared secret.
    Hs,
    /// Asymmetric key set, but only ES256 allowed.
    EsOnly,
}

#[derive(Debug)]
enum Expect {
    Accept,
    /// Rejected with one of these kinds.
    Reject(Vec<ErrorKind>),
}

use Expect::Accept;

fn reject(kinds: &[ErrorKind]) -> Expect {
    Expect::Reject(kinds.to_vec())
}

struct Case {
    id: &'static str,
    what: String,
    token: String,
    mode: Mode,
    expect: Expect,
}

fn case(id: &'static str, what: impl Into<String>, token: String, expect: Expect) -> Case {
    Case {
        id,
        what: what.into(),
        token,
        mode: Mode::Asym,
        expect,
    }
}

fn hs_case(id: &'static str, what: impl Into<String>, token: String, expect: Expect) -> Case {
    Case {
        mode: Mode::Hs,
        ..case(id, what, token, expect)
    }
}

/// How long any single row may take, even in a debug build: hostile input fails fast.
const ROW_BUDGET: Duration = Duration::from_millis(500);

fn run(section: &str, cases: Vec<Case>) {
    let f = fx();
    let mut failures = Vec::new();
    let (mut accepted, mut rejected) = (0, 0);
    for c in &cases {
        let (keys, policy) = match c.mode {
            Mode::Asym => (&f.asym, &f.asym_policy),
            Mode::Hs => (&f.hs_set, &f.hs_policy),
            Mode::EsOnly => (&f.asym, &f.es_only_policy),
        };
        let started = Instant::now();
        let result = UnverifiedToken::parse(&c.token).and_then(|t| t.verify(keys, policy, NOW));
        let took = started.elapsed();
        let label = format!("{} {} ({:?})", c.id, c.what, c.mode);
        if took > ROW_BUDGET {
            failures.push(format!("{label}: took {took:?}"));
        }
        match (&c.expect, result) {
            (Accept, Ok(v)) => {
                accepted += 1;
                assert_eq!(v.iss, ISS, "{label}");
            }
            (Accept, Err(e)) => failures.push(format!("{label}: rejected with {:?}", e.kind())),
            (Expect::Reject(kinds), Ok(_)) => {
                failures.push(format!("{label}: ACCEPTED, expected one of {kinds:?}"))
            }
            (Expect::Reject(kinds), Err(e)) => {
                rejected += 1;
                if !kinds.contains(&e.kind()) {
                    failures.push(format!(
                        "{label}: {:?}, expected one of {kinds:?}",
                        e.kind()
                    ));
                }
                let public = if e.kind() == ErrorKind::Expired {
                    "token expired"
                } else {
                    "token invalid"
                };
                if e.public_reason() != public {
                    failures.push(format!("{label}: public reason {:?}", e.public_reason()));
                }
                // The error never carries token content.
                let shown = format!("{e} {e:?}");
                if c.token.split('.').any(|s| s.len() > 8 && shown.contains(s)) {
                    failures.push(format!("{label}: error text echoes the token"));
                }
            }
        }
    }
    println!(
        "catalog {section}: {} rows, {accepted} accepted, {rejected} rejected, {} failures",
        cases.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "catalog {section}:\n{}",
        failures.join("\n")
    );
    assert!(accepted > 0, "{section}: every table has accepted controls");
}

use ErrorKind as K;

const BAD_SIG: &[ErrorKind] = &[K::BadSignature];
const MALFORMED: &[ErrorKind] = &[K::Malformed];
const ALG: &[ErrorKind] = &[K::AlgorithmNotAllowed];
const FORBIDDEN: &[ErrorKind] = &[K::ForbiddenHeader];
const JSON: &[ErrorKind] = &[K::InvalidJson];
const UNKNOWN_KID: &[ErrorKind] = &[K::UnknownKeyId];
