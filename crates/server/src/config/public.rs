//! The browser-facing base URL of the service: an origin and a path prefix, for a service
//! mounted by a proxy under a path of another site (`https://app.example.com/auth`).

/// Where browsers reach the hosted pages, the cookie session endpoints and the static
/// files: the origin of `public_url`, and its path as a prefix (empty, or like `/auth`,
/// with no trailing slash). The service itself still answers at the root: the proxy strips
/// the prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    origin: String,
    prefix: String,
}

impl PublicUrl {
    /// Parses an absolute http(s) URL with no user name, query or fragment, whose path
    /// holds only letters, digits, `-`, `.`, `_`, `~` and single slashes (the prefix goes
    /// into `Location` headers, a cookie's `Path` and the pages as it is). A trailing slash
    /// is dropped. The error says what is wrong.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let url = url::Url::parse(text).map_err(|_| "is not an absolute URL")?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("is not an http or https URL");
        }
        if !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err("has a user name, a query or a fragment");
        }
        let origin = url.origin();
        if !origin.is_tuple() {
            return Err("has no host");
        }
        let prefix = url.path().trim_end_matches('/');
        let plain = prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~/".contains(&b));
        if !plain || prefix.contains("//") {
            return Err(
                "has a path with characters other than letters, digits, - . _ ~ and single slashes",
            );
        }
        Ok(PublicUrl {
            origin: origin.ascii_serialization(),
            prefix: prefix.to_owned(),
        })
    }

    /// The origin of an issuer URL with no prefix: where pages are when no public URL is
    /// set (the issuer's path, if it has one, is not a prefix).
    pub fn at_origin_of(url: &str) -> Self {
        let origin = url::Url::parse(url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default();
        PublicUrl {
            origin,
            prefix: String::new(),
        }
    }

    /// `scheme://host[:port]`, the default port left out.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The path prefix: empty, or `/` and segments with no trailing slash.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The browser-facing path of a route of the service (`path` starts with `/`).
    pub fn path(&self, path: &str) -> String {
        format!("{}{path}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_url_is_an_origin_and_a_prefix() {
        let p = PublicUrl::parse("https://app.example.com/auth/").unwrap();
        assert_eq!(p.origin(), "https://app.example.com");
        assert_eq!(p.prefix(), "/auth");
        assert_eq!(p.path("/login"), "/auth/login");
        let p = PublicUrl::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!((p.origin(), p.prefix()), ("http://127.0.0.1:8080", ""));
        assert_eq!(p.path("/login"), "/login");
        let p = PublicUrl::parse("https://app.example.com:443/a/b.c").unwrap();
        assert_eq!(
            (p.origin(), p.prefix()),
            ("https://app.example.com", "/a/b.c")
        );
        for bad in [
            "/auth",
            "app.example.com/auth",
            "ftp://app.example.com/auth",
            "https://user@app.example.com/auth",
            "https://app.example.com/auth?x=1",
            "https://app.example.com/auth#x",
            "https://app.example.com/a;b",
            "https://app.example.com/a%20b",
            "https://app.example.com/a//b",
            "javascript:alert(1)",
        ] {
            assert!(PublicUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn without_a_public_url_pages_are_at_the_issuers_root() {
        let p = PublicUrl::at_origin_of("https://id.example.com/tenant");
        assert_eq!((p.origin(), p.prefix()), ("https://id.example.com", ""));
    }
}
