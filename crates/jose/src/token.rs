//! Compact JWS access tokens: strict parsing, verification as a change of type, and signing.

use std::cell::Cell;
use std::fmt;
use std::ops::Deref;

use serde::de::{MapAccess, Visitor};

use crate::alg::Algorithm;
use crate::b64;
use crate::claims::{Claims, RawClaims, RawClaimsVisitor};
use crate::error::{Error, ErrorKind, Result};
use crate::json::{duplicate, parse_object, Key, Scalar, SeenKeys, StrictValue};
use crate::key::{SigningKey, VerifyingKey};
use crate::keyset::KeySet;
use crate::policy::Policy;
use crate::time::UnixTime;

/// The largest token accepted, in bytes, checked before any decoding (catalog E1).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Header parameters that make us refuse a token: extensions we do not understand (`crit`,
/// `b64`, `zip`), key material or key URLs carried by the token itself (`jwk`, `jku`,
/// `x5u`, `x5c`), and JWE parameters.
pub const FORBIDDEN_HEADER_PARAMS: &[&str] = &[
    "crit", "jwk", "jku", "x5u", "x5c", "b64", "zip", "enc", "epk", "p2c", "p2s", "iv", "tag",
    "apu", "apv",
];

/// The protected header of a token. Only `alg`, `typ` and `kid` are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    alg: Algorithm,
    typ: Option<String>,
    kid: Option<String>,
}

impl Header {
    /// The signature algorithm named by the token.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The `typ` parameter.
    pub fn typ(&self) -> Option<&str> {
        self.typ.as_deref()
    }

    /// The `kid` parameter.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    fn parse(bytes: &[u8]) -> Result<Header> {
        let fail = Cell::new(None);
        match parse_object(bytes, HeaderVisitor { fail: &fail }) {
            Ok(h) => Ok(h),
            Err(e) => Err(Error::with_source(
                fail.get().unwrap_or(ErrorKind::InvalidJson),
                e,
            )),
        }
    }

    fn typ_is_access_token(&self) -> bool {
        self.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
        })
    }
}

struct HeaderVisitor<'a> {
    fail: &'a Cell<Option<ErrorKind>>,
}

impl<'de> Visitor<'de> for HeaderVisitor<'_> {
    type Value = Header;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JOSE header object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Header, A::Error> {
        let mut seen = SeenKeys::default();
        let (mut alg, mut typ, mut kid) = (None, None, None);
        let fail = |kind: ErrorKind, what: &str| {
            self.fail.set(Some(kind));
            serde::de::Error::custom(what)
        };
        while let Some(Key(name)) = map.next_key::<Key<'de>>()? {
            if !seen.insert(name.clone()) {
                return Err(duplicate(&name));
            }
            if FORBIDDEN_HEADER_PARAMS.contains(&&*name) {
                return Err(fail(
                    ErrorKind::ForbiddenHeader,
                    "forbidden header parameter",
                ));
            }
            match &*name {
                "alg" | "typ" | "kid" => {
                    let Scalar::Str(v) = map.next_value::<Scalar<'de>>()? else {
                        let kind = match &*name {
                            "alg" => ErrorKind::AlgorithmNotAllowed,
                            "typ" => ErrorKind::WrongType,
                            _ => ErrorKind::MissingKeyId,
                        };
                        return Err(fail(kind, "header parameter of the wrong type"));
                    };
                    match &*name {
                        "alg" => {
                            alg = Some(v.parse::<Algorithm>().map_err(|_| {
                                fail(ErrorKind::AlgorithmNotAllowed, "unsupported alg")
                            })?)
                        }
                        "typ" => typ = Some(v.into_owned()),
                        _ => kid = Some(v.into_owned()),
                    }
                }
                _ => {
                    map.next_value_seed(StrictValue)?;
                }
            }
        }
        let alg = alg.ok_or_else(|| fail(ErrorKind::AlgorithmNotAllowed, "missing alg"))?;
        Ok(Header { alg, typ, kid })
    }
}

/// The three base64url segments of a compact JWS, after the syntax checks that come before
/// any decoding: size, character set and exactly two dots.
struct Segments<'a> {
    signing_input: &'a str,
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
}

impl<'a> Segments<'a> {
    fn split(token: &'a str) -> Result<Self> {
        let bytes = token.as_bytes();
        if bytes.len() > MAX_TOKEN_BYTES {
            return Err(Error::new(ErrorKind::TooLarge));
        }
        let mut dots = [0usize; 2];
        let mut n = 0;
        for (i, &b) in bytes.iter().enumerate() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => {}
                b'.' => {
                    if n == 2 {
                        return Err(Error::new(ErrorKind::Malformed));
                    }
                    dots[n] = i;
                    n += 1;
                }
                _ => return Err(Error::new(ErrorKind::Malformed)),
            }
        }
        if n != 2 {
            return Err(Error::new(ErrorKind::Malformed));
        }
        let (d1, d2) = (dots[0], dots[1]);
        let seg = Segments {
            signing_input: &token[..d2],
            header: &token[..d1],
            payload: &token[d1 + 1..d2],
            signature: &token[d2 + 1..],
        };
        if seg.header.is_empty() || seg.signature.is_empty() {
            return Err(Error::new(ErrorKind::Malformed));
        }
        Ok(seg)
    }
}

/// A token that has passed the syntax checks but whose signature has not been checked.
///
/// Its claims cannot be read: [`UnverifiedToken::verify`] is the only way to them.
pub struct UnverifiedToken<'a> {
    signing_input: &'a str,
    header: Header,
    signature: Vec<u8>,
    claims: RawClaims,
}

impl fmt::Debug for UnverifiedToken<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnverifiedToken")
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl<'a> UnverifiedToken<'a> {
    /// Applies the strict syntax rules: at most [`MAX_TOKEN_BYTES`], three segments of
    /// `[A-Za-z0-9_-]`, canonical unpadded base64url, header and payload UTF-8 JSON objects
    /// without duplicate members, and none of the [`FORBIDDEN_HEADER_PARAMS`].
    pub fn parse(token: &'a str) -> Result<Self> {
        let seg = Segments::split(token)?;
        let mut buf = Vec::with_capacity(seg.payload.len());
        b64::decode_into(seg.header, &mut buf)?;
        let header = Header::parse(&buf)?;
        buf.clear();
        b64::decode_into(seg.payload, &mut buf)?;
        let claims = parse_object(&buf, RawClaimsVisitor)
            .map_err(|e| Error::with_source(ErrorKind::InvalidJson, e))?;
        let signature = b64::decode(seg.signature)?;
        Ok(UnverifiedToken {
            signing_input: seg.signing_input,
            header,
            signature,
            claims,
        })
    }

    /// The unverified header. Use it only to pick a key.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The unverified `kid`.
    pub fn kid(&self) -> Option<&str> {
        self.header.kid()
    }

    /// Checks the token against `keys` and `policy` at time `now`.
    ///
    /// The key is chosen by `kid` from `keys` only. The header `alg` must be on the
    /// policy's allow-list and equal the key's algorithm. The signature is checked first,
    /// and only then `typ`, the claim types, `iss`, `aud`, `exp`, `nbf`, `iat` and the
    /// maximum lifetime.
    pub fn verify(self, keys: &KeySet, policy: &Policy, now: UnixTime) -> Result<Verified<Claims>> {
        let kid = self
            .header
            .kid
            .as_deref()
            .ok_or_else(|| Error::new(ErrorKind::MissingKeyId))?;
        let key = keys
            .get(kid)
            .ok_or_else(|| Error::new(ErrorKind::UnknownKeyId))?;
        self.verify_with_key(key, policy, now)
    }

    /// Like [`UnverifiedToken::verify`] with one given key (whatever the token's `kid`).
    pub fn verify_with_key(
        self,
        key: &VerifyingKey,
        policy: &Policy,
        now: UnixTime,
    ) -> Result<Verified<Claims>> {
        let alg = self.header.alg;
        if !policy.allows(alg) {
            return Err(Error::new(ErrorKind::AlgorithmNotAllowed));
        }
        if key.algorithm() != alg {
            return Err(Error::new(ErrorKind::AlgorithmMismatch));
        }
        key.verify_signature(self.signing_input.as_bytes(), &self.signature)?;
        // Signature is good: now the claims.
        if !self.header.typ_is_access_token() {
            return Err(Error::new(ErrorKind::WrongType));
        }
        let claims = self.claims.into_claims(policy.require_client_id)?;
        check_claims(&claims, policy, now)?;
        Ok(Verified {
            header: self.header,
            claims,
        })
    }
}

fn check_claims(c: &Claims, policy: &Policy, now: UnixTime) -> Result<()> {
    let fail = |k| Err(Error::new(k));
    if c.iss != policy.issuer {
        return fail(ErrorKind::WrongIssuer);
    }
    if !policy.audiences.iter().any(|a| c.aud.contains(a)) {
        return fail(ErrorKind::WrongAudience);
    }
    let (now, leeway) = (now.as_secs(), policy.leeway);
    let (exp, iat) = (c.exp.as_secs(), c.iat.as_secs());
    if exp < iat || exp - iat > policy.max_lifetime {
        return fail(ErrorKind::LifetimeTooLong);
    }
    if iat > now.saturating_add(leeway) {
        return fail(ErrorKind::IssuedInFuture);
    }
    if let Some(nbf) = c.nbf {
        if nbf.as_secs() > now.saturating_add(leeway) {
            return fail(ErrorKind::NotYetValid);
        }
    }
    // "The current time MUST be before the time represented by the exp claim."
    if now >= exp.saturating_add(leeway) {
        return fail(ErrorKind::Expired);
    }
    Ok(())
}

/// Claims whose token passed every check. Only verification produces one.
#[derive(Debug, Clone)]
pub struct Verified<C> {
    header: Header,
    claims: C,
}

impl<C> Verified<C> {
    /// The verified claims.
    pub fn claims(&self) -> &C {
        &self.claims
    }

    /// The verified claims, by value.
    pub fn into_claims(self) -> C {
        self.claims
    }

    /// The token's protected header.
    pub fn header(&self) -> &Header {
        &self.header
    }
}

impl<C> Deref for Verified<C> {
    type Target = C;
    fn deref(&self) -> &C {
        &self.claims
    }
}

impl Verified<Claims> {
    /// The claims as a custom type, through serde.
    pub fn custom<T: serde::de::DeserializeOwned>(&self) -> Result<Verified<T>> {
        Ok(Verified {
            header: self.header.clone(),
            claims: self.claims.custom()?,
        })
    }
}

/// Signs `claims` as a compact JWS with the header `{alg, typ: "at+jwt", kid}`.
pub fn sign(key: &SigningKey, claims: &Claims) -> Result<String> {
    if claims.exp <= claims.iat {
        return Err(Error::new(ErrorKind::LifetimeTooLong));
    }
    let payload =
        serde_json::to_vec(claims).map_err(|e| Error::with_source(ErrorKind::InvalidJson, e))?;
    sign_parts(key, key.header_b64(), &payload)
}

pub(crate) fn sign_parts(key: &SigningKey, header_b64: &str, payload: &[u8]) -> Result<String> {
    let mut out = String::with_capacity(header_b64.len() + payload.len() * 4 / 3 + 400);
    out.push_str(header_b64);
    out.push('.');
    b64::encode_into(payload, &mut out);
    let sig = key.sign_bytes(out.as_bytes())?;
    out.push('.');
    b64::encode_into(&sig, &mut out);
    Ok(out)
}

/// Verifies only the JWS layer of a compact token: the strict syntax, a header without
/// forbidden parameters whose `alg` equals the key's, and the signature. The payload may be
/// any bytes. Returns the decoded payload. This is the layer the Wycheproof JWS vectors test.
pub fn verify_jws(token: &str, key: &VerifyingKey) -> Result<Vec<u8>> {
    let seg = Segments::split(token)?;
    let header = Header::parse(&b64::decode(seg.header)?)?;
    let payload = b64::decode(seg.payload)?;
    let signature = b64::decode(seg.signature)?;
    if header.alg != key.algorithm() {
        return Err(Error::new(ErrorKind::AlgorithmMismatch));
    }
    key.verify_signature(seg.signing_input.as_bytes(), &signature)?;
    Ok(payload)
}

/// Splits and decodes without verifying: used by [`crate::dangerous`].
pub(crate) fn decode_unverified(token: &str) -> Result<(Vec<u8>, Vec<u8>)> {
    let seg = Segments::split(token)?;
    Ok((b64::decode(seg.header)?, b64::decode(seg.payload)?))
}
