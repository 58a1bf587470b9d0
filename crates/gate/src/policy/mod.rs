//! The policy: which requests need what, read from a TOML file and compiled once into
//! something cheap to match.
//!
//! ```toml
//! [headers]                 # optional: rename decision headers, forward the token
//! user = "X-User"
//! forward_token = false
//!
//! [[rule]]
//! name = "health"           # optional, shown by `explain` and in logs
//! host = "app.example.com"  # optional: exact, or "*.example.com"
//! path = "/health"          # prefix on whole segments; or `glob = "/files/*.pdf"`
//! methods = ["GET", "HEAD"] # optional; default all
//! require = "anonymous"     # anonymous | authenticated | role:R | scope:S | mfa | phr
//! authn = "mfa"             # optional step-up on top of require: mfa | phr
//! max_auth_age = "5m"       # optional step-up: signed in at most this long ago
//! ```
//!
//! The first rule that matches decides; when none does, the request is denied.
//!
//! `require = "mfa"` and `require = "phr"` are `authenticated` with `authn` set.
//! `authn` and `max_auth_age` ask for step-up authentication (RFC 9470): `mfa` is a
//! multi-factor sign-in (`acr` of `urn:wristband:acr:mfa` or `urn:wristband:acr:phr`, or
//! `mfa` in `amr`), `phr` a phishing-resistant one (`acr` of `urn:wristband:acr:phr`), and
//! `max_auth_age` (`90s`, `5m`, `1h`, `1d` or seconds) bounds the time since `auth_time`.
//! A valid token that falls short is refused with 401 `insufficient_user_authentication`,
//! or on a browser navigation sent to sign in again with `acr_values` and `max_age`.

mod glob;

use std::fmt;
use std::path::Path;
use std::time::Duration;

use http::Method;
use serde::Deserialize;
use wristband_verify::AuthnRequirement;

use crate::headers::{HeaderNames, HeadersFile};
use crate::path::normalise;
use glob::Glob;

/// What a rule requires of the request's credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Require {
    /// Anyone; a valid token still yields identity headers.
    Anonymous,
    /// Any valid token.
    Authenticated,
    /// A valid token whose `role` is this.
    Role(String),
    /// A valid token whose `scope` holds this.
    Scope(String),
    /// A valid token from a multi-factor sign-in: `amr` holds `mfa`, or `acr` is
    /// [`MFA_ACR`] or stronger ([`wristband_jose::Claims::is_multi_factor`]). A weaker one
    /// is refused for step-up (401 `insufficient_user_authentication`), not with 403.
    Mfa,
    /// A valid token from a phishing-resistant sign-in: `acr` is
    /// [`wristband_jose::authn::ACR_PHR`]. A weaker one is refused for step-up.
    Phr,
}

/// The `acr` value of a multi-factor login.
pub const MFA_ACR: &str = wristband_jose::authn::ACR_MFA;

impl Require {
    fn parse(text: &str) -> Result<Self, String> {
        let nonempty = |v: &str, what: &str| {
            if v.is_empty() || v.contains(char::is_whitespace) {
                Err(format!("require = {text:?}: the {what} must be one word"))
            } else {
                Ok(v.to_owned())
            }
        };
        match text {
            "anonymous" => Ok(Require::Anonymous),
            "authenticated" => Ok(Require::Authenticated),
            "mfa" => Ok(Require::Mfa),
            "phr" => Ok(Require::Phr),
            _ => {
                if let Some(role) = text.strip_prefix("role:") {
                    Ok(Require::Role(nonempty(role, "role")?))
                } else if let Some(scope) = text.strip_prefix("scope:") {
                    Ok(Require::Scope(nonempty(scope, "scope")?))
                } else {
                    Err(format!(
                        "require = {text:?}: expected anonymous, authenticated, role:R, scope:S, mfa or phr"
                    ))
                }
            }
        }
    }
}

impl fmt::Display for Require {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Require::Anonymous => f.write_str("anonymous"),
            Require::Authenticated => f.write_str("authenticated"),
            Require::Role(r) => write!(f, "role:{r}"),
            Require::Scope(s) => write!(f, "scope:{s}"),
            Require::Mfa => f.write_str("mfa"),
            Require::Phr => f.write_str("phr"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Any,
    /// Lower case.
    Exact(String),
    /// `.example.com` for `*.example.com`, lower case.
    Suffix(String),
}

impl HostMatch {
    fn matches(&self, host: &str) -> bool {
        match self {
            HostMatch::Any => true,
            HostMatch::Exact(h) => host.eq_ignore_ascii_case(h),
            HostMatch::Suffix(s) => {
                host.len() > s.len()
                    && host.is_char_boundary(host.len() - s.len())
                    && host[host.len() - s.len()..].eq_ignore_ascii_case(s)
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PathMatch {
    Any,
    /// A normalised prefix, matched on whole segments.
    Prefix(String),
    Glob(Glob),
}

impl PathMatch {
    fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Any => true,
            PathMatch::Prefix(p) => {
                p == "/"
                    || path
                        .strip_prefix(p.as_str())
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            }
            PathMatch::Glob(g) => g.matches(path),
        }
    }
}

/// One compiled rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    name: String,
    host: HostMatch,
    path: PathMatch,
    /// Empty: every method.
    methods: Vec<Method>,
    require: Require,
    /// The step-up requirement: from `require = "mfa" | "phr"`, `authn` and
    /// `max_auth_age`.
    authn: Option<AuthnRequirement>,
}

impl Rule {
    /// The rule's name: its `name`, or `rule #N` (1-based).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the rule requires.
    pub fn require(&self) -> &Require {
        &self.require
    }

    /// What the rule requires of the user's sign-in (step-up), if anything: from
    /// `require = "mfa"` or `"phr"`, `authn` and `max_auth_age`.
    pub fn authn(&self) -> Option<&AuthnRequirement> {
        self.authn.as_ref()
    }

    fn matches(&self, host: &str, method: &Method, path: &str) -> bool {
        (self.methods.is_empty() || self.methods.contains(method))
            && self.host.matches(host)
            && self.path.matches(path)
    }
}

/// A compiled policy: the rules in order and the decision header names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    rules: Vec<Rule>,
    headers: HeaderNames,
}

/// Why a policy file is refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not valid TOML, or an unknown or mistyped key.
    #[error("{0}")]
    Syntax(#[from] toml::de::Error),
    /// A rule that cannot be compiled.
    #[error("{rule}: {reason}")]
    Rule {
        /// The rule's name or position.
        rule: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The `[headers]` table names an invalid or repeated header.
    #[error("[headers]: {0}")]
    Headers(String),
    /// No `[[rule]]` at all: every request would be denied.
    #[error("the policy has no [[rule]]: every request would be denied")]
    Empty,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    headers: HeadersFile,
    #[serde(default)]
    rule: Vec<RuleFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    name: Option<String>,
    host: Option<String>,
    path: Option<String>,
    glob: Option<String>,
    methods: Option<Vec<String>>,
    require: String,
    authn: Option<String>,
    max_auth_age: Option<String>,
}

impl RuleFile {
    fn compile(self, index: usize) -> Result<Rule, PolicyError> {
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| format!("rule #{}", index + 1));
        let fail = |reason: String| PolicyError::Rule {
            rule: match &self.name {
                Some(n) => format!("rule #{} ({n:?})", index + 1),
                None => format!("rule #{}", index + 1),
            },
            reason,
        };
        let host = match self.host.as_deref() {
            None => HostMatch::Any,
            Some(h) => compile_host(h).map_err(&fail)?,
        };
        let path = match (self.path.as_deref(), self.glob.as_deref()) {
            (Some(_), Some(_)) => return Err(fail("give path or glob, not both".into())),
            (Some(p), None) => {
                let n = normalise(p).map_err(|e| fail(format!("path {p:?}: {e}")))?;
                if n != p.trim_end_matches('/') && !(n == "/" && p == "/") {
                    return Err(fail(format!(
                        "path {p:?} is not in normal form (write {n:?})"
                    )));
                }
                PathMatch::Prefix(n.into_owned())
            }
            (None, Some(g)) => PathMatch::Glob(Glob::compile(g).map_err(&fail)?),
            (None, None) => PathMatch::Any,
        };
        let methods = self
            .methods
            .iter()
            .flatten()
            .map(|m| {
                if m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()) {
                    return Err(fail(format!(
                        "method {m:?}: write it in upper case, as GET"
                    )));
                }
                Method::from_bytes(m.as_bytes()).map_err(|_| fail(format!("method {m:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if self.methods.as_ref().is_some_and(Vec::is_empty) {
            return Err(fail(
                "methods = [] matches nothing: leave it out for all".into(),
            ));
        }
        let require = Require::parse(&self.require).map_err(&fail)?;
        let authn = compile_authn(
            &require,
            self.authn.as_deref(),
            self.max_auth_age.as_deref(),
        )
        .map_err(&fail)?;
        Ok(Rule {
            name,
            host,
            path,
            methods,
            require,
            authn,
        })
    }
}

/// The step-up requirement of a rule: its `require` (`mfa`, `phr`), `authn` and
/// `max_auth_age` together.
fn compile_authn(
    require: &Require,
    authn: Option<&str>,
    max_auth_age: Option<&str>,
) -> Result<Option<AuthnRequirement>, String> {
    if matches!(require, Require::Anonymous) && (authn.is_some() || max_auth_age.is_some()) {
        return Err("an anonymous rule cannot ask for authn or max_auth_age".into());
    }
    let level = match (require, authn) {
        (Require::Mfa | Require::Phr, Some(_)) => {
            return Err(format!(
                "require = \"{require}\" already sets the sign-in level: leave out authn"
            ))
        }
        (Require::Mfa, None) | (_, Some("mfa")) => Some(AuthnRequirement::mfa()),
        (Require::Phr, None) | (_, Some("phr")) => Some(AuthnRequirement::phr()),
        (_, Some(other)) => return Err(format!("authn = {other:?}: expected mfa or phr")),
        (_, None) => None,
    };
    let Some(age) = max_auth_age else {
        return Ok(level);
    };
    let max_age = parse_age(age)?;
    Ok(Some(level.unwrap_or_default().max_age(max_age)))
}

/// `90s`, `5m`, `1h`, `1d` or a bare number of seconds; positive.
fn parse_age(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!("max_auth_age = {text:?}: expected a positive duration such as 30s, 5m, 1h or 1d")
    };
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let unit = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    match n.checked_mul(unit) {
        Some(secs) if secs > 0 => Ok(Duration::from_secs(secs)),
        _ => Err(bad()),
    }
}

fn compile_host(host: &str) -> Result<HostMatch, String> {
    let valid = |h: &str| {
        !h.is_empty()
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
    };
    if let Some(suffix) = host.strip_prefix("*.") {
        if !valid(suffix) || suffix.contains('*') {
            return Err(format!("host {host:?}: expected a name or *.domain"));
        }
        Ok(HostMatch::Suffix(format!(
            ".{}",
            suffix.to_ascii_lowercase()
        )))
    } else if valid(host) {
        Ok(HostMatch::Exact(host.to_ascii_lowercase()))
    } else {
        Err(format!("host {host:?}: expected a name or *.domain"))
    }
}

impl Policy {
    /// Parses and compiles the TOML text of a policy file.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let file: PolicyFile = toml::from_str(text)?;
        if file.rule.is_empty() {
            return Err(PolicyError::Empty);
        }
        let headers = HeaderNames::from_file(&file.headers).map_err(PolicyError::Headers)?;
        let rules = file
            .rule
            .into_iter()
            .enumerate()
            .map(|(i, r)| r.compile(i))
            .collect::<Result<_, _>>()?;
        Ok(Policy { rules, headers })
    }

    /// Reads and compiles a policy file.
    pub fn read(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// The policy without a file: one rule, every path requires a valid token.
    pub fn authenticated_everywhere() -> Self {
        Policy {
            rules: vec![Rule {
                name: "default (authenticated)".into(),
                host: HostMatch::Any,
                path: PathMatch::Prefix("/".into()),
                methods: Vec::new(),
                require: Require::Authenticated,
                authn: None,
            }],
            headers: HeaderNames::default(),
        }
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The decision header names (and whether the token is forwarded).
    pub fn headers(&self) -> &HeaderNames {
        &self.headers
    }

    /// The first rule matching a request for `host` (without port), `method` and the
    /// normalised `path`, with its position; `None` means deny.
    pub fn find(&self, host: &str, method: &Method, path: &str) -> Option<(usize, &Rule)> {
        self.rules
            .iter()
            .enumerate()
            .find(|(_, r)| r.matches(host, method, path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[headers]
user = "X-User"

[[rule]]
name = "health"
path = "/health"
methods = ["GET", "HEAD"]
require = "anonymous"

[[rule]]
host = "admin.example.com"
path = "/"
require = "role:admin"

[[rule]]
name = "pdfs"
glob = "/files/*.pdf"
require = "scope:files.read"

[[rule]]
name = "api"
host = "*.example.com"
path = "/api/"
require = "authenticated"
"#;

    fn first(p: &Policy, host: &str, method: Method, path: &str) -> Option<String> {
        p.find(host, &method, path)
            .map(|(_, r)| r.name().to_owned())
    }

    #[test]
    fn the_first_matching_rule_wins_and_no_match_is_none() {
        let p = Policy::parse(SAMPLE).unwrap();
        assert_eq!(p.rules().len(), 4);
        assert_eq!(p.headers().user.as_str(), "x-user");
        let h = "app.example.com";
        assert_eq!(
            first(&p, h, Method::GET, "/health").as_deref(),
            Some("health")
        );
        assert_eq!(first(&p, h, Method::POST, "/health"), None);
        assert_eq!(
            first(&p, "ADMIN.example.com", Method::POST, "/health").as_deref(),
            Some("rule #2")
        );
        assert_eq!(first(&p, h, Method::GET, "/healthz"), None);
        assert_eq!(
            first(&p, h, Method::GET, "/files/a.pdf").as_deref(),
            Some("pdfs")
        );
        assert_eq!(first(&p, h, Method::GET, "/api").as_deref(), Some("api"));
        assert_eq!(
            first(&p, h, Method::GET, "/api/x/y").as_deref(),
            Some("api")
        );
        assert_eq!(first(&p, h, Method::GET, "/apix"), None);
        assert_eq!(first(&p, "example.com", Method::GET, "/api"), None);
        assert_eq!(first(&p, "evil.com", Method::GET, "/api"), None);
        assert_eq!(first(&p, "x.example.com.evil", Method::GET, "/api"), None);
    }

    #[test]
    fn requirements_parse() {
        let p = Policy::parse(SAMPLE).unwrap();
        let reqs: Vec<String> = p.rules().iter().map(|r| r.require().to_string()).collect();
        assert_eq!(
            reqs,
            [
                "anonymous",
                "role:admin",
                "scope:files.read",
                "authenticated"
            ]
        );
    }

    #[test]
    fn step_up_rules_compile_to_authn_requirements() {
        let p = Policy::parse(
            r#"
[[rule]]
path = "/vault"
require = "mfa"

[[rule]]
path = "/payments"
require = "phr"
max_auth_age = "5m"

[[rule]]
path = "/admin"
require = "role:admin"
authn = "mfa"
max_auth_age = "90"

[[rule]]
path = "/settings"
require = "authenticated"
max_auth_age = "1h"

[[rule]]
path = "/"
require = "scope:x"
authn = "phr"
"#,
        )
        .unwrap();
        let authn: Vec<Option<String>> = p
            .rules()
            .iter()
            .map(|r| r.authn().map(ToString::to_string))
            .collect();
        assert_eq!(
            authn,
            [
                Some("mfa".to_owned()),
                Some("acr in [urn:wristband:acr:phr], max_age 300s".to_owned()),
                Some("mfa, max_age 90s".to_owned()),
                Some("max_age 3600s".to_owned()),
                Some("acr in [urn:wristband:acr:phr]".to_owned()),
            ]
        );
        assert_eq!(p.rules()[0].authn(), Some(&AuthnRequirement::mfa()));
        assert_eq!(p.rules()[1].require().to_string(), "phr");
        assert_eq!(p.rules()[2].require().to_string(), "role:admin");
        assert_eq!(Policy::parse(SAMPLE).unwrap().rules()[0].authn(), None);
    }

    #[test]
    fn bad_step_up_rules_name_the_error() {
        for (rule, needle) in [
            ("require = \"anonymous\"\nauthn = \"mfa\"", "anonymous rule"),
            (
                "require = \"anonymous\"\nmax_auth_age = \"5m\"",
                "anonymous rule",
            ),
            ("require = \"mfa\"\nauthn = \"phr\"", "leave out authn"),
            (
                "require = \"authenticated\"\nauthn = \"otp\"",
                "expected mfa or phr",
            ),
            (
                "require = \"authenticated\"\nmax_auth_age = \"0s\"",
                "positive duration",
            ),
            (
                "require = \"authenticated\"\nmax_auth_age = \"5 m\"",
                "positive duration",
            ),
            (
                "require = \"authenticated\"\nmax_auth_age = \"5w\"",
                "positive duration",
            ),
            (
                "require = \"authenticated\"\nmax_auth_age = \"\"",
                "positive duration",
            ),
            (
                "require = \"authenticated\"\nmax_auth_age = 300",
                "invalid type",
            ),
            ("require = \"pwd\"", "mfa or phr"),
        ] {
            let text = format!("[[rule]]\npath = \"/\"\n{rule}\n");
            let e = Policy::parse(&text).unwrap_err().to_string();
            assert!(e.contains(needle), "{rule:?}: {e}");
        }
    }

    #[test]
    fn bad_policies_name_the_error() {
        for (text, needle) in [
            ("", "no [[rule]]"),
            ("[[rule]]\npath = \"/\"\nrequire = \"root\"\n", "rule #1"),
            (
                "[[rule]]\npath = \"/\"\nrequire = \"role:\"\n",
                "role must be one word",
            ),
            (
                "[[rule]]\npath = \"/a/../b\"\nrequire = \"anonymous\"\n",
                "not in normal form",
            ),
            (
                "[[rule]]\npath = \"/\"\nglob = \"/*\"\nrequire = \"anonymous\"\n",
                "not both",
            ),
            (
                "[[rule]]\nglob = \"/a**\"\nrequire = \"anonymous\"\n",
                "whole segment",
            ),
            (
                "[[rule]]\nmethods = [\"get\"]\nrequire = \"anonymous\"\n",
                "upper case",
            ),
            (
                "[[rule]]\nmethods = []\nrequire = \"anonymous\"\n",
                "matches nothing",
            ),
            (
                "[[rule]]\nhost = \"a b\"\nrequire = \"anonymous\"\n",
                "host",
            ),
            (
                "[[rule]]\npaht = \"/\"\nrequire = \"anonymous\"\n",
                "unknown field",
            ),
            ("[[rule]]\npath = \"/\"\n", "require"),
            (
                "[headers]\nuser = \"bad header\"\n[[rule]]\nrequire = \"anonymous\"\n",
                "[headers]",
            ),
            (
                "[headers]\nuser = \"X-A\"\nrole = \"x-a\"\n[[rule]]\nrequire = \"anonymous\"\n",
                "twice",
            ),
        ] {
            let e = Policy::parse(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }
}
