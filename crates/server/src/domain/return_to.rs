//! Return targets: where a browser may be sent after a login or a session resume. Only an
//! http(s) URL on an allowed origin is ever a target, so that `return_to` is never an open
//! redirect.

use url::Url;

use crate::config::PublicUrl;

/// The longest `return_to` accepted, in bytes.
pub const MAX_RETURN_TO: usize = 2048;

/// A checked return target: an absolute http(s) URL, with no user name, on an allowed
/// origin, as the URL parser serialises it (the exact text of the `Location` sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnTarget(String);

impl ReturnTarget {
    /// Checks `raw`: an absolute http(s) URL, or an absolute path (`/…`, not `//…`)
    /// resolved against the public URL's origin, whose origin is one of `allowed`
    /// (serialised origins). Refused, with `None`: anything longer than
    /// [`MAX_RETURN_TO`], anything with a control character, a space, a backslash or a
    /// non-ASCII character, another scheme (`javascript:`, `data:`), a user name or
    /// password (`https://app.example.com@evil.example`), and any other origin.
    pub fn check(raw: &str, public: &PublicUrl, allowed: &[String]) -> Option<Self> {
        let plain = raw.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
        if raw.is_empty() || raw.len() > MAX_RETURN_TO || !plain {
            return None;
        }
        let url = if raw.starts_with('/') {
            if raw.starts_with("//") {
                return None;
            }
            Url::parse(public.origin()).ok()?.join(raw).ok()?
        } else {
            Url::parse(raw).ok()?
        };
        let origin = url.origin();
        let on_allowed = origin.is_tuple() && allowed.contains(&origin.ascii_serialization());
        let http = matches!(url.scheme(), "http" | "https");
        let no_user = url.username().is_empty() && url.password().is_none();
        (http && no_user && on_allowed).then(|| ReturnTarget(url.into()))
    }

    /// The target URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str) -> Option<String> {
        let public = PublicUrl::parse("https://app.example.com/auth").unwrap();
        let allowed = [
            "https://app.example.com".to_owned(),
            "http://127.0.0.1:8000".to_owned(),
        ];
        ReturnTarget::check(raw, &public, &allowed).map(|t| t.as_str().to_owned())
    }

    #[test]
    fn targets_on_an_allowed_origin_are_kept() {
        for (raw, expect) in [
            ("https://app.example.com/", "https://app.example.com/"),
            (
                "https://app.example.com/docs/a?x=1&y=%2F#top",
                "https://app.example.com/docs/a?x=1&y=%2F#top",
            ),
            ("https://APP.example.com:443/x", "https://app.example.com/x"),
            ("http://127.0.0.1:8000/page", "http://127.0.0.1:8000/page"),
            (
                "/dashboard?tab=2",
                "https://app.example.com/dashboard?tab=2",
            ),
            ("/", "https://app.example.com/"),
        ] {
            assert_eq!(check(raw).as_deref(), Some(expect), "{raw}");
        }
    }

    #[test]
    fn every_other_target_is_refused() {
        let long = format!("https://app.example.com/{}", "a".repeat(MAX_RETURN_TO));
        for raw in [
            "",
            "https://evil.example/",
            "http://app.example.com/",
            "https://app.example.com:8443/",
            "https://app.example.com.evil.example/",
            "//evil.example/",
            "///evil.example/",
            "/\\evil.example/",
            "\\\\evil.example/",
            "https:\\\\evil.example/",
            "https://app.example.com\\@evil.example/",
            "https://app.example.com@evil.example/",
            "https://user:pw@app.example.com/",
            "javascript:alert(1)",
            "JavaScript://app.example.com/%0aalert(1)",
            "data:text/html,hi",
            "ftp://app.example.com/",
            "https://app.example.com/a\r\nSet-Cookie: x=1",
            "https://app.example.com/a\nb",
            "https://app.example.com/a b",
            "https://app.example.com/\u{e9}",
            " https://app.example.com/",
            "dashboard",
            "http://127.0.0.1:8001/",
            &long,
        ] {
            assert_eq!(check(raw), None, "{raw:?}");
        }
    }
}
