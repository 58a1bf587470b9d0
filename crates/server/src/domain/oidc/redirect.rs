//! Redirect URIs of OpenID Connect clients: which may be registered, and whether a
//! requested one matches a registered one. Pure functions, no I/O.
//!
//! - A redirect URI is compared to the registered ones as an exact string, after the
//!   registered ones were checked to be in the URL parser's normal form (so that case,
//!   default ports and dot segments cannot make two spellings of one URI).
//! - `https` anywhere (a web app, or a native app's claimed https link).
//! - `http` only on loopback (`127.0.0.1`, `[::1]`, `localhost`), where RFC 8252 §7.3
//!   lets the port vary: a loopback redirect matches a registered one on any port, with
//!   everything else exactly equal.
//! - Private-use schemes (RFC 8252 §7.1: `com.example.app:/cb`, a reverse domain name, so
//!   with a dot) for public clients only.
//! - Never a fragment, a user name or password, or a wildcard.

use url::{Host, Url};

/// The longest redirect URI accepted, in bytes.
pub const MAX_REDIRECT_URI: usize = 2048;

/// Why a redirect URI cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedirectError {
    /// Empty, too long, or with spaces, control or non-ASCII characters.
    #[error("a redirect URI is 1 to 2048 printable ASCII characters")]
    Syntax,
    /// Not an absolute URI.
    #[error("a redirect URI must be an absolute URI")]
    NotAbsolute,
    /// It has a fragment (`#…`).
    #[error("a redirect URI must not have a fragment")]
    Fragment,
    /// It has a user name or password.
    #[error("a redirect URI must not have a user name or password")]
    UserInfo,
    /// It has a `*`.
    #[error("a redirect URI must not have a wildcard")]
    Wildcard,
    /// `http` on a host that is not loopback.
    #[error("http is allowed only on loopback (127.0.0.1, [::1], localhost); use https")]
    PlainHttp,
    /// A private-use scheme for a confidential client, or a scheme that is not a reverse
    /// domain name.
    #[error(
        "other schemes than https and loopback http are private-use schemes of public \
         clients, named by a reverse domain name (com.example.app:/callback)"
    )]
    Scheme,
    /// An https URI without a host.
    #[error("an https redirect URI needs a host")]
    NoHost,
    /// Not in normal form: the text the URL parser gives back differs.
    #[error("write the redirect URI in normal form: {0}")]
    NotNormal(String),
}

/// What a redirect URI may be used for, by the client's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// A confidential client (a web server): https and loopback http.
    Confidential,
    /// A public client (a browser or native app): also private-use schemes.
    Public,
}

fn plain(raw: &str) -> bool {
    !raw.is_empty()
        && raw.len() <= MAX_REDIRECT_URI
        && raw.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
}

/// True for the loopback hosts of RFC 8252 §7.3 (and `localhost`).
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
        Some(Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
        Some(Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

/// A private-use scheme: a reverse domain name, such as `com.example.app`.
fn is_private_use_scheme(scheme: &str) -> bool {
    let labels: Vec<&str> = scheme.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// Checks a redirect URI for registration; the text is kept exactly as given.
pub fn check(raw: &str, holder: Holder) -> Result<(), RedirectError> {
    if !plain(raw) {
        return Err(RedirectError::Syntax);
    }
    if raw.contains('#') {
        return Err(RedirectError::Fragment);
    }
    if raw.contains('*') {
        return Err(RedirectError::Wildcard);
    }
    let url = Url::parse(raw).map_err(|_| RedirectError::NotAbsolute)?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(RedirectError::UserInfo);
    }
    match url.scheme() {
        "https" if url.host().is_none() => return Err(RedirectError::NoHost),
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => return Err(RedirectError::PlainHttp),
        scheme if holder == Holder::Public && is_private_use_scheme(scheme) => {}
        _ => return Err(RedirectError::Scheme),
    }
    if url.as_str() != raw {
        return Err(RedirectError::NotNormal(url.into()));
    }
    Ok(())
}

/// The loopback URI without its port, for comparison on any port; `None` when `url` is
/// not a loopback http URI.
fn without_port(url: &Url) -> Option<String> {
    if url.scheme() != "http" || !is_loopback(url) {
        return None;
    }
    let mut url = url.clone();
    url.set_port(None).ok()?;
    Some(url.into())
}

/// True when the requested redirect URI matches one of `registered`: the same string, or
/// (RFC 8252 §7.3) a loopback http URI equal to a registered one but for the port. A
/// requested URI with a fragment or a user name never matches.
pub fn matches(registered: &[String], requested: &str) -> bool {
    if !plain(requested) || requested.contains('#') {
        return false;
    }
    if registered.iter().any(|r| r == requested) {
        return true;
    }
    let Ok(url) = Url::parse(requested) else {
        return false;
    };
    // The requested text must be the parser's normal form too: no other spelling of a
    // registered URI gets through the port rule.
    if url.as_str() != requested || !url.username().is_empty() || url.password().is_some() {
        return false;
    }
    let Some(bare) = without_port(&url) else {
        return false;
    };
    registered.iter().any(|r| {
        Url::parse(r)
            .ok()
            .and_then(|r| without_port(&r))
            .is_some_and(|r| r == bare)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrable_uris() {
        for raw in [
            "https://rp.example/cb",
            "https://rp.example:8443/oidc/callback?x=1",
            "http://127.0.0.1/cb",
            "http://127.0.0.1:7777/cb",
            "http://[::1]/cb",
            "http://localhost:8080/",
        ] {
            assert_eq!(check(raw, Holder::Confidential), Ok(()), "{raw}");
            assert_eq!(check(raw, Holder::Public), Ok(()), "{raw}");
        }
        for raw in ["com.example.app:/cb", "org.example.my-app:/oauth2redirect"] {
            assert_eq!(check(raw, Holder::Public), Ok(()), "{raw}");
            assert_eq!(
                check(raw, Holder::Confidential),
                Err(RedirectError::Scheme),
                "{raw}"
            );
        }
    }

    #[test]
    fn refused_registrations() {
        use RedirectError as E;
        for (raw, err) in [
            ("", E::Syntax),
            ("https://rp.example/a b", E::Syntax),
            ("https://rp.example/\u{e9}", E::Syntax),
            ("/cb", E::NotAbsolute),
            ("https://rp.example/cb#frag", E::Fragment),
            ("https://rp.example/cb#", E::Fragment),
            ("https://*.rp.example/cb", E::Wildcard),
            ("https://user@rp.example/cb", E::UserInfo),
            ("https://user:pw@rp.example/cb", E::UserInfo),
            ("http://rp.example/cb", E::PlainHttp),
            ("http://127.0.0.2/cb", E::PlainHttp),
            ("http://localhost.evil.example/cb", E::PlainHttp),
            ("javascript:alert(1)", E::Scheme),
            ("data:text/html,hi", E::Scheme),
            ("file:///etc/passwd", E::Scheme),
            ("myapp:/cb", E::Scheme),
            (
                "https://RP.example/cb",
                E::NotNormal("https://rp.example/cb".into()),
            ),
            (
                "https://rp.example:443/cb",
                E::NotNormal("https://rp.example/cb".into()),
            ),
            (
                "https://rp.example",
                E::NotNormal("https://rp.example/".into()),
            ),
            (
                "https://rp.example/a/../cb",
                E::NotNormal("https://rp.example/cb".into()),
            ),
        ] {
            assert_eq!(check(raw, Holder::Public), Err(err), "{raw}");
        }
        let long = format!("https://rp.example/{}", "a".repeat(MAX_REDIRECT_URI));
        assert_eq!(check(&long, Holder::Public), Err(E::Syntax));
    }

    fn registered() -> Vec<String> {
        [
            "https://rp.example/cb",
            "http://127.0.0.1/loop",
            "http://[::1]:9000/loop6",
            "com.example.app:/cb",
        ]
        .map(str::to_owned)
        .to_vec()
    }

    #[test]
    fn exact_matches_and_loopback_on_any_port() {
        for requested in [
            "https://rp.example/cb",
            "com.example.app:/cb",
            "http://127.0.0.1/loop",
            "http://127.0.0.1:51234/loop",
            "http://[::1]/loop6",
            "http://[::1]:1/loop6",
        ] {
            assert!(matches(&registered(), requested), "{requested}");
        }
    }

    #[test]
    fn every_trick_is_refused() {
        for requested in [
            // Prefix and suffix.
            "https://rp.example/c",
            "https://rp.example/cb/",
            "https://rp.example/cbx",
            "https://rp.example/cb?x=1",
            "https://rp.example/cb.evil.example",
            "https://rp.example.evil.example/cb",
            // Path traversal.
            "https://rp.example/cb/../admin",
            "https://rp.example/x/../cb",
            "https://rp.example/%2e%2e/cb",
            // User info.
            "https://evil@rp.example/cb",
            "https://rp.example@evil.example/cb",
            "http://evil@127.0.0.1:5000/loop",
            // Another port, except on loopback.
            "https://rp.example:8443/cb",
            "https://rp.example:443/cb",
            // Fragment.
            "https://rp.example/cb#x",
            "http://127.0.0.1:5000/loop#x",
            // Case.
            "https://RP.example/cb",
            "https://rp.example/CB",
            "HTTPS://rp.example/cb",
            "COM.example.app:/cb",
            // Another private-use scheme, or another path on it.
            "com.evil.app:/cb",
            "com.example.app:/cb2",
            "com.example.app://cb",
            // Loopback: another path, host or scheme.
            "http://127.0.0.1:5000/loop2",
            "http://localhost:5000/loop",
            "https://127.0.0.1:5000/loop",
            "http://127.0.0.1:5000/loop?x",
            "http://127.1:5000/loop",
            // Other junk.
            "",
            "https://rp.example/cb ",
            "/cb",
        ] {
            assert!(!matches(&registered(), requested), "{requested}");
        }
    }
}
