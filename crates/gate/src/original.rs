//! The original request, as each proxy describes it to the gate, and what kind of client
//! sent it (a browser navigation or a script).

use std::net::SocketAddr;

use http::header::{ACCEPT, HOST};
use http::{HeaderMap, Method};
use wristband_serve::TrustedProxies;

/// Which proxy protocol a request to the gate speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// nginx `auth_request` (`/authz/auth-request`): `X-Original-URL`, `X-Original-Method`.
    AuthRequest,
    /// Traefik `forwardAuth`, Caddy `forward_auth`, HAProxy (`/authz/forward`):
    /// `X-Forwarded-Method`, `-Proto`, `-Host`, `-Uri`.
    Forward,
    /// Envoy HTTP `ext_authz` (`/authz/ext-authz/{path}`): the request itself, prefixed.
    ExtAuthz,
}

impl Protocol {
    /// The endpoint name used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::AuthRequest => "auth-request",
            Protocol::Forward => "forward",
            Protocol::ExtAuthz => "ext-authz",
        }
    }
}

/// The path prefix of the Envoy endpoint.
pub const EXT_AUTHZ_PREFIX: &str = "/authz/ext-authz";

/// The request the proxy is asking about. Borrowed from the gate request's headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Original<'a> {
    /// The original method.
    pub method: Method,
    /// `http` or `https`.
    pub scheme: &'a str,
    /// Host and optional port, as sent.
    pub authority: &'a str,
    /// The path as sent (not yet normalised), without query or fragment.
    pub path: &'a str,
    /// The query, without `?`.
    pub query: Option<&'a str>,
}

impl<'a> Original<'a> {
    /// Parses an absolute `http` or `https` URL (as nginx's `X-Original-URL`). A URL with
    /// user information (`@`) or without a host is refused.
    pub fn from_url(method: Method, url: &'a str) -> Option<Self> {
        let (scheme, rest) = url.split_once("://")?;
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return None;
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(end);
        Self::from_parts(method, scheme, authority, target)
    }

    /// Builds an original request from its scheme, authority and request target
    /// (`/path?query`; a fragment is dropped; an empty path is `/`).
    pub fn from_parts(
        method: Method,
        scheme: &'a str,
        authority: &'a str,
        target: &'a str,
    ) -> Option<Self> {
        if authority.is_empty()
            || authority.contains(['@', ',', ' '])
            || !authority.is_ascii()
            || !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https"))
        {
            return None;
        }
        let target = target.split('#').next().unwrap_or("");
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        let path = if path.is_empty() { "/" } else { path };
        Some(Original {
            method,
            scheme,
            authority,
            path,
            query,
        })
    }

    /// The host without the port, for host rules.
    pub fn host(&self) -> &'a str {
        let a = self.authority;
        if a.starts_with('[') {
            return a.find(']').map_or(a, |end| &a[..=end]);
        }
        match a.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => a,
        }
    }

    /// The original URL, for the login page's return target.
    pub fn url(&self) -> String {
        let mut url = String::with_capacity(
            self.scheme.len()
                + 3
                + self.authority.len()
                + self.path.len()
                + 1
                + self.query.map_or(0, str::len),
        );
        url.push_str(&self.scheme.to_ascii_lowercase());
        url.push_str("://");
        url.push_str(self.authority);
        url.push_str(self.path);
        if let Some(q) = self.query {
            url.push('?');
            url.push_str(q);
        }
        url
    }
}

/// Why the original request cannot be described.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginalError {
    /// The peer is not a trusted proxy, so its description is anyone's word.
    UntrustedPeer,
    /// A header is missing, repeated or unparseable.
    Unparseable,
}

/// The one value of header `name`: `None` when missing, repeated or not visible ASCII.
fn single<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    first.to_str().ok().map(str::trim).filter(|v| !v.is_empty())
}

fn method(text: &str) -> Option<Method> {
    Method::from_bytes(text.as_bytes()).ok()
}

/// Reads the original request for `protocol` from the gate request's `uri_path_and_query`
/// and `headers`, from a connection with `peer` (`None` when unknown).
pub fn read_original<'a>(
    protocol: Protocol,
    trusted: &TrustedProxies,
    peer: Option<SocketAddr>,
    gate_method: &Method,
    uri_path_and_query: &'a str,
    headers: &'a HeaderMap,
) -> Result<Original<'a>, OriginalError> {
    let trusted_peer = || peer.is_some_and(|p| trusted.contains(p.ip()));
    let bad = OriginalError::Unparseable;
    match protocol {
        Protocol::AuthRequest => {
            if !trusted_peer() {
                return Err(OriginalError::UntrustedPeer);
            }
            let m = single(headers, "x-original-method")
                .and_then(method)
                .ok_or(bad)?;
            let url = single(headers, "x-original-url").ok_or(bad)?;
            Original::from_url(m, url).ok_or(bad)
        }
        Protocol::Forward => {
            if !trusted_peer() {
                return Err(OriginalError::UntrustedPeer);
            }
            let m = single(headers, "x-forwarded-method")
                .and_then(method)
                .ok_or(bad)?;
            let proto = single(headers, "x-forwarded-proto").ok_or(bad)?;
            let host = single(headers, "x-forwarded-host").ok_or(bad)?;
            let uri = single(headers, "x-forwarded-uri").ok_or(bad)?;
            if !uri.starts_with('/') {
                return Err(bad);
            }
            Original::from_parts(m, proto, host, uri).ok_or(bad)
        }
        Protocol::ExtAuthz => {
            let target = uri_path_and_query
                .strip_prefix(EXT_AUTHZ_PREFIX)
                .ok_or(bad)?;
            if !(target.is_empty() || target.starts_with('/') || target.starts_with('?')) {
                return Err(bad);
            }
            let host = single(headers, HOST.as_str()).ok_or(bad)?;
            let proto = single(headers, "x-forwarded-proto").unwrap_or("http");
            Original::from_parts(gate_method.clone(), proto, host, target).ok_or(bad)
        }
    }
}

/// True for a browser navigation: `Sec-Fetch-Mode: navigate`, or an `Accept` that
/// prefers `text/html` (listed before, or with a higher `q` than, `*/*` and JSON), and in
/// either case no `X-Requested-With`.
pub fn is_navigation(headers: &HeaderMap) -> bool {
    if headers.contains_key("x-requested-with") {
        return false;
    }
    if headers
        .get("sec-fetch-mode")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"navigate"))
    {
        return true;
    }
    let Some(accept) = headers.get(ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    // (q in thousandths, position) of the best html range and of the best other range.
    let mut html: Option<(u16, usize)> = None;
    let mut other: Option<(u16, usize)> = None;
    for (pos, range) in accept.split(',').enumerate() {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim();
        let q = parts
            .filter_map(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .or_else(|| p.trim().strip_prefix("Q="))
            })
            .next()
            .map_or(1000, parse_q);
        let slot = if media.eq_ignore_ascii_case("text/html")
            || media.eq_ignore_ascii_case("application/xhtml+xml")
        {
            &mut html
        } else if media == "*/*" || media.eq_ignore_ascii_case("application/json") {
            &mut other
        } else {
            continue;
        };
        if slot.is_none_or(|(best, _)| q > best) {
            *slot = Some((q, pos));
        }
    }
    match (html, other) {
        (Some((0, _)), _) => false,
        (Some(_), None) => true,
        (Some((hq, hp)), Some((oq, op))) => hq > oq || (hq == oq && hp < op),
        (None, _) => false,
    }
}

/// An RFC 9110 qvalue in thousandths; anything unparseable counts as 0.
fn parse_q(text: &str) -> u16 {
    let text = text.trim();
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let whole = match int {
        "0" => 0,
        "1" => 1000,
        _ => return 0,
    };
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return 0;
    }
    let mut thousandths = 0u16;
    for (i, b) in frac.bytes().enumerate() {
        thousandths += u16::from(b - b'0') * [100, 10, 1][i];
    }
    (whole + thousandths).min(1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn h(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(*k, HeaderValue::from_static(v));
        }
        m
    }

    #[test]
    fn urls_parse_into_parts() {
        let o =
            Original::from_url(Method::GET, "https://App.example.com:8443/a/b?x=1#frag").unwrap();
        assert_eq!(o.scheme, "https");
        assert_eq!(o.authority, "App.example.com:8443");
        assert_eq!(o.host(), "App.example.com");
        assert_eq!(o.path, "/a/b");
        assert_eq!(o.query, Some("x=1"));
        assert_eq!(o.url(), "https://App.example.com:8443/a/b?x=1");
        let o = Original::from_url(Method::GET, "http://[::1]:80").unwrap();
        assert_eq!((o.host(), o.path), ("[::1]", "/"));
        for bad in [
            "ftp://a/b",
            "/relative",
            "http:///nohost",
            "http://user@evil.example/",
            "http://a b/",
        ] {
            assert!(Original::from_url(Method::GET, bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn navigation_is_told_from_scripts() {
        let chrome = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert!(is_navigation(&h(&[("accept", chrome)])));
        assert!(is_navigation(&h(&[("sec-fetch-mode", "navigate")])));
        assert!(is_navigation(&h(&[("accept", "text/html, */*")])));
        assert!(!is_navigation(&h(&[("accept", "*/*, text/html")])));
        assert!(!is_navigation(&h(&[(
            "accept",
            "text/html;q=0.5, application/json"
        )])));
        assert!(is_navigation(&h(&[(
            "accept",
            "application/json;q=0.4, text/html;q=0.5"
        )])));
        assert!(!is_navigation(&h(&[("accept", "text/html;q=0")])));
        assert!(!is_navigation(&h(&[("accept", "application/json")])));
        assert!(!is_navigation(&h(&[])));
        assert!(!is_navigation(&h(&[
            ("accept", chrome),
            ("x-requested-with", "XMLHttpRequest")
        ])));
        assert!(!is_navigation(&h(&[
            ("sec-fetch-mode", "navigate"),
            ("x-requested-with", "XMLHttpRequest")
        ])));
        assert!(!is_navigation(&h(&[
            ("sec-fetch-mode", "cors"),
            ("accept", "*/*")
        ])));
    }

    #[test]
    fn qvalues_parse() {
        assert_eq!(parse_q("1"), 1000);
        assert_eq!(parse_q("0.8"), 800);
        assert_eq!(parse_q("0.125"), 125);
        assert_eq!(parse_q("1.000"), 1000);
        assert_eq!(parse_q("2"), 0);
        assert_eq!(parse_q("0.1234"), 0);
    }

    #[test]
    fn proxies_are_trusted_only_from_their_networks() {
        let trusted = TrustedProxies::parse(&["127.0.0.1/32"]).unwrap();
        let headers = h(&[
            ("x-original-url", "https://app.example.com/admin"),
            ("x-original-method", "POST"),
        ]);
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let remote: SocketAddr = "10.1.1.1:5000".parse().unwrap();
        let read = |peer| {
            read_original(
                Protocol::AuthRequest,
                &trusted,
                peer,
                &Method::GET,
                "/authz/auth-request",
                &headers,
            )
        };
        assert_eq!(read(Some(local)).unwrap().method, Method::POST);
        assert_eq!(read(Some(remote)), Err(OriginalError::UntrustedPeer));
        assert_eq!(read(None), Err(OriginalError::UntrustedPeer));
        let twice = h(&[
            ("x-original-url", "https://app.example.com/"),
            ("x-original-url", "https://app.example.com/admin"),
            ("x-original-method", "GET"),
        ]);
        assert_eq!(
            read_original(
                Protocol::AuthRequest,
                &trusted,
                Some(local),
                &Method::GET,
                "/",
                &twice
            ),
            Err(OriginalError::Unparseable)
        );
    }
}
