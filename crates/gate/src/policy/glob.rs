//! Path globs: `*` matches within one segment, `**` any number of whole segments.

/// One segment of a compiled glob.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// `**`: zero or more whole segments.
    Deep,
    /// A segment without `*`: compared as it is.
    Literal(String),
    /// A segment with `*`: the literal pieces between the stars.
    Pattern(Vec<String>),
}

/// A compiled glob such as `/files/*.pdf` or `/static/**`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob(Vec<Segment>);

impl Glob {
    /// Compiles `pattern`, which must start with `/`. `**` must be a whole segment.
    pub(crate) fn compile(pattern: &str) -> Result<Self, String> {
        let Some(rest) = pattern.strip_prefix('/') else {
            return Err(format!("glob {pattern:?} must start with /"));
        };
        let mut segments = Vec::new();
        for part in rest.split('/').filter(|s| !s.is_empty()) {
            if part == "**" {
                // `**/**` is the same as `**`.
                if segments.last() != Some(&Segment::Deep) {
                    segments.push(Segment::Deep);
                }
            } else if part.contains("**") {
                return Err(format!(
                    "glob {pattern:?}: `**` must be a whole segment (as in /static/**)"
                ));
            } else if part == "." || part == ".." {
                return Err(format!("glob {pattern:?}: no . or .. segments"));
            } else if part.contains('*') {
                segments.push(Segment::Pattern(
                    part.split('*').map(str::to_owned).collect(),
                ));
            } else {
                segments.push(Segment::Literal(part.to_owned()));
            }
        }
        Ok(Glob(segments))
    }

    /// True when the normalised `path` matches.
    pub(crate) fn matches(&self, path: &str) -> bool {
        let mut segments = path.split('/').filter(|s| !s.is_empty());
        match_from(&self.0, &mut segments)
    }
}

fn match_from<'a, I>(glob: &[Segment], path: &mut I) -> bool
where
    I: Iterator<Item = &'a str> + Clone,
{
    let Some((first, rest)) = glob.split_first() else {
        return path.next().is_none();
    };
    match first {
        Segment::Deep => {
            // Try every split: `**` takes none, one, two ... segments.
            let mut tail = path.clone();
            loop {
                if match_from(rest, &mut tail.clone()) {
                    return true;
                }
                if tail.next().is_none() {
                    return false;
                }
            }
        }
        Segment::Literal(lit) => path.next() == Some(lit.as_str()) && match_from(rest, path),
        Segment::Pattern(pieces) => {
            path.next().is_some_and(|s| wildcard(pieces, s)) && match_from(rest, path)
        }
    }
}

/// `pieces` are the parts of a segment pattern split at `*` (so there are at least two).
fn wildcard(pieces: &[String], text: &str) -> bool {
    let (Some(first), Some(last)) = (pieces.first(), pieces.last()) else {
        return false;
    };
    if text.len() < first.len() + last.len()
        || !text.starts_with(first.as_str())
        || !text.ends_with(last.as_str())
    {
        return false;
    }
    let mut middle = &text[first.len()..text.len() - last.len()];
    for piece in &pieces[1..pieces.len() - 1] {
        match middle.find(piece.as_str()) {
            Some(at) => middle = &middle[at + piece.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(glob: &str, path: &str) -> bool {
        Glob::compile(glob).unwrap().matches(path)
    }

    #[test]
    fn single_star_stays_within_a_segment() {
        assert!(m("/files/*.pdf", "/files/a.pdf"));
        assert!(m("/files/*.pdf", "/files/.pdf"));
        assert!(!m("/files/*.pdf", "/files/a/b.pdf"));
        assert!(!m("/files/*.pdf", "/files/a.pdfx"));
        assert!(!m("/files/*.pdf", "/files"));
        assert!(m("/u/*/profile", "/u/42/profile"));
        assert!(!m("/u/*/profile", "/u/profile"));
        assert!(m("/a/x*y*z", "/a/x1y2z"));
        assert!(!m("/a/x*y*z", "/a/xz"));
    }

    #[test]
    fn double_star_crosses_segments() {
        assert!(m("/static/**", "/static"));
        assert!(m("/static/**", "/static/a/b/c.js"));
        assert!(!m("/static/**", "/staticx/a"));
        assert!(m("/**/*.css", "/a/b/site.css"));
        assert!(m("/**/*.css", "/site.css"));
        assert!(!m("/**/*.css", "/a/site.js"));
        assert!(m("/api/**/edit", "/api/a/b/edit"));
        assert!(!m("/api/**/edit", "/api/a/b/edit/x"));
    }

    #[test]
    fn bad_globs_are_refused() {
        for bad in ["files/*", "/a/**x", "/a/../b"] {
            assert!(Glob::compile(bad).is_err(), "{bad}");
        }
    }
}
