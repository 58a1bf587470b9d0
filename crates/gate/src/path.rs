//! Path normalisation: the path a rule is matched against.
//!
//! A proxy forwards the path as the client wrote it, and the upstream decodes and resolves
//! it before routing. The gate therefore decides on the path the upstream will see:
//! percent-encoded unreserved characters decoded, `.` and `..` segments resolved, empty
//! segments (`//`) collapsed. A path that could mean something else to another parser is
//! refused outright: an encoded `/` or `\`, a raw `\`, a NUL or other control character,
//! a `..` climbing above the root, a dot segment with a `;` parameter (`..;`), or a
//! broken percent escape.

use std::borrow::Cow;
use std::fmt;

/// Why a path is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathError {
    /// The path does not start with `/`.
    NotAbsolute,
    /// A control character (NUL included) or a raw backslash.
    ForbiddenCharacter,
    /// `%2F`, `%5C` or `%00`: a separator or NUL hidden in an escape.
    EncodedSeparator,
    /// `%` not followed by two hex digits.
    BadEscape,
    /// A `..` segment above the root.
    AboveRoot,
    /// A dot segment carrying a `;` parameter (`..;`), which some servers resolve.
    DotParameter,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathError::NotAbsolute => "the path does not start with /",
            PathError::ForbiddenCharacter => "the path holds a control character or a backslash",
            PathError::EncodedSeparator => "the path holds an encoded /, \\ or NUL",
            PathError::BadEscape => "the path holds a broken percent escape",
            PathError::AboveRoot => "the path climbs above the root",
            PathError::DotParameter => "the path holds a dot segment with a ; parameter",
        })
    }
}

impl std::error::Error for PathError {}

/// The normalised form of `path` (without query or fragment): starts with `/`, has no
/// empty, `.` or `..` segment and no trailing `/` (except the root itself). Borrowed when
/// the path is already normal, which is the common case.
pub fn normalise(path: &str) -> Result<Cow<'_, str>, PathError> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    let mut simple = true;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            0..=0x1f | 0x7f | b'\\' => return Err(PathError::ForbiddenCharacter),
            b'%' | b';' => simple = false,
            b'/' if matches!(bytes.get(i + 1), Some(b'/' | b'.')) => simple = false,
            _ => {}
        }
    }
    if simple {
        // Only a trailing slash may need removing.
        let trimmed = path.trim_end_matches('/');
        return Ok(Cow::Borrowed(if trimmed.is_empty() {
            "/"
        } else {
            trimmed
        }));
    }
    let decoded = decode_unreserved(path)?;
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        let bare = segment.split(';').next().unwrap_or(segment);
        match segment {
            "" | "." => {}
            ".." => {
                if segments.pop().is_none() {
                    return Err(PathError::AboveRoot);
                }
            }
            _ if bare == "." || bare == ".." => return Err(PathError::DotParameter),
            _ => segments.push(segment),
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(Cow::Owned(out))
}

/// Decodes `%XX` where XX is an unreserved character (RFC 3986 §2.3); other escapes stay
/// as written, with upper-case hex digits. Escapes of `/`, `\` and NUL are refused.
fn decode_unreserved(path: &str) -> Result<String, PathError> {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b != b'%' {
            // Copy the run up to the next escape at once (keeps UTF-8 intact).
            let end = bytes[i..]
                .iter()
                .position(|&c| c == b'%')
                .map_or(bytes.len(), |p| i + p);
            out.push_str(&path[i..end]);
            i = end;
            continue;
        }
        let (Some(hi), Some(lo)) = (
            bytes.get(i + 1).and_then(|&c| hex(c)),
            bytes.get(i + 2).and_then(|&c| hex(c)),
        ) else {
            return Err(PathError::BadEscape);
        };
        let c = hi << 4 | lo;
        match c {
            b'/' | b'\\' | 0 => return Err(PathError::EncodedSeparator),
            c if c.is_ascii_alphanumeric() || b"-._~".contains(&c) => out.push(char::from(c)),
            c => {
                out.push('%');
                out.push(char::from(b"0123456789ABCDEF"[usize::from(c >> 4)]));
                out.push(char::from(b"0123456789ABCDEF"[usize::from(c & 15)]));
            }
        }
        i += 3;
    }
    Ok(out)
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_paths_are_borrowed() {
        for (p, want) in [
            ("/", "/"),
            ("/api", "/api"),
            ("/api/", "/api"),
            ("/a.b/c-d_e~f", "/a.b/c-d_e~f"),
        ] {
            let n = normalise(p).unwrap();
            assert!(matches!(n, Cow::Borrowed(_)), "{p}");
            assert_eq!(n, want);
        }
    }

    #[test]
    fn dot_segments_escapes_and_double_slashes_are_resolved() {
        for (p, want) in [
            ("/public/../admin", "/admin"),
            ("/public/%2e%2e/admin", "/admin"),
            ("/public/%2E%2E/admin", "/admin"),
            ("/public/./x", "/public/x"),
            ("//admin", "/admin"),
            ("/a//b///c/", "/a/b/c"),
            ("/%61dmin", "/admin"),
            ("/caf%c3%a9", "/caf%C3%A9"),
            ("/a/..", "/"),
            ("/x;jsessionid=1", "/x;jsessionid=1"),
        ] {
            assert_eq!(normalise(p).unwrap(), want, "{p}");
        }
    }

    #[test]
    fn confusing_paths_are_refused() {
        for (p, want) in [
            ("/admin%2f..", PathError::EncodedSeparator),
            ("/admin%2F..", PathError::EncodedSeparator),
            ("/a%5cb", PathError::EncodedSeparator),
            ("/a%00b", PathError::EncodedSeparator),
            ("/a\\..\\admin", PathError::ForbiddenCharacter),
            ("/a\0b", PathError::ForbiddenCharacter),
            ("/a\tb", PathError::ForbiddenCharacter),
            ("/..", PathError::AboveRoot),
            ("/public/../../admin", PathError::AboveRoot),
            ("/%2e%2e/x", PathError::AboveRoot),
            ("/public/..;/admin", PathError::DotParameter),
            ("/a%zz", PathError::BadEscape),
            ("/a%2", PathError::BadEscape),
            ("admin", PathError::NotAbsolute),
            ("", PathError::NotAbsolute),
        ] {
            assert_eq!(normalise(p), Err(want), "{p:?}");
        }
    }
}
