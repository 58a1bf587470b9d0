//! Access-token claims (RFC 9068 §2.2): typed standard claims plus the rest as JSON.

use std::fmt;
use std::time::Duration;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind, Result};
use crate::flat::flat_object;
use crate::json::{duplicate, parse_object, Key, Scalar, SeenKeys, StrictValue};
use crate::time::{UnixTime, MAX_NUMERIC_DATE};

/// Claim names that have a typed field in [`Claims`] and may not appear in `extra`.
pub const REGISTERED: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "client_id",
    "scope",
    "role",
    "sid",
];

/// The private claim carrying a token's issue time in milliseconds since the epoch (an
/// integer whose whole seconds equal `iat`). `iat` stays an integer NumericDate; this claim
/// lets a verifier tell a token issued in the same second as a revocation cut-off, but
/// after it, from one issued before it.
pub const IAT_MS: &str = "iat_ms";

/// How and when the user signed in (OpenID Connect Core §2, RFC 9068 §2.2.1): the names of
/// the `amr`, `acr` and `auth_time` claims, and Wristband's `acr` values, strongest last.
pub mod authn {
    /// Authentication methods (RFC 8176): an array of strings.
    pub const AMR: &str = "amr";
    /// Authentication context class: a string.
    pub const ACR: &str = "acr";
    /// When the user signed in: a NumericDate.
    pub const AUTH_TIME: &str = "auth_time";
    /// Signed in with a password alone.
    pub const ACR_PWD: &str = "urn:wristband:acr:pwd";
    /// Signed in with a password and a second factor, or a passkey that is not bound to
    /// this device's hardware.
    pub const ACR_MFA: &str = "urn:wristband:acr:mfa";
    /// Signed in with a phishing-resistant factor (a passkey).
    pub const ACR_PHR: &str = "urn:wristband:acr:phr";

    /// The `acr` values that satisfy a requirement of `required` in the order
    /// pwd < mfa < phr: `required` itself and the stronger ones. An `acr` outside these
    /// three satisfies only itself.
    pub fn at_least(required: &str) -> &'static [&'static str] {
        match required {
            ACR_PWD => &[ACR_PWD, ACR_MFA, ACR_PHR],
            ACR_MFA => &[ACR_MFA, ACR_PHR],
            ACR_PHR => &[ACR_PHR],
            _ => &[],
        }
    }
}

/// The `aud` claim: one audience or several. Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audience(Vec<String>);

impl Audience {
    /// A single audience.
    pub fn one(aud: impl Into<String>) -> Self {
        Audience(vec![aud.into()])
    }

    /// True when `aud` is one of the audiences (exact, case-sensitive).
    pub fn contains(&self, aud: &str) -> bool {
        self.0.iter().any(|a| a == aud)
    }

    /// The audiences.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

impl<S: Into<String>> FromIterator<S> for Audience {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        Audience(iter.into_iter().map(Into::into).collect())
    }
}

impl Serialize for Audience {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => s.serialize_str(one),
            many => many.serialize(s),
        }
    }
}

/// The claims of an access token.
///
/// A verifier gets them only inside [`crate::Verified`]; an issuer builds them with
/// [`Claims::new`] and signs them with [`crate::sign`].
#[derive(Clone, PartialEq)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Subject: a stable opaque user id.
    pub sub: String,
    /// Audience.
    pub aud: Audience,
    /// Expiry.
    pub exp: UnixTime,
    /// Issued at.
    pub iat: UnixTime,
    /// Not before.
    pub nbf: Option<UnixTime>,
    /// Unique token id.
    pub jti: String,
    /// The client the token was issued to.
    pub client_id: Option<String>,
    /// Space-separated scopes.
    pub scope: Option<String>,
    /// The user's role.
    pub role: Option<String>,
    /// Session id.
    pub sid: Option<String>,
    /// Every other claim.
    pub extra: Map<String, Value>,
}

impl fmt::Debug for Claims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claims")
            .field("iss", &self.iss)
            .field("sub", &self.sub)
            .field("aud", &self.aud)
            .field("exp", &self.exp.as_secs())
            .field("iat", &self.iat.as_secs())
            .field("jti", &self.jti)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl Claims {
    /// Claims for a token issued `now` that lives for `ttl`, with a random `jti` and
    /// `nbf = iat = now`.
    pub fn new(
        iss: impl Into<String>,
        sub: impl Into<String>,
        aud: impl Into<Audience>,
        now: UnixTime,
        ttl: Duration,
    ) -> Self {
        Claims {
            iss: iss.into(),
            sub: sub.into(),
            aud: aud.into(),
            exp: now.saturating_add(ttl),
            iat: now,
            nbf: Some(now),
            jti: new_jti(),
            client_id: None,
            scope: None,
            role: None,
            sid: None,
            extra: Map::new(),
        }
    }

    /// Sets `client_id`.
    pub fn with_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// Sets `role`.
    pub fn with_role(mut self, role: impl Into<String>) -> Self {
        self.role = Some(role.into());
        self
    }

    /// Sets `scope` (space-separated).
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Sets `sid`.
    pub fn with_sid(mut self, sid: impl Into<String>) -> Self {
        self.sid = Some(sid.into());
        self
    }

    /// Adds a private claim. Registered names (see [`REGISTERED`]) are refused: set the
    /// typed field instead.
    pub fn with_claim(mut self, name: impl Into<String>, value: Value) -> Result<Self> {
        let name = name.into();
        if REGISTERED.contains(&name.as_str()) {
            return Err(Error::new(ErrorKind::InvalidClaim("extra")));
        }
        self.extra.insert(name, value);
        Ok(self)
    }

    /// Sets the private claim [`IAT_MS`]: the issue time in milliseconds. Its whole
    /// seconds should equal `iat`; [`Claims::issued_at_millis`] ignores it otherwise.
    pub fn with_iat_millis(mut self, ms: u64) -> Self {
        self.extra.insert(IAT_MS.to_owned(), Value::from(ms));
        self
    }

    /// The issue time in milliseconds from the [`IAT_MS`] claim, when present, an integer,
    /// and consistent with `iat` (same whole second). `None` otherwise: the caller then
    /// uses whole-second `iat`.
    pub fn issued_at_millis(&self) -> Option<u64> {
        let ms = self.extra.get(IAT_MS)?.as_u64()?;
        (ms / 1000 == self.iat.as_secs()).then_some(ms)
    }

    /// Sets how the user signed in: `amr` (RFC 8176 method names), `acr` and `auth_time`.
    pub fn with_authentication(mut self, amr: &[&str], acr: &str, auth_time: UnixTime) -> Self {
        self.extra.insert(
            authn::AMR.to_owned(),
            Value::Array(amr.iter().map(|m| Value::from(*m)).collect()),
        );
        self.extra
            .insert(authn::ACR.to_owned(), Value::from(acr.to_owned()));
        self.extra.insert(
            authn::AUTH_TIME.to_owned(),
            Value::from(auth_time.as_secs()),
        );
        self
    }

    /// The `amr` claim's method names. `None` when it is absent or not an array of
    /// strings: a requirement on it then fails closed.
    pub fn amr(&self) -> Option<Vec<&str>> {
        self.extra
            .get(authn::AMR)?
            .as_array()?
            .iter()
            .map(Value::as_str)
            .collect()
    }

    /// The `acr` claim, when it is a string.
    pub fn acr(&self) -> Option<&str> {
        self.extra.get(authn::ACR)?.as_str()
    }

    /// The `auth_time` claim, when it is a NumericDate within range.
    pub fn auth_time(&self) -> Option<UnixTime> {
        let secs = self.extra.get(authn::AUTH_TIME)?.as_u64()?;
        (secs <= MAX_NUMERIC_DATE).then(|| UnixTime::from_secs(secs))
    }

    /// True when the user signed in with more than a password: `acr` is Wristband's
    /// `mfa` or `phr`, or `amr` holds `mfa`.
    pub fn is_multi_factor(&self) -> bool {
        self.acr()
            .is_some_and(|a| authn::at_least(authn::ACR_MFA).contains(&a))
            || self.amr().is_some_and(|m| m.contains(&"mfa"))
    }

    /// True when the space-separated `scope` contains `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope
            .as_deref()
            .is_some_and(|s| s.split(' ').any(|x| x == scope))
    }

    /// True when `role` is exactly `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.role.as_deref() == Some(role)
    }

    /// Deserializes all the claims into a custom type through serde.
    pub fn custom<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        let value = serde_json::to_value(self)
            .map_err(|e| Error::with_source(ErrorKind::InvalidJson, e))?;
        serde_json::from_value(value).map_err(|e| Error::with_source(ErrorKind::InvalidJson, e))
    }
}

impl From<&str> for Audience {
    fn from(s: &str) -> Self {
        Audience::one(s)
    }
}

impl From<String> for Audience {
    fn from(s: String) -> Self {
        Audience::one(s)
    }
}

fn new_jti() -> String {
    let mut bytes = [0u8; 16];
    // A failing system RNG is not recoverable; an all-zero jti would still be unique
    // enough to never collide silently, but we prefer to surface it in debug builds.
    let ok = aws_lc_rs::rand::fill(&mut bytes).is_ok();
    debug_assert!(ok, "system RNG failed");
    crate::b64::encode(bytes)
}

impl Serialize for Claims {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("iss", &self.iss)?;
        m.serialize_entry("sub", &self.sub)?;
        m.serialize_entry("aud", &self.aud)?;
        m.serialize_entry("exp", &self.exp)?;
        m.serialize_entry("iat", &self.iat)?;
        if let Some(nbf) = &self.nbf {
            m.serialize_entry("nbf", nbf)?;
        }
        m.serialize_entry("jti", &self.jti)?;
        for (name, v) in [
            ("client_id", &self.client_id),
            ("scope", &self.scope),
            ("role", &self.role),
            ("sid", &self.sid),
        ] {
            if let Some(v) = v {
                m.serialize_entry(name, v)?;
            }
        }
        for (k, v) in &self.extra {
            if !REGISTERED.contains(&k.as_str()) {
                m.serialize_entry(k, v)?;
            }
        }
        m.end()
    }
}

/// Claims as read from a payload, before any check: fields may be missing, and the first
/// wrongly typed claim is remembered to be reported after the signature check.
#[derive(Default)]
#[cfg_attr(test, derive(Debug, PartialEq))]
pub(crate) struct RawClaims {
    pub(crate) iss: Option<String>,
    pub(crate) sub: Option<String>,
    pub(crate) aud: Option<Vec<String>>,
    pub(crate) exp: Option<UnixTime>,
    pub(crate) iat: Option<UnixTime>,
    pub(crate) nbf: Option<UnixTime>,
    pub(crate) jti: Option<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) scope: Option<String>,
    pub(crate) role: Option<String>,
    pub(crate) sid: Option<String>,
    pub(crate) extra: Map<String, Value>,
    /// The first claim of the wrong type, if any.
    pub(crate) invalid: Option<&'static str>,
}

pub(crate) struct RawClaimsVisitor;

/// The index in [`REGISTERED`] of a registered claim name.
fn registered_index(name: &str) -> Option<usize> {
    Some(match name {
        "iss" => 0,
        "sub" => 1,
        "aud" => 2,
        "exp" => 3,
        "iat" => 4,
        "nbf" => 5,
        "jti" => 6,
        "client_id" => 7,
        "scope" => 8,
        "role" => 9,
        "sid" => 10,
        _ => return None,
    })
}

/// Private claims the fast reader tracks without allocating; an object with more goes to
/// the strict parser.
const FLAT_PRIVATE_CLAIMS: usize = 16;

impl<'de> Visitor<'de> for RawClaimsVisitor {
    type Value = RawClaims;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of claims")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawClaims, A::Error> {
        let mut out = RawClaims::default();
        let mut registered_seen = 0u16;
        let mut seen = SeenKeys::default();
        while let Some(Key(name)) = map.next_key::<Key<'de>>()? {
            let Some(i) = registered_index(&name) else {
                if !seen.insert(name.clone()) {
                    return Err(duplicate(&name));
                }
                let v = map.next_value_seed(StrictValue)?;
                out.extra.insert(name.into_owned(), v);
                continue;
            };
            if registered_seen & (1 << i) != 0 {
                return Err(duplicate(&name));
            }
            registered_seen |= 1 << i;
            out.set(i, map.next_value::<Scalar<'de>>()?);
        }
        Ok(out)
    }
}

impl RawClaims {
    /// Reads a payload: the fast reader for the flat objects issuers write, the strict
    /// parser for everything else (and for every object the fast reader does not accept).
    pub(crate) fn parse(bytes: &[u8]) -> Result<RawClaims> {
        if let Some(claims) = Self::parse_flat(bytes) {
            return Ok(claims);
        }
        parse_object(bytes, RawClaimsVisitor)
            .map_err(|e| Error::with_source(ErrorKind::InvalidJson, e))
    }

    /// The same reading as [`RawClaimsVisitor`], for a text in the fast reader's subset.
    /// A duplicate member, or more private claims than it tracks, hands the text back.
    fn parse_flat(bytes: &[u8]) -> Option<RawClaims> {
        let mut out = RawClaims::default();
        let mut registered_seen = 0u16;
        let mut private = [""; FLAT_PRIVATE_CLAIMS];
        let mut n = 0;
        flat_object(bytes, |name, v| {
            if let Some(i) = registered_index(name) {
                if registered_seen & (1 << i) != 0 {
                    return None;
                }
                registered_seen |= 1 << i;
                out.set(i, v);
            } else {
                if n == FLAT_PRIVATE_CLAIMS || private[..n].contains(&name) {
                    return None;
                }
                private[n] = name;
                n += 1;
                out.extra.insert(name.to_owned(), v.into_value()?);
            }
            Some(())
        })?;
        Some(out)
    }

    /// Records the value of the registered claim `REGISTERED[i]`, or remembers the claim as
    /// the first one of the wrong type.
    fn set(&mut self, i: usize, v: Scalar<'_>) {
        let Some(&claim) = REGISTERED.get(i) else {
            return;
        };
        let ok = match (claim, v) {
            ("exp" | "iat" | "nbf", Scalar::Uint(t)) if t <= MAX_NUMERIC_DATE => {
                let t = Some(UnixTime::from_secs(t));
                match claim {
                    "exp" => self.exp = t,
                    "iat" => self.iat = t,
                    _ => self.nbf = t,
                }
                true
            }
            ("aud", Scalar::Str(s)) => {
                self.aud = Some(vec![s.into_owned()]);
                true
            }
            ("aud", Scalar::StrList(list)) if !list.is_empty() => {
                self.aud = Some(list);
                true
            }
            ("exp" | "iat" | "nbf" | "aud", _) => false,
            (_, Scalar::Str(s)) => {
                let s = Some(s.into_owned());
                match claim {
                    "iss" => self.iss = s,
                    "sub" => self.sub = s,
                    "jti" => self.jti = s,
                    "client_id" => self.client_id = s,
                    "scope" => self.scope = s,
                    "role" => self.role = s,
                    _ => self.sid = s,
                }
                true
            }
            _ => false,
        };
        if !ok && self.invalid.is_none() {
            self.invalid = Some(claim);
        }
    }

    /// Turns raw claims into [`Claims`], requiring what every access token must carry.
    pub(crate) fn into_claims(self, require_client_id: bool) -> Result<Claims> {
        if let Some(c) = self.invalid {
            return Err(Error::new(ErrorKind::InvalidClaim(c)));
        }
        let missing = |c| Error::new(ErrorKind::MissingClaim(c));
        if require_client_id && self.client_id.is_none() {
            return Err(missing("client_id"));
        }
        Ok(Claims {
            iss: self.iss.ok_or_else(|| missing("iss"))?,
            sub: self.sub.ok_or_else(|| missing("sub"))?,
            aud: Audience(self.aud.ok_or_else(|| missing("aud"))?),
            exp: self.exp.ok_or_else(|| missing("exp"))?,
            iat: self.iat.ok_or_else(|| missing("iat"))?,
            nbf: self.nbf,
            jti: self.jti.ok_or_else(|| missing("jti"))?,
            client_id: self.client_id,
            scope: self.scope,
            role: self.role,
            sid: self.sid,
            extra: self.extra,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flat::tests::mutants;

    fn base() -> Claims {
        Claims::new(
            "https://a",
            "u",
            "api",
            UnixTime::from_secs(1_800_000_000),
            Duration::from_secs(60),
        )
    }

    #[test]
    fn authentication_claims_round_trip_and_rank() {
        let c = base().with_authentication(
            &["pwd", "otp", "mfa"],
            authn::ACR_MFA,
            UnixTime::from_secs(1_799_999_000),
        );
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
        assert_eq!(json["acr"], "urn:wristband:acr:mfa");
        assert_eq!(json["auth_time"], 1_799_999_000);
        assert_eq!(c.amr(), Some(vec!["pwd", "otp", "mfa"]));
        assert_eq!(c.acr(), Some(authn::ACR_MFA));
        assert_eq!(c.auth_time(), Some(UnixTime::from_secs(1_799_999_000)));
        assert!(c.is_multi_factor());
        let pwd = base().with_authentication(&["pwd"], authn::ACR_PWD, UnixTime::from_secs(1));
        assert!(!pwd.is_multi_factor());
        assert!(!base().is_multi_factor());
        assert!(authn::at_least(authn::ACR_MFA).contains(&authn::ACR_PHR));
        assert!(!authn::at_least(authn::ACR_PHR).contains(&authn::ACR_MFA));
        assert!(authn::at_least("urn:other").is_empty());
    }

    #[test]
    fn malformed_authentication_claims_read_as_absent() {
        let mut c = base();
        c.extra.insert("amr".into(), serde_json::json!(["pwd", 7]));
        c.extra.insert("acr".into(), serde_json::json!(3));
        c.extra.insert("auth_time".into(), serde_json::json!(-5));
        assert_eq!(c.amr(), None);
        assert_eq!(c.acr(), None);
        assert_eq!(c.auth_time(), None);
        assert!(!c.is_multi_factor());
        c.extra.insert("amr".into(), serde_json::json!("mfa"));
        assert!(!c.is_multi_factor(), "amr must be an array");
        c.extra
            .insert("auth_time".into(), serde_json::json!(MAX_NUMERIC_DATE + 1));
        assert_eq!(c.auth_time(), None);
    }

    #[test]
    fn registered_index_matches_the_list() {
        for (i, name) in REGISTERED.iter().enumerate() {
            assert_eq!(registered_index(name), Some(i), "{name}");
        }
        assert_eq!(registered_index("email"), None);
        assert_eq!(REGISTERED.len(), 11);
    }

    /// Whatever the fast reader accepts, the strict parser reads to the same raw claims.
    #[test]
    fn fast_reader_agrees_with_the_strict_parser() {
        let text = br#"{"iss":"https://a","sub":"u","aud":["x","y"],"exp":1800000900,"iat":1800000000,"nbf":0,"jti":"j","client_id":"c","scope":"a b","role":"r","sid":"s","n":7,"e":["z"],"t":"x"}"#;
        let canonical = RawClaims::parse_flat(text).unwrap();
        assert_eq!(canonical.extra.len(), 3);
        assert_eq!(
            canonical.aud.as_deref(),
            Some(&["x".to_owned(), "y".to_owned()][..])
        );
        let (mut accepted, mut refused) = (0, 0);
        for m in mutants(text) {
            let strict = parse_object(&m, RawClaimsVisitor).ok();
            match RawClaims::parse_flat(&m) {
                Some(fast) => {
                    accepted += 1;
                    assert_eq!(Some(fast), strict, "{}", String::from_utf8_lossy(&m));
                }
                None => refused += 1,
            }
        }
        assert!(accepted > 1000 && refused > 1000, "{accepted} {refused}");
        // Duplicates, by name or by escaped spelling, go to the strict parser, which refuses.
        for text in [&br#"{"iss":"a","iss":"b"}"#[..], br#"{"x":1,"x":1}"#] {
            assert!(RawClaims::parse_flat(text).is_none());
            assert!(RawClaims::parse(text).is_err());
        }
        assert!(RawClaims::parse(br#"{"iss":"a","\u0069ss":"b"}"#).is_err());
        // Wrongly typed registered claims are recorded the same way by both readers.
        let text = br#"{"exp":"1800000900","sub":"u"}"#;
        assert_eq!(RawClaims::parse_flat(text).unwrap().invalid, Some("exp"));
    }
}
