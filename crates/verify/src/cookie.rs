//! The access token from a cookie, for API services that browsers call on the same site
//! as the auth service (or behind a gateway that forwards its cookies), and the CSRF rule
//! that comes with it.
//!
//! Off by default: only a verifier built with [`crate::VerifierBuilder::access_cookie`]
//! looks at cookies at all, and only when the request has no `Authorization: Bearer`
//! header (a bearer header always wins, and needs no CSRF token).
//!
//! A cookie-authenticated request with a state-changing method (anything but GET, HEAD
//! and OPTIONS) must pass the CSRF rule of the auth service:
//!
//! 1. `Sec-Fetch-Site`, when present, is `same-origin` or `none`;
//! 2. `Origin`, when present, names the host the request was sent to (its `Host`); an
//!    opaque `Origin: null` is refused;
//! 3. exactly one non-empty `X-CSRF-Token` header equals the one CSRF cookie
//!    (double submit), compared in constant time.
//!
//! Otherwise the request is refused with 403 `csrf_failed`.

use http::header::COOKIE;
use http::{HeaderMap, HeaderName, Method};

/// The cookie holding the access token, as the auth service sets it.
pub const ACCESS_COOKIE: &str = "__Host-wb_at";
/// The cookie holding the CSRF token, as the auth service sets it.
pub const CSRF_COOKIE: &str = "__Host-wb_csrf";
/// The header a script copies the CSRF cookie into.
pub const CSRF_HEADER: HeaderName = HeaderName::from_static("x-csrf-token");

const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// Where a cookie-configured verifier finds the access token and the CSRF token.
///
/// [`CookieSource::default`] names the auth service's cookies: [`ACCESS_COOKIE`] and
/// [`CSRF_COOKIE`]. The CSRF header is always [`CSRF_HEADER`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieSource {
    access: Box<str>,
    csrf: Box<str>,
}

impl Default for CookieSource {
    fn default() -> Self {
        CookieSource {
            access: ACCESS_COOKIE.into(),
            csrf: CSRF_COOKIE.into(),
        }
    }
}

impl CookieSource {
    /// Other cookie names, or `None` unless both are RFC 6265 cookie names (HTTP tokens)
    /// and differ.
    pub fn new(access: &str, csrf: &str) -> Option<Self> {
        (is_token(access) && is_token(csrf) && access != csrf).then(|| CookieSource {
            access: access.into(),
            csrf: csrf.into(),
        })
    }

    /// The name of the access-token cookie.
    pub fn access_cookie(&self) -> &str {
        &self.access
    }

    /// The name of the CSRF cookie.
    pub fn csrf_cookie(&self) -> &str {
        &self.csrf
    }

    /// The access token of the request: `Ok(None)` without the cookie.
    pub(crate) fn access_token<'a>(
        &self,
        headers: &'a HeaderMap,
    ) -> Result<Option<&'a str>, CookieError> {
        find(headers, &self.access)
    }

    /// The CSRF rule for a request authenticated by the access cookie. The error is the
    /// reason, for logs.
    pub(crate) fn check_csrf(
        &self,
        method: &Method,
        headers: &HeaderMap,
    ) -> Result<(), &'static str> {
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return Ok(());
        }
        let mut sites = headers.get_all(SEC_FETCH_SITE).iter();
        if let Some(site) = sites.next() {
            if sites.next().is_some() {
                return Err("csrf_ambiguous_fetch_site");
            }
            if site != "same-origin" && site != "none" {
                return Err("csrf_cross_site");
            }
        }
        let mut origins = headers.get_all(http::header::ORIGIN).iter();
        if let Some(origin) = origins.next() {
            if origins.next().is_some() {
                return Err("csrf_ambiguous_origin");
            }
            if let Some(host) = headers.get(http::header::HOST) {
                // `scheme://host[:port]`: the authority must be the one the request was sent
                // to. (The scheme is not compared: behind a TLS-terminating proxy the
                // service sees plain HTTP.)
                let authority = origin
                    .to_str()
                    .ok()
                    .and_then(|o| o.split_once("://"))
                    .map(|(_, a)| a);
                if authority.is_none_or(|a| !a.eq_ignore_ascii_case(host.to_str().unwrap_or(""))) {
                    return Err("csrf_cross_origin");
                }
            }
        }
        let mut sent = headers.get_all(CSRF_HEADER).iter();
        let Some(sent) = sent.next().filter(|_| sent.next().is_none()) else {
            return Err("csrf_header_missing_or_repeated");
        };
        let cookie = match find(headers, &self.csrf) {
            Ok(Some(c)) => c,
            Ok(None) => return Err("csrf_cookie_missing"),
            Err(_) => return Err("csrf_cookie_invalid"),
        };
        let sent = sent.as_bytes();
        if sent.is_empty() {
            return Err("csrf_header_empty");
        }
        if aws_lc_rs::constant_time::verify_slices_are_equal(sent, cookie.as_bytes()).is_err() {
            return Err("csrf_mismatch");
        }
        Ok(())
    }
}

/// Why the cookie the verifier looks for is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CookieError {
    /// The cookie appears more than once: which one is meant is ambiguous.
    Ambiguous,
    /// Its value is empty or holds bytes outside RFC 6265's `cookie-octet`.
    Malformed,
}

impl CookieError {
    /// The reason, for logs.
    pub(crate) fn code(self) -> &'static str {
        match self {
            CookieError::Ambiguous => "cookie_ambiguous",
            CookieError::Malformed => "cookie_malformed",
        }
    }
}

/// The value of the cookie `name` across all `Cookie` headers (RFC 6265 §4.2.1: pairs
/// separated by `;`, white space around a pair ignored). Names are compared exactly;
/// other cookies are skipped without looking at their values. The value must be one or
/// more `cookie-octet`s, optionally in double quotes (which are removed), and the cookie
/// must appear once.
fn find<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, CookieError> {
    let mut found = None;
    for header in headers.get_all(COOKIE) {
        for pair in header.as_bytes().split(|&b| b == b';') {
            let pair = pair.trim_ascii();
            let Some(eq) = pair.iter().position(|&b| b == b'=') else {
                continue;
            };
            if &pair[..eq] != name.as_bytes() {
                continue;
            }
            if found.is_some() {
                return Err(CookieError::Ambiguous);
            }
            found = Some(value(&pair[eq + 1..]).ok_or(CookieError::Malformed)?);
        }
    }
    Ok(found)
}

/// A cookie value without its optional quotes, if it is valid and not empty.
fn value(raw: &[u8]) -> Option<&str> {
    let raw = match raw {
        [b'"', inner @ .., b'"'] => inner,
        _ => raw,
    };
    let octet = |b: &u8| matches!(b, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e);
    if raw.is_empty() || !raw.iter().all(octet) {
        return None;
    }
    // Only ASCII passed the check above.
    std::str::from_utf8(raw).ok()
}

/// An RFC 9110 token (the RFC 6265 cookie-name).
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn cookies(values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(COOKIE, HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    fn access(values: &[&[u8]]) -> Result<Option<String>, CookieError> {
        let h = cookies(values);
        CookieSource::default()
            .access_token(&h)
            .map(|v| v.map(str::to_owned))
    }

    #[test]
    fn parses_the_access_cookie_strictly() {
        let ok = |v: &str| Ok(Some(v.to_owned()));
        assert_eq!(access(&[]), Ok(None));
        assert_eq!(access(&[b"a=1; b=2"]), Ok(None));
        assert_eq!(access(&[b"__Host-wb_at=a.b.c"]), ok("a.b.c"));
        assert_eq!(access(&[b"x=1; __Host-wb_at=a.b.c; y=2"]), ok("a.b.c"));
        assert_eq!(access(&[b"x=1;__Host-wb_at=a.b.c"]), ok("a.b.c"));
        assert_eq!(access(&[b"x=1", b"__Host-wb_at=a.b.c"]), ok("a.b.c"));
        assert_eq!(access(&[b"__Host-wb_at=\"a.b.c\""]), ok("a.b.c"));
        // Other cookies are not looked at, whatever they hold.
        assert_eq!(
            access(&[b"junk; x=\xc3\xa9 \"; __Host-wb_at=a.b.c"]),
            ok("a.b.c")
        );
        // Names are exact: case, prefixes and white space inside the pair matter.
        assert_eq!(access(&[b"__host-wb_at=a.b.c"]), Ok(None));
        assert_eq!(access(&[b"wb_at=a.b.c"]), Ok(None));
        assert_eq!(access(&[b"__Host-wb_at =a.b.c"]), Ok(None));
        // Twice, in one header or across headers, even with the same value.
        let dup = Err(CookieError::Ambiguous);
        assert_eq!(access(&[b"__Host-wb_at=a; __Host-wb_at=a"]), dup);
        assert_eq!(access(&[b"__Host-wb_at=a", b"__Host-wb_at=b"]), dup);
        let bad = Err(CookieError::Malformed);
        for v in [
            &b"__Host-wb_at="[..],
            b"__Host-wb_at=\"\"",
            b"__Host-wb_at=a b",
            b"__Host-wb_at=a,b",
            b"__Host-wb_at=a\\b",
            b"__Host-wb_at=\"a",
            b"__Host-wb_at=a\xc3\xa9",
        ] {
            assert_eq!(access(&[v]), bad, "{}", String::from_utf8_lossy(v));
        }
    }

    #[test]
    fn csrf_rule() {
        let source = CookieSource::default();
        let check = |method: Method, pairs: &[(&str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.append(
                    HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                );
            }
            source.check_csrf(&method, &h)
        };
        let cookie = ("cookie", "__Host-wb_at=t; __Host-wb_csrf=s3cr3t");
        for safe in [Method::GET, Method::HEAD, Method::OPTIONS] {
            assert_eq!(check(safe, &[("sec-fetch-site", "cross-site")]), Ok(()));
        }
        let good = [cookie, ("x-csrf-token", "s3cr3t")];
        for m in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert_eq!(check(m, &good), Ok(()));
        }
        for site in ["same-origin", "none"] {
            let h = [cookie, ("x-csrf-token", "s3cr3t"), ("sec-fetch-site", site)];
            assert_eq!(check(Method::POST, &h), Ok(()));
        }
        for site in ["cross-site", "same-site", "Same-Origin", ""] {
            let h = [cookie, ("x-csrf-token", "s3cr3t"), ("sec-fetch-site", site)];
            assert_eq!(check(Method::POST, &h), Err("csrf_cross_site"), "{site}");
        }
        // Origin: the host the request was sent to, or nothing.
        let same = [
            cookie,
            ("x-csrf-token", "s3cr3t"),
            ("host", "api.example:8443"),
            ("origin", "https://api.example:8443"),
        ];
        assert_eq!(check(Method::POST, &same), Ok(()));
        for origin in [
            "https://evil.example",
            "null",
            "https://api.example",
            "api.example:8443",
        ] {
            let h = [
                cookie,
                ("x-csrf-token", "s3cr3t"),
                ("host", "api.example:8443"),
                ("origin", origin),
            ];
            assert_eq!(
                check(Method::POST, &h),
                Err("csrf_cross_origin"),
                "{origin}"
            );
        }
        let refused = |h: &[(&str, &str)]| check(Method::POST, h).is_err();
        assert!(refused(&[cookie]));
        assert!(refused(&[cookie, ("x-csrf-token", "")]));
        assert!(refused(&[cookie, ("x-csrf-token", "s3cr3T")]));
        assert!(refused(&[cookie, ("x-csrf-token", "s3cr3t ")]));
        assert!(refused(&[
            cookie,
            ("x-csrf-token", "s3cr3t"),
            ("x-csrf-token", "s3cr3t")
        ]));
        assert!(refused(&[
            ("cookie", "__Host-wb_at=t"),
            ("x-csrf-token", "s3cr3t")
        ]));
        assert!(refused(&[
            ("cookie", "__Host-wb_csrf=s3cr3t; __Host-wb_csrf=s3cr3t"),
            ("x-csrf-token", "s3cr3t")
        ]));
        assert!(refused(&[
            ("cookie", "__Host-wb_csrf="),
            ("x-csrf-token", "")
        ]));
    }

    #[test]
    fn names_must_be_tokens() {
        assert!(CookieSource::new("at", "csrf").is_some());
        assert!(CookieSource::new("at", "at").is_none());
        assert!(CookieSource::new("", "csrf").is_none());
        assert!(CookieSource::new("a t", "csrf").is_none());
        assert!(CookieSource::new("a=t", "csrf").is_none());
        assert!(CookieSource::new("at", "cs;rf").is_none());
    }
}
