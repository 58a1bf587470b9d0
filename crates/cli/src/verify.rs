//! `wristband token verify`: local verification, with the precise reason on failure.

use std::error::Error as _;
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::NonEmptyStringValueParser;
use clap::{ArgGroup, Args};
use wristband_jose::{Algorithm, ErrorKind, KeySet, Policy, UnverifiedToken};

use crate::args::{now, parse_leeway, parse_lifetime, read_token, AlgArg};
use crate::{keyfile, timefmt, Outcome};

/// Arguments of `wristband token verify`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("keys").required(true).args(["jwks", "key"])))]
pub(crate) struct VerifyArgs {
    /// The token; read from standard input when omitted or `-`.
    token: Option<String>,
    /// JWKS to take the key from, by `kid`: an https:// or http:// URL, or a file.
    #[arg(long, value_name = "URL|FILE")]
    jwks: Option<String>,
    /// PEM file with the CA certificate(s) to trust for an https:// --jwks URL, instead of
    /// the system's root certificates (for a private CA). Without it, SSL_CERT_FILE may
    /// name another root bundle.
    #[arg(long, value_name = "FILE", requires = "jwks")]
    cacert: Option<PathBuf>,
    /// Key file: public PEM, public JWK, JWKS, or a private key or HS256 secret file.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// Expected issuer (`iss`), matched exactly.
    #[arg(long, value_parser = NonEmptyStringValueParser::new())]
    iss: String,
    /// Accepted audience; repeat to accept any of several.
    #[arg(long, required = true, value_parser = NonEmptyStringValueParser::new())]
    aud: Vec<String>,
    /// Allowed algorithm; repeat for several. Default: HS256 for a secret key, else
    /// RS256, PS256, ES256 and EdDSA. An RSA key file is read as PS256 only when PS256 is
    /// allowed and RS256 is not.
    #[arg(long = "alg", value_enum, value_name = "ALG")]
    algs: Vec<AlgArg>,
    /// Allowed clock skew for exp, nbf and iat, at most 60s.
    #[arg(long, default_value = "0s", value_parser = parse_leeway)]
    leeway: Duration,
    /// Longest accepted lifetime (exp - iat).
    #[arg(long, default_value = "60m", value_parser = parse_lifetime)]
    max_lifetime: Duration,
    /// Verify as if the time were this Unix time (for tests).
    #[arg(long, hide = true, value_name = "UNIX_SECS")]
    now: Option<u64>,
}

/// Runs `token verify`.
pub(crate) fn run(args: &VerifyArgs, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let token = read_token(args.token.as_deref())?;
    let allowed: Vec<Algorithm> = args.algs.iter().map(|&a| a.into()).collect();
    let keys = load_keys(args, &allowed)?;
    let algorithms = if !allowed.is_empty() {
        allowed
    } else if keys.iter().all(|k| k.algorithm().is_symmetric()) {
        vec![Algorithm::HS256]
    } else {
        Algorithm::ASYMMETRIC.to_vec()
    };
    let policy = Policy::builder(&*args.iss, &*args.aud[0])
        .audiences(args.aud.iter().cloned())
        .algorithms(&algorithms)
        .leeway(args.leeway)
        .max_lifetime(args.max_lifetime)
        .build()
        .map_err(|e| {
            anyhow::anyhow!("{e}: HS256 cannot be allowed together with other algorithms")
        })?;

    let mut err = io::stderr();
    let parsed = match UnverifiedToken::parse(&token) {
        Ok(t) => t,
        Err(e) => {
            report(&mut err, &e, &token, args, &keys)?;
            return Ok(Outcome::Rejected);
        }
    };
    let kid = parsed.kid().map(str::to_owned);
    let alg = parsed.header().alg();
    match parsed.verify(&keys, &policy, now(args.now)) {
        Ok(verified) => {
            writeln!(
                err,
                "valid: {alg} signature by kid {}",
                kid.as_deref().unwrap_or("?")
            )?;
            writeln!(out, "{}", serde_json::to_string_pretty(verified.claims())?)?;
            Ok(Outcome::Success)
        }
        Err(e) => {
            report(&mut err, &e, &token, args, &keys)?;
            Ok(Outcome::Rejected)
        }
    }
}

fn load_keys(args: &VerifyArgs, allowed: &[Algorithm]) -> anyhow::Result<KeySet> {
    let rsa_alg = if allowed.contains(&Algorithm::PS256) && !allowed.contains(&Algorithm::RS256) {
        Algorithm::PS256
    } else {
        Algorithm::RS256
    };
    match (&args.jwks, &args.key) {
        (Some(jwks), _) if is_url(jwks) => {
            keyfile::keyset_from_jwks(&fetch_jwks(jwks, args.cacert.as_deref())?, jwks)
        }
        (Some(jwks), _) => keyfile::load_verifying_keys(jwks.as_ref(), rsa_alg),
        (None, Some(key)) => keyfile::load_verifying_keys(key, rsa_alg),
        // clap's required group makes this unreachable; answer sensibly anyway.
        (None, None) => Err(anyhow::anyhow!("give --jwks or --key")),
    }
}

/// True when `--jwks` names a URL rather than a file.
fn is_url(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// Fetches a JWKS document with the verifier's client: https with the system's roots, or
/// only the CAs of `cacert`; bounded in size and time.
fn fetch_jwks(url: &str, cacert: Option<&std::path::Path>) -> anyhow::Result<Vec<u8>> {
    use anyhow::Context;
    let ca_pem = cacert
        .map(|path| {
            std::fs::read(path).with_context(|| format!("reading --cacert {}", path.display()))
        })
        .transpose()?;
    let options = wristband_verify::FetchOptions {
        ca_pem,
        ..wristband_verify::FetchOptions::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the HTTP client")?;
    let body = runtime
        .block_on(wristband_verify::fetch_document(url, &options))
        .with_context(|| format!("fetching {url}"))?;
    Ok(body.to_vec())
}

/// Explains a rejection on stderr: the internal reason, its cause, and a hint drawn from
/// the (unverified) token where that helps.
fn report(
    err: &mut dyn Write,
    e: &wristband_jose::Error,
    token: &str,
    args: &VerifyArgs,
    keys: &KeySet,
) -> io::Result<()> {
    let kind = e.kind();
    writeln!(err, "invalid: {} ({})", kind.code(), explain(kind))?;
    if let Some(source) = e.source() {
        writeln!(err, "  cause: {source}")?;
    }
    if let Some(hint) = hint(kind, token, args, keys) {
        writeln!(err, "  hint: {hint}")?;
    }
    writeln!(
        err,
        "  (an API service would tell the client only \"{}\")",
        e.public_reason()
    )
}

fn explain(kind: ErrorKind) -> String {
    match kind {
        ErrorKind::TooLarge => "the token is larger than 8 KiB".into(),
        ErrorKind::Malformed => "not three segments of canonical, unpadded base64url".into(),
        ErrorKind::InvalidJson => {
            "the header or claims are not a JSON object, or repeat a member".into()
        }
        ErrorKind::ForbiddenHeader => {
            "the header carries a refused parameter (crit, jwk, jku, x5u, x5c, b64, zip)".into()
        }
        ErrorKind::WrongType => "the header typ is not at+jwt".into(),
        ErrorKind::AlgorithmNotAllowed => "the header alg is missing or not allowed".into(),
        ErrorKind::MissingKeyId => "the header has no kid".into(),
        ErrorKind::UnknownKeyId => "no key given has the token's kid".into(),
        ErrorKind::AlgorithmMismatch => "the header alg differs from the key's".into(),
        ErrorKind::BadSignature => "the signature does not verify with this key".into(),
        ErrorKind::WrongIssuer => "iss is not the expected issuer (--iss)".into(),
        ErrorKind::WrongAudience => "aud holds none of the accepted audiences (--aud)".into(),
        ErrorKind::Expired => "the token has expired".into(),
        ErrorKind::NotYetValid => "nbf is in the future".into(),
        ErrorKind::IssuedInFuture => "iat is in the future".into(),
        ErrorKind::LifetimeTooLong => {
            "exp - iat is longer than the maximum lifetime (--max-lifetime)".into()
        }
        other => other.to_string(),
    }
}

/// A pointer to what to compare, from the unverified token.
fn hint(kind: ErrorKind, token: &str, args: &VerifyArgs, keys: &KeySet) -> Option<String> {
    let claims = || {
        wristband_jose::dangerous::decode_without_verification(token)
            .ok()
            .map(|d| d.payload)
    };
    let time = |name: &str| -> Option<String> {
        let t = claims()?.get(name)?.as_u64()?;
        Some(format!("{name} is {}", timefmt::rfc3339(t)))
    };
    let now_utc = || timefmt::rfc3339(now(args.now).as_secs());
    match kind {
        ErrorKind::UnknownKeyId => {
            let header = wristband_jose::dangerous::decode_without_verification(token).ok()?;
            let kid = header.header.get("kid").map(ToString::to_string);
            let mut known: Vec<&str> = keys.iter().map(|k| k.kid()).collect();
            known.sort_unstable();
            Some(format!(
                "the token's kid is {}; the keys given have {}",
                kid.as_deref().unwrap_or("(none)"),
                known.join(", ")
            ))
        }
        ErrorKind::AlgorithmNotAllowed | ErrorKind::AlgorithmMismatch => Some(
            "check --alg: an RSA key file is read as RS256 unless only PS256 is allowed".into(),
        ),
        ErrorKind::WrongIssuer => Some(format!(
            "the token says iss {}; expected \"{}\"",
            claims()?.get("iss")?,
            args.iss
        )),
        ErrorKind::WrongAudience => Some(format!(
            "the token says aud {}; accepted: {}",
            claims()?.get("aud")?,
            args.aud.join(", ")
        )),
        ErrorKind::Expired => Some(format!("{}; now is {}", time("exp")?, now_utc())),
        ErrorKind::NotYetValid => Some(format!("{}; now is {}", time("nbf")?, now_utc())),
        ErrorKind::IssuedInFuture => Some(format!("{}; now is {}", time("iat")?, now_utc())),
        _ => None,
    }
}
