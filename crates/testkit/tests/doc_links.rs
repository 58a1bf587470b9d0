//! Every relative link and `#anchor` in the documentation leads somewhere.
//!
//! The Markdown files checked are `README.md`, `BENCHMARKS.md` and `docs/*.md`. For each
//! link or image that is not an absolute URL, the target file or directory must exist,
//! and an `#anchor` must name a heading of the target Markdown file (or of the file
//! itself), with the slugs GitHub makes: lower case, punctuation dropped, each space a
//! `-`, and `-1`, `-2`, … appended to repeated headings. A failure names every broken
//! link with its file and line.

#![forbid(unsafe_code)]
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

/// The Markdown files checked, relative to the workspace root.
fn documentation_files(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![PathBuf::from("README.md"), PathBuf::from("BENCHMARKS.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("reading docs/")
        .map(|entry| entry.expect("a docs/ entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .map(|path| Path::new("docs").join(path.file_name().expect("a file name")))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// A link as written, with the line it is on.
#[derive(Debug)]
struct Link {
    line: usize,
    dest: String,
}

fn options() -> Options {
    Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_FOOTNOTES
}

/// GitHub's anchor for a heading's text, before duplicates are numbered: lower case,
/// letters, digits, `-` and `_` kept, each space turned into `-`, everything else
/// dropped.
fn slug(text: &str) -> String {
    text.trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors a Markdown file offers: its headings' slugs, numbered as GitHub numbers
/// repeats, and any `id="…"` or `name="…"` in inline HTML.
fn anchors(markdown: &str) -> HashSet<String> {
    let mut found = HashSet::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut heading: Option<String> = None;
    for event in Parser::new_ext(markdown, options()) {
        match event {
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::Text(text) | Event::Code(text) => {
                if let Some(h) = heading.as_mut() {
                    h.push_str(&text);
                }
            }
            Event::End(TagEnd::Heading(_)) => {
                let base = slug(&heading.take().unwrap_or_default());
                let n = seen.entry(base.clone()).or_insert(0);
                found.insert(if *n == 0 { base } else { format!("{base}-{n}") });
                *n += 1;
            }
            Event::Html(html) | Event::InlineHtml(html) => {
                for attr in ["id=\"", "name=\""] {
                    for (at, _) in html.match_indices(attr) {
                        let rest = &html[at + attr.len()..];
                        if let Some(end) = rest.find('"') {
                            found.insert(rest[..end].to_owned());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    found
}

/// Every link and image destination of a Markdown file, with its line.
fn links(markdown: &str) -> Vec<Link> {
    let line_of = |offset: usize| markdown[..offset].matches('\n').count() + 1;
    Parser::new_ext(markdown, options())
        .into_offset_iter()
        .filter_map(|(event, range)| match event {
            Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => Some(Link {
                line: line_of(range.start),
                dest: dest_url.into_string(),
            }),
            _ => None,
        })
        .collect()
}

/// Whether a destination leaves the repository (a URL with a scheme, or `//host`).
fn is_external(dest: &str) -> bool {
    dest.starts_with("//")
        || dest.split_once(':').is_some_and(|(scheme, _)| {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        })
}

/// `base_dir/relative` with `.` and `..` resolved, relative to the workspace root, or
/// `None` when it climbs out of the workspace. A path starting with `/` starts at the root.
fn resolve(base_dir: &Path, relative: &str) -> Option<PathBuf> {
    let joined = match relative.strip_prefix('/') {
        Some(from_root) => PathBuf::from(from_root),
        None => base_dir.join(relative),
    };
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Normal(p) => out.push(p),
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Decodes `%XX` escapes (such as `%20` for a space) in a link's path.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The broken links of `docs` (Markdown text by path relative to the workspace root),
/// one line each as `FILE:LINE: DEST: why`. `exists` answers whether a path relative to
/// the root is a file or directory, and `read` reads another Markdown file that a link
/// points into.
fn broken_links(
    docs: &BTreeMap<PathBuf, String>,
    exists: impl Fn(&Path) -> bool,
    read: impl Fn(&Path) -> Option<String>,
) -> Vec<String> {
    let mut anchor_cache: HashMap<PathBuf, HashSet<String>> = HashMap::new();
    let mut anchors_of = |path: &Path, text: &str| -> HashSet<String> {
        anchor_cache
            .entry(path.to_path_buf())
            .or_insert_with(|| anchors(text))
            .clone()
    };
    let mut broken = Vec::new();
    for (file, text) in docs {
        let base_dir = file.parent().unwrap_or(Path::new(""));
        for link in links(text) {
            let dest = link.dest.trim();
            if dest.is_empty() || is_external(dest) {
                continue;
            }
            let (path_part, anchor) = match dest.split_once('#') {
                Some((p, a)) => (p, Some(a)),
                None => (dest, None),
            };
            let path_part = path_part.split('?').next().unwrap_or_default();
            let mut report = |why: String| {
                broken.push(format!(
                    "{}:{}: {}: {why}",
                    file.display(),
                    link.line,
                    link.dest
                ));
            };
            let target = if path_part.is_empty() {
                file.clone()
            } else {
                match resolve(base_dir, &percent_decode(path_part)) {
                    Some(t) => t,
                    None => {
                        report("leaves the repository".into());
                        continue;
                    }
                }
            };
            if !path_part.is_empty() && !docs.contains_key(&target) && !exists(&target) {
                report(format!("no file or directory {}", target.display()));
                continue;
            }
            let Some(anchor) = anchor else { continue };
            if target.extension().is_none_or(|ext| ext != "md") {
                continue;
            }
            let target_text = match docs.get(&target) {
                Some(t) => t.clone(),
                None => match read(&target) {
                    Some(t) => t,
                    None => {
                        report(format!("cannot read {} for its anchors", target.display()));
                        continue;
                    }
                },
            };
            let anchor = percent_decode(anchor);
            if !anchors_of(&target, &target_text).contains(&anchor) {
                report(format!(
                    "no heading with the anchor #{anchor} in {}",
                    target.display()
                ));
            }
        }
    }
    broken
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn documentation_links_resolve() {
    let root = workspace_root();
    let docs: BTreeMap<PathBuf, String> = documentation_files(&root)
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(root.join(&path))
                .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            (path, text)
        })
        .collect();
    assert!(
        docs.len() >= 3,
        "found only {:?}",
        docs.keys().collect::<Vec<_>>()
    );
    let checked: usize = docs.values().map(|text| links(text).len()).sum();
    assert!(
        checked > 0,
        "no links found: is the parser reading the files?"
    );
    let broken = broken_links(
        &docs,
        |path| root.join(path).exists(),
        |path| std::fs::read_to_string(root.join(path)).ok(),
    );
    assert!(
        broken.is_empty(),
        "{} broken documentation link(s) (of {checked}):\n{}",
        broken.len(),
        broken.join("\n")
    );
}

/// The checker, given a small in-memory repository.
fn check(files: &[(&str, &str)], other_paths: &[&str]) -> Vec<String> {
    let docs = files
        .iter()
        .map(|(p, t)| (PathBuf::from(p), (*t).to_owned()))
        .collect();
    let others: HashSet<PathBuf> = other_paths.iter().map(PathBuf::from).collect();
    broken_links(&docs, |p| others.contains(p), |_| None)
}

#[test]
fn slugs_follow_github() {
    assert_eq!(
        slug("Signing keys: rotation, revocation, backups"),
        "signing-keys-rotation-revocation-backups"
    );
    assert_eq!(
        slug("1. One machine with SQLite"),
        "1-one-machine-with-sqlite"
    );
    assert_eq!(
        slug("In Rust, with `wristband-verify`"),
        "in-rust-with-wristband-verify"
    );
    assert_eq!(
        slug("HS256: one service, one shared secret"),
        "hs256-one-service-one-shared-secret"
    );
    assert_eq!(slug("A — B"), "a--b");
    assert_eq!(slug("snake_case and CAPS"), "snake_case-and-caps");
}

#[test]
fn repeated_headings_are_numbered() {
    let found = anchors("# Notes\n\n## Notes\n\n### Notes\n\n## Other `code`\n");
    for a in ["notes", "notes-1", "notes-2", "other-code"] {
        assert!(found.contains(a), "{a} missing from {found:?}");
    }
}

#[test]
fn good_links_pass() {
    let broken = check(
        &[
            (
                "README.md",
                "# Top\n\n## Set up\n\nSee [keys](docs/KEYS.md#rotation), [here](#set-up), \
                 [the crate](crates/jose/), [web](https://example.com/x#y), \
                 ![pic](docs/shot.png) and [mail](mailto:a@b.c).\n",
            ),
            (
                "docs/KEYS.md",
                "# Keys\n\n## Rotation\n\nBack to [the top](../README.md#top).\n",
            ),
        ],
        &["crates/jose", "docs/shot.png"],
    );
    assert_eq!(broken, Vec::<String>::new());
}

#[test]
fn a_broken_link_fails_and_is_named() {
    let broken = check(
        &[
            (
                "README.md",
                "# Top\n\nA [missing file](docs/NOPE.md),\n\
                 a [missing anchor](docs/KEYS.md#rotaton),\n\
                 a [missing local anchor](#set-up),\n\
                 a [missing image](docs/none.png) and [an escape](../outside.md).\n\n\
                 ```sh\n[not a link](nowhere.md)\n```\n",
            ),
            ("docs/KEYS.md", "# Keys\n\n## Rotation\n"),
        ],
        &[],
    );
    assert_eq!(
        broken,
        vec![
            "README.md:3: docs/NOPE.md: no file or directory docs/NOPE.md",
            "README.md:4: docs/KEYS.md#rotaton: no heading with the anchor #rotaton in docs/KEYS.md",
            "README.md:5: #set-up: no heading with the anchor #set-up in README.md",
            "README.md:6: docs/none.png: no file or directory docs/none.png",
            "README.md:6: ../outside.md: leaves the repository",
        ]
    );
}
