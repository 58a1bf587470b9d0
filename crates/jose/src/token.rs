//! Compact JWS access tokens: strict parsing, verification as a change of type, and signing.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::ops::Deref;

use serde::de::{MapAccess, Visitor};

use crate::alg::Algorithm;
use crate::b64;
use crate::claims::{Claims, RawClaims};
use crate::error::{Error, ErrorKind, Result};
use crate::flat::flat_object;
use crate::json::{duplicate, parse_object, Key, Scalar, SeenKeys, StrictValue};
use crate::key::{SigningKey, VerifyingKey, MAX_SIGNATURE_LEN};
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
    /// Borrowed for the usual `at+jwt`, which then costs no allocation.
    typ: Option<Cow<'static, str>>,
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

    /// Reads a decoded header: the fast reader for the flat objects signers write, the
    /// strict parser for everything else (and for every header the fast reader does not
    /// accept, so that every refusal comes from one place).
    fn parse(bytes: &[u8]) -> Result<Header> {
        if let Some(header) = Self::parse_flat(bytes) {
            return Ok(header);
        }
        Self::parse_strict(bytes)
    }

    /// The same reading as [`HeaderVisitor`] for a text in the fast reader's subset, when it
    /// succeeds; `None` hands the text to the strict parser, which produces the error.
    fn parse_flat(bytes: &[u8]) -> Option<Header> {
        let (mut alg, mut typ, mut kid) = (None, None, None);
        let mut seen = [""; FLAT_HEADER_PARAMS];
        let mut n = 0;
        flat_object(bytes, |name, v| {
            if n == FLAT_HEADER_PARAMS
                || seen[..n].contains(&name)
                || FORBIDDEN_HEADER_PARAMS.contains(&name)
            {
                return None;
            }
            seen[n] = name;
            n += 1;
            if !matches!(name, "alg" | "typ" | "kid") {
                // The strict parser reads any other parameter's value and forgets it.
                return Some(());
            }
            let Scalar::Str(v) = v else { return None };
            match name {
                "alg" => alg = Some(v.parse::<Algorithm>().ok()?),
                "typ" => typ = Some(typ_value(v)),
                _ => kid = Some(v.into_owned()),
            }
            Some(())
        })?;
        Some(Header {
            alg: alg?,
            typ,
            kid,
        })
    }

    fn parse_strict(bytes: &[u8]) -> Result<Header> {
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

/// The `typ` value, without a copy when it is the usual one.
fn typ_value(v: Cow<'_, str>) -> Cow<'static, str> {
    if v == "at+jwt" {
        Cow::Borrowed("at+jwt")
    } else {
        Cow::Owned(v.into_owned())
    }
}

/// Header parameters the fast reader tracks; a header with more goes to the strict parser.
const FLAT_HEADER_PARAMS: usize = 8;

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
                        "typ" => typ = Some(typ_value(v)),
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
    /// The size cap and the two dots only, for a caller whose strict base64url decoding of
    /// each segment refuses every other byte (including a third dot). The first and the last
    /// dot delimit the segments: any dot between them lands in the payload, which the
    /// decoder refuses.
    fn locate(token: &'a str) -> Result<Self> {
        let bytes = token.as_bytes();
        if bytes.len() > MAX_TOKEN_BYTES {
            return Err(Error::new(ErrorKind::TooLarge));
        }
        let (Some(d1), Some(d2)) = (memchr::memchr(b'.', bytes), memchr::memrchr(b'.', bytes))
        else {
            return Err(Error::new(ErrorKind::Malformed));
        };
        let (Some(header), Some(payload), Some(signature), Some(signing_input)) = (
            token.get(..d1),
            token.get(d1 + 1..d2),
            token.get(d2 + 1..),
            token.get(..d2),
        ) else {
            return Err(Error::new(ErrorKind::Malformed));
        };
        if d1 == d2 || header.is_empty() || signature.is_empty() {
            return Err(Error::new(ErrorKind::Malformed));
        }
        Ok(Segments {
            signing_input,
            header,
            payload,
            signature,
        })
    }

    /// Every syntax check that comes before decoding: size, character set and exactly two
    /// dots.
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
    /// The decoded header, payload and signature, one after the other.
    decoded: Vec<u8>,
    /// Where the signature starts in `decoded`.
    signature_at: usize,
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
        let seg = Segments::locate(token)?;
        // One buffer for the three decoded segments, sized so that decoding never grows it.
        let estimate = |s: &str| s.len().div_ceil(4) * 3;
        let mut buf = Vec::with_capacity(
            estimate(seg.header) + estimate(seg.payload) + estimate(seg.signature),
        );
        // The strict decoder refuses every byte outside the base64url alphabet, so three
        // successful decodings prove what the character scan of `Segments::split` checks.
        let header_ok = b64::decode_into(seg.header, &mut buf);
        let header_end = buf.len();
        let payload_ok = b64::decode_into(seg.payload, &mut buf);
        let payload_end = buf.len();
        let signature_ok = b64::decode_into(seg.signature, &mut buf);
        if header_ok.is_err() || payload_ok.is_err() || signature_ok.is_err() {
            // Report failures in the documented order: a byte outside the alphabet anywhere
            // (or a third dot) first, then each segment's own errors, left to right.
            Segments::split(token)?;
        }
        header_ok?;
        let header = Header::parse(buf.get(..header_end).unwrap_or_default())?;
        payload_ok?;
        let claims = RawClaims::parse(buf.get(header_end..payload_end).unwrap_or_default())?;
        signature_ok?;
        Ok(UnverifiedToken {
            signing_input: seg.signing_input,
            header,
            decoded: buf,
            signature_at: payload_end,
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
        let signature = self.decoded.get(self.signature_at..).unwrap_or_default();
        key.verify_signature(self.signing_input.as_bytes(), signature)?;
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
    // Sized for the typed claims (names, quotes and numbers included) so that serializing
    // rarely grows the buffer; private claims may still grow it.
    let strings = [&claims.client_id, &claims.scope, &claims.role, &claims.sid]
        .into_iter()
        .flatten()
        .chain([&claims.iss, &claims.sub, &claims.jti])
        .chain(claims.aud.as_slice())
        .map(|s| s.len() + 16)
        .sum::<usize>();
    let mut payload = Vec::with_capacity(strings + 96 + claims.extra.len() * 32);
    serde_json::to_writer(&mut payload, claims)
        .map_err(|e| Error::with_source(ErrorKind::InvalidJson, e))?;
    sign_parts(key, key.header_b64(), &payload)
}

/// Signs arbitrary `claims` as a compact JWS with the header `{alg, typ, kid}`, for tokens
/// other than access tokens: OpenID Connect ID tokens (`typ` `None`, which leaves it out,
/// or `Some("JWT")`) and back-channel logout tokens (`Some("logout+jwt")`). The claims are
/// whatever `claims` serializes to, which must be a JSON object; nothing about them is
/// checked, so the caller sets `iss`, `aud`, `exp` and the rest. The header carries no
/// other parameter.
pub fn sign_claims<C: serde::Serialize>(
    key: &SigningKey,
    typ: Option<&str>,
    claims: &C,
) -> Result<String> {
    let payload =
        serde_json::to_vec(claims).map_err(|e| Error::with_source(ErrorKind::InvalidJson, e))?;
    if payload.first() != Some(&b'{') {
        return Err(Error::new(ErrorKind::InvalidJson));
    }
    let mut header = serde_json::Map::new();
    header.insert("alg".into(), key.algorithm().as_str().into());
    if let Some(typ) = typ {
        header.insert("typ".into(), typ.into());
    }
    header.insert("kid".into(), key.kid().into());
    let header = serde_json::to_vec(&serde_json::Value::Object(header))
        .map_err(|e| Error::with_source(ErrorKind::InvalidJson, e))?;
    sign_parts(key, &b64::encode(header), &payload)
}

pub(crate) fn sign_parts(key: &SigningKey, header_b64: &str, payload: &[u8]) -> Result<String> {
    let b64_len = |n: usize| n.div_ceil(3) * 4;
    let mut out = String::with_capacity(
        header_b64.len() + b64_len(payload.len()) + b64_len(MAX_SIGNATURE_LEN) + 2,
    );
    out.push_str(header_b64);
    out.push('.');
    b64::encode_into(payload, &mut out);
    let mut sig = [0u8; MAX_SIGNATURE_LEN];
    let n = key.sign_into(out.as_bytes(), &mut sig)?;
    out.push('.');
    b64::encode_into(sig.get(..n).unwrap_or_default(), &mut out);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flat::tests::mutants;

    /// Whatever the fast reader accepts, the strict parser reads to the same header.
    #[test]
    fn fast_header_reader_agrees_with_the_strict_parser() {
        let text = br#"{"alg":"ES256","typ":"at+jwt","kid":"k-1","x":["a"],"n":1}"#;
        let header = Header::parse_flat(text).unwrap();
        assert_eq!(header.alg(), Algorithm::ES256);
        assert_eq!(header.kid(), Some("k-1"));
        let (mut accepted, mut refused) = (0, 0);
        for m in mutants(text) {
            let strict = Header::parse_strict(&m).ok();
            match Header::parse_flat(&m) {
                Some(fast) => {
                    accepted += 1;
                    assert_eq!(Some(fast), strict, "{}", String::from_utf8_lossy(&m));
                }
                None => refused += 1,
            }
        }
        assert!(accepted > 500 && refused > 1000, "{accepted} {refused}");
        // Refusals all come from the strict parser, with its error kinds.
        for (text, kind) in [
            (
                &br#"{"alg":"ES256","jku":"x"}"#[..],
                ErrorKind::ForbiddenHeader,
            ),
            (br#"{"alg":"none"}"#, ErrorKind::AlgorithmNotAllowed),
            (br#"{"kid":"k"}"#, ErrorKind::AlgorithmNotAllowed),
            (br#"{"alg":"ES256","typ":1}"#, ErrorKind::WrongType),
            (br#"{"alg":"ES256","alg":"ES256"}"#, ErrorKind::InvalidJson),
        ] {
            assert!(Header::parse_flat(text).is_none());
            assert_eq!(Header::parse(text).unwrap_err().kind(), kind);
        }
    }

    /// The fast split and the character scan agree on every token, down to the error kind.
    #[test]
    fn parse_reports_the_same_errors_as_the_character_scan() {
        let header = b64::encode(br#"{"alg":"HS256","typ":"at+jwt","kid":"k"}"#);
        let bad_header = b64::encode(br#"{"alg":"HS256","jku":"x"}"#);
        let payload = b64::encode(br#"{"iss":"i"}"#);
        for (token, kind) in [
            (format!("{header}.{payload}.AA"), None),
            (format!("{header}.{payload}.AB"), Some(ErrorKind::Malformed)),
            (format!("{header}.{payload}.A?"), Some(ErrorKind::Malformed)),
            (format!("{header}.{payload}"), Some(ErrorKind::Malformed)),
            (
                format!("{header}.{payload}.AA.AA"),
                Some(ErrorKind::Malformed),
            ),
            (format!("{header}..AA"), Some(ErrorKind::InvalidJson)),
            (format!(".{payload}.AA"), Some(ErrorKind::Malformed)),
            (format!("{header}.{payload}."), Some(ErrorKind::Malformed)),
            (
                format!("{header}.{payload}=.AA"),
                Some(ErrorKind::Malformed),
            ),
            // A header error comes before a non-canonical signature...
            (
                format!("{bad_header}.{payload}.AB"),
                Some(ErrorKind::ForbiddenHeader),
            ),
            // ...but after a byte outside the alphabet anywhere.
            (
                format!("{bad_header}.{payload}.A+"),
                Some(ErrorKind::Malformed),
            ),
            (
                format!("{bad_header}.{payload}.A A"),
                Some(ErrorKind::Malformed),
            ),
            ("a".repeat(MAX_TOKEN_BYTES + 1), Some(ErrorKind::TooLarge)),
        ] {
            let got = UnverifiedToken::parse(&token).err().map(|e| e.kind());
            assert_eq!(got, kind, "{token}");
        }
    }

    /// `sign_claims` puts the given `typ` (or none) and the key's `kid` in the header, the
    /// claims as they serialize in the payload, and the token verifies with the public key.
    #[test]
    fn sign_claims_signs_any_claims_with_the_given_typ() {
        for alg in [Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256] {
            let key = SigningKey::generate(alg).unwrap();
            let claims = serde_json::json!({
                "iss": "https://auth.example",
                "sub": "user-1",
                "aud": "client-1",
                "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
            });
            for typ in [None, Some("JWT"), Some("logout+jwt")] {
                let token = sign_claims(&key, typ, &claims).unwrap();
                let payload = verify_jws(&token, key.verifying_key()).unwrap();
                let payload: serde_json::Value = serde_json::from_slice(&payload).unwrap();
                assert_eq!(payload, claims);
                let decoded = crate::dangerous::decode_without_verification(&token).unwrap();
                assert_eq!(decoded.header["alg"], alg.as_str());
                assert_eq!(decoded.header["kid"], key.kid());
                assert_eq!(decoded.header.get("typ").and_then(|t| t.as_str()), typ);
                assert_eq!(
                    decoded.header.as_object().unwrap().len(),
                    2 + usize::from(typ.is_some())
                );
                // Another key's signature does not verify it.
                let other = SigningKey::generate(alg).unwrap();
                assert!(verify_jws(&token, other.verifying_key()).is_err());
            }
            // Claims that are not a JSON object are refused.
            let err = sign_claims(&key, None, &["not", "an", "object"]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidJson);
        }
    }
}
