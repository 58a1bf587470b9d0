//! `wristband token audit`: names the mistakes that tokens commonly carry.
//!
//! The audit needs no key and verifies nothing. It reads the token leniently (an unsigned
//! `alg: none` token, padding or non-canonical base64url are all accepted), because the
//! point is to explain what is wrong with tokens that a verifier would simply refuse.

use std::io::Write;

use anyhow::{bail, Context};
use aws_lc_rs::hmac;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine};
use clap::Args;
use serde_json::{Map, Value};
use wristband_jose::{COMMON_SECRETS, FORBIDDEN_HEADER_PARAMS};

use crate::args::read_token;
use crate::Outcome;

/// Longest lifetime (`exp - iat`) that is not a finding.
const MAX_LIFETIME_SECS: u64 = 60 * 60;

/// Arguments of `wristband token audit`.
#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    /// The token; read from standard input when omitted or `-`.
    token: Option<String>,
}

/// One mistake found in a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    /// A stable code, for scripts.
    pub(crate) code: &'static str,
    /// What was found and why it matters.
    pub(crate) message: String,
}

impl Finding {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Finding {
            code,
            message: message.into(),
        }
    }
}

/// Runs `token audit`.
pub(crate) fn run(args: &AuditArgs, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let token = read_token(args.token.as_deref())?;
    let findings = audit(&token)?;
    if findings.is_empty() {
        writeln!(
            out,
            "ok: no common mistakes found (the signature was not checked)"
        )?;
        return Ok(Outcome::Success);
    }
    for f in &findings {
        writeln!(out, "{}: {}", f.code, f.message)?;
    }
    Ok(Outcome::Rejected)
}

/// Every finding for `token`, in a stable order: header first, then claims.
pub(crate) fn audit(token: &str) -> anyhow::Result<Vec<Finding>> {
    let parts = Parts::parse(token)?;
    let mut findings = Vec::new();
    check_header(&parts, &mut findings);
    check_times(&parts.payload, &mut findings);
    for (name, value) in &parts.payload {
        check_personal_data(name, value, &mut findings);
    }
    Ok(findings)
}

/// A compact JWS, decoded without any check.
struct Parts<'a> {
    signing_input: &'a str,
    header: Map<String, Value>,
    payload: Map<String, Value>,
    signature: Vec<u8>,
}

/// base64url that tolerates padding and stray trailing bits; the standard alphabet is
/// mapped onto the URL-safe one before decoding.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

fn decode_lenient(segment: &str) -> anyhow::Result<Vec<u8>> {
    let urlsafe: String = segment
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    Ok(LENIENT.decode(urlsafe)?)
}

fn decode_object(segment: &str, what: &str) -> anyhow::Result<Map<String, Value>> {
    let bytes = decode_lenient(segment).with_context(|| format!("the {what} is not base64url"))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => bail!("the {what} is not a JSON object"),
    }
}

impl<'a> Parts<'a> {
    fn parse(token: &'a str) -> anyhow::Result<Self> {
        let segments: Vec<&str> = token.split('.').collect();
        match segments.len() {
            3 => {}
            5 => bail!("this is an encrypted token (JWE); only signed tokens (JWS) are audited"),
            n => bail!("a signed token has three dot-separated parts; this one has {n}"),
        }
        let signing_input = &token[..segments[0].len() + 1 + segments[1].len()];
        Ok(Parts {
            signing_input,
            header: decode_object(segments[0], "header")?,
            payload: decode_object(segments[1], "payload")?,
            signature: decode_lenient(segments[2]).context("the signature is not base64url")?,
        })
    }
}

fn check_header(parts: &Parts<'_>, findings: &mut Vec<Finding>) {
    let header = &parts.header;
    match header.get("alg").and_then(Value::as_str) {
        Some(alg) if alg.eq_ignore_ascii_case("none") => findings.push(Finding::new(
            "alg-none",
            format!("alg is \"{alg}\": the token is unsigned and anyone can forge it"),
        )),
        None => findings.push(Finding::new(
            "alg-none",
            "the header names no alg: the token cannot be verified",
        )),
        Some(alg) => {
            if let Some(secret) = common_secret(alg, parts.signing_input, &parts.signature) {
                let which = if secret.is_empty() {
                    "the empty secret".to_owned()
                } else {
                    format!("the well-known secret \"{secret}\"")
                };
                findings.push(Finding::new(
                    "weak-secret",
                    format!(
                        "the {alg} signature verifies with {which}: anyone can forge these \
                         tokens; use a random secret of at least 32 bytes, or an asymmetric key"
                    ),
                ));
            }
        }
    }
    let typ = header.get("typ").and_then(Value::as_str);
    let is_at_jwt = typ.is_some_and(|t| {
        t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
    });
    if !is_at_jwt {
        let found = typ.map_or_else(|| "no typ".to_owned(), |t| format!("typ is \"{t}\""));
        findings.push(Finding::new(
            "wrong-typ",
            format!(
                "{found}: access tokens carry typ \"at+jwt\" (RFC 9068), so that an ID token \
                 or other JWT cannot be passed off as one"
            ),
        ));
    }
    let kid = header.get("kid").and_then(Value::as_str);
    if kid.is_none_or(str::is_empty) {
        findings.push(Finding::new(
            "no-kid",
            "no kid: verifiers cannot pick the key, and keys cannot be rotated smoothly",
        ));
    }
    for name in header.keys() {
        if FORBIDDEN_HEADER_PARAMS.contains(&name.as_str()) {
            let why = match name.as_str() {
                "jku" | "x5u" => "a URL to fetch keys from, chosen by whoever made the token",
                "jwk" | "x5c" => "a key chosen by whoever made the token",
                "crit" => "extensions that verifiers must understand or reject",
                _ => "a parameter Wristband verifiers refuse",
            };
            findings.push(Finding::new(
                "forbidden-header",
                format!("the header carries \"{name}\" ({why}); verifiers reject it"),
            ));
        }
    }
}

/// The first of [`COMMON_SECRETS`] whose HMAC matches the signature, for HS* tokens.
fn common_secret(alg: &str, signing_input: &str, signature: &[u8]) -> Option<&'static str> {
    let algorithm = match alg {
        "HS256" => hmac::HMAC_SHA256,
        "HS384" => hmac::HMAC_SHA384,
        "HS512" => hmac::HMAC_SHA512,
        _ => return None,
    };
    COMMON_SECRETS.iter().copied().find(|secret| {
        let key = hmac::Key::new(algorithm, secret.as_bytes());
        hmac::verify(&key, signing_input.as_bytes(), signature).is_ok()
    })
}

fn numeric_date(payload: &Map<String, Value>, name: &str) -> Option<u64> {
    payload.get(name).and_then(Value::as_u64)
}

fn check_times(payload: &Map<String, Value>, findings: &mut Vec<Finding>) {
    match (payload.get("exp"), numeric_date(payload, "exp")) {
        (None, _) => findings.push(Finding::new(
            "no-exp",
            "no exp: the token never expires, so a leaked copy works forever",
        )),
        (Some(v), None) => findings.push(Finding::new(
            "no-exp",
            format!("exp is {v}, not a NumericDate (whole seconds): verifiers reject it"),
        )),
        (Some(_), Some(_)) => {}
    }
    if numeric_date(payload, "iat").is_none() {
        findings.push(Finding::new(
            "no-iat",
            "no numeric iat: the token's lifetime cannot be bounded",
        ));
    }
    if let (Some(exp), Some(iat)) = (numeric_date(payload, "exp"), numeric_date(payload, "iat")) {
        let lifetime = exp.saturating_sub(iat);
        if lifetime > MAX_LIFETIME_SECS {
            findings.push(Finding::new(
                "long-lifetime",
                format!(
                    "the token lives {} (exp - iat = {lifetime}s), more than 60 minutes: keep \
                     access tokens short-lived and refresh them",
                    human_duration(lifetime)
                ),
            ));
        }
    }
}

fn human_duration(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (d, h) {
        (0, 0) => format!("{m}m"),
        (0, _) => format!("{h}h{m:02}m"),
        _ => format!("{d}d{h:02}h"),
    }
}

/// What kind of personal data a claim name suggests, if any.
fn personal_name(name: &str) -> Option<&'static str> {
    let n: String = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    const CONTAINS: &[(&str, &str)] = &[
        ("email", "an e-mail address"),
        ("phone", "a phone number"),
        ("password", "a password"),
        ("passwd", "a password"),
        ("passphrase", "a password"),
        ("secret", "a secret"),
        ("birth", "a birth date"),
        ("address", "an address"),
        ("socialsecurity", "a national id number"),
        ("creditcard", "a payment card number"),
        ("cardnumber", "a payment card number"),
        ("iban", "a bank account number"),
    ];
    const EXACT: &[(&str, &str)] = &[
        ("mail", "an e-mail address"),
        ("mobile", "a phone number"),
        ("tel", "a phone number"),
        ("telephone", "a phone number"),
        ("fax", "a phone number"),
        ("pwd", "a password"),
        ("pass", "a password"),
        ("pin", "a password"),
        ("ssn", "a national id number"),
        ("nationalid", "a national id number"),
        ("passport", "a passport number"),
        ("taxid", "a national id number"),
        ("dob", "a birth date"),
        ("name", "a person's name"),
        ("givenname", "a person's name"),
        ("familyname", "a person's name"),
        ("firstname", "a person's name"),
        ("lastname", "a person's name"),
        ("middlename", "a person's name"),
        ("fullname", "a person's name"),
        ("surname", "a person's name"),
        ("nickname", "a person's name"),
        ("displayname", "a person's name"),
        ("username", "a user name"),
        ("preferredusername", "a user name"),
        ("street", "an address"),
        ("postalcode", "an address"),
        ("zipcode", "an address"),
        ("gender", "a gender"),
    ];
    CONTAINS
        .iter()
        .find(|(k, _)| n.contains(k))
        .or_else(|| EXACT.iter().find(|(k, _)| n == *k))
        .map(|&(_, what)| what)
}

/// What kind of personal data a string value looks like, if any.
fn personal_value(s: &str) -> Option<&'static str> {
    if looks_like_email(s) {
        Some("an e-mail address")
    } else if looks_like_phone(s) {
        Some("a phone number")
    } else {
        None
    }
}

fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !local.contains([':', '/'])
        && local.chars().all(|c| c.is_ascii_graphic() || !c.is_ascii())
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '.')
}

fn looks_like_phone(s: &str) -> bool {
    const SEPARATORS: [char; 5] = [' ', '-', '.', '(', ')'];
    let s = s.trim();
    let (international, rest) = match s.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    if rest.is_empty()
        || !rest
            .chars()
            .all(|c| c.is_ascii_digit() || SEPARATORS.contains(&c))
        || !rest.starts_with(|c: char| c.is_ascii_digit() || c == '(')
    {
        return false;
    }
    let digits = rest.chars().filter(char::is_ascii_digit).count();
    if !(7..=15).contains(&digits) {
        return false;
    }
    if international {
        return digits >= 8;
    }
    // National formats: "555-123-4567", "(555) 123-4567", "555 1234". Digits alone are
    // more often ids, and dates ("31.12.2024", "2024-01-31") are not phone numbers.
    let groups: Vec<usize> = rest
        .split(SEPARATORS)
        .filter(|g| !g.is_empty())
        .map(str::len)
        .collect();
    let date_like = matches!(groups[..], [1 | 2, 1 | 2, 4] | [4, 1 | 2, 1 | 2]);
    groups.len() >= 2
        && !date_like
        && groups.iter().all(|&g| (1..=4).contains(&g))
        && groups.last() == Some(&4)
}

fn check_personal_data(path: &str, value: &Value, findings: &mut Vec<Finding>) {
    let leaf = path.rsplit(['.', '[']).next().unwrap_or(path);
    if let Some(what) = personal_name(leaf) {
        findings.push(Finding::new(
            "personal-data",
            format!(
                "claim \"{path}\" looks like {what}: anyone holding the token can read its \
                 claims; carry an opaque id and look the data up where it is needed"
            ),
        ));
        return;
    }
    match value {
        Value::String(s) => {
            if let Some(what) = personal_value(s) {
                findings.push(Finding::new(
                    "personal-data",
                    format!(
                        "claim \"{path}\" holds what looks like {what}: anyone holding the \
                         token can read its claims"
                    ),
                ));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check_personal_data(&format!("{path}[{i}]"), item, findings);
            }
        }
        Value::Object(map) => {
            for (name, item) in map {
                check_personal_data(&format!("{path}.{name}"), item, findings);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_look_personal() {
        for name in [
            "email",
            "e_mail",
            "userEmail",
            "phone_number",
            "Password",
            "passwd",
            "pwd",
            "client_secret",
            "birthdate",
            "date_of_birth",
            "address",
            "ssn",
            "name",
            "given_name",
            "family-name",
            "preferred_username",
        ] {
            assert!(personal_name(name).is_some(), "{name}");
        }
        for name in [
            "sub",
            "iss",
            "role",
            "scope",
            "sid",
            "client_id",
            "tenant",
            "classname",
            "session",
            "pinned",
            "org_id",
        ] {
            assert_eq!(personal_name(name), None, "{name}");
        }
    }

    #[test]
    fn values_that_look_personal() {
        for v in ["alice@example.com", "a.b+tag@mail.example.org"] {
            assert_eq!(personal_value(v), Some("an e-mail address"), "{v}");
        }
        for v in [
            "+1 555 123 4567",
            "+441632960961",
            "555-123-4567",
            "(555) 123-4567",
            "555 1234",
            "555.123.4567",
        ] {
            assert_eq!(personal_value(v), Some("a phone number"), "{v}");
        }
        for v in [
            "1234567890",
            "2024-01-31",
            "31.12.2024",
            "10.0.19041",
            "user-7f3a",
            "https://auth.example",
            "https://user@example.com/",
            "api://orders",
            "@handle",
            "x@localhost",
            "+123",
            "read write",
        ] {
            assert_eq!(personal_value(v), None, "{v}");
        }
    }

    #[test]
    fn nested_claims_are_searched() {
        let value: Value = serde_json::json!({"contact": ["ops", {"mail": "x"}], "org": {"owner": "bob@example.com"}});
        let mut findings = Vec::new();
        check_personal_data("profile", &value, &mut findings);
        let messages: Vec<&str> = findings.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(findings.len(), 2, "{messages:?}");
        assert!(messages[0].contains("\"profile.contact[1].mail\""));
        assert!(messages[1].contains("\"profile.org.owner\""));
    }

    #[test]
    fn lifetimes_read_well() {
        assert_eq!(human_duration(900), "15m");
        assert_eq!(human_duration(7200), "2h00m");
        assert_eq!(human_duration(86_400 * 365), "365d00h");
    }

    #[test]
    fn malformed_tokens_are_errors_not_findings() {
        assert!(audit("abc").is_err());
        assert!(audit("a.b.c.d.e").is_err());
        assert!(audit("e30.bm90IGpzb24.").is_err());
    }
}
