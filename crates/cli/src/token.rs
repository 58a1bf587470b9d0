//! `wristband token`: sign and decode; verify and audit live in their own modules.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::builder::NonEmptyStringValueParser;
use clap::{Args, Subcommand};
use serde_json::Value;
use wristband_jose::{dangerous, sign, Audience, Claims, MAX_NUMERIC_DATE};

use crate::args::{now, parse_ttl, read_token, AlgArg};
use crate::{audit, timefmt, verify, Outcome};

/// `wristband token ...`
#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Sign an access token (RFC 9068) and print it.
    ///
    /// The token carries `iss`, `sub`, `aud`, `exp`, `iat`, `nbf`, a random `jti` and
    /// `client_id`, plus `role` and `scope` when given. Its header is
    /// `{alg, typ: "at+jwt", kid}`. Only the token is printed.
    Sign(SignArgs),
    /// Print a token's header and claims WITHOUT verifying anything.
    Decode(DecodeArgs),
    /// Verify a token against a key or JWKS, as an API service would.
    ///
    /// Exits 0 and prints the verified claims when the token is valid. Exits 1 and
    /// prints the precise reason when it is not: this is a debugging tool, while a
    /// service tells its clients only "token expired" or "token invalid".
    Verify(verify::VerifyArgs),
    /// Check a token for common mistakes, without any key.
    ///
    /// Prints one line per finding, `CODE: explanation`, and exits 1 when there are
    /// findings. Codes: alg-none, weak-secret, no-exp, no-iat, long-lifetime,
    /// personal-data, wrong-typ, no-kid, forbidden-header.
    Audit(audit::AuditArgs),
}

/// Arguments of `wristband token sign`.
#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    /// Private key: PKCS#8 PEM (RSA, P-256 or Ed25519), or a private JWK such as the
    /// HS256 `secret.jwk.json` written by `keys generate`.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Algorithm; needed only to sign PS256 with an RSA key (RSA defaults to RS256). For
    /// other keys the algorithm follows from the key.
    #[arg(long, value_enum)]
    alg: Option<AlgArg>,
    /// Issuer (`iss`).
    #[arg(long, value_parser = NonEmptyStringValueParser::new())]
    iss: String,
    /// Audience (`aud`); repeat for several.
    #[arg(long, required = true, value_parser = NonEmptyStringValueParser::new())]
    aud: Vec<String>,
    /// Subject (`sub`): a stable, opaque user id.
    #[arg(long, value_parser = NonEmptyStringValueParser::new())]
    sub: String,
    /// Role (`role`).
    #[arg(long, value_parser = NonEmptyStringValueParser::new())]
    role: Option<String>,
    /// Scope (`scope`); repeat for several, they are joined with spaces.
    #[arg(long, value_parser = NonEmptyStringValueParser::new())]
    scope: Vec<String>,
    /// Client the token is issued to (`client_id`).
    #[arg(long, default_value = "wristband-cli", value_parser = NonEmptyStringValueParser::new())]
    client_id: String,
    /// Lifetime, like 90s, 15m or 1h: more than zero and at most 60m.
    #[arg(long, default_value = "15m", value_parser = parse_ttl)]
    ttl: Duration,
    /// Issue the token at this Unix time instead of now (for tests).
    #[arg(long, hide = true, value_name = "UNIX_SECS")]
    now: Option<u64>,
}

/// Arguments of `wristband token decode`.
#[derive(Debug, Args)]
pub(crate) struct DecodeArgs {
    /// The token; read from standard input when omitted or `-`.
    token: Option<String>,
}

/// Runs a `token` subcommand.
pub(crate) fn run(cmd: TokenCommand, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    match cmd {
        TokenCommand::Sign(args) => sign_token(&args, out),
        TokenCommand::Decode(args) => decode(&args, out),
        TokenCommand::Verify(args) => verify::run(&args, out),
        TokenCommand::Audit(args) => audit::run(&args, out),
    }
}

fn sign_token(args: &SignArgs, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let key = crate::keyfile::load_signing_key(&args.key, args.alg.map(Into::into))?;
    let aud: Audience = args.aud.iter().cloned().collect();
    let mut claims = Claims::new(&*args.iss, &*args.sub, aud, now(args.now), args.ttl)
        .with_client_id(&*args.client_id);
    if let Some(role) = &args.role {
        claims = claims.with_role(&**role);
    }
    if !args.scope.is_empty() {
        claims = claims.with_scope(args.scope.join(" "));
    }
    let token = sign(&key, &claims).context("signing the token")?;
    writeln!(out, "{token}")?;
    Ok(Outcome::Success)
}

/// The banner that opens `token decode` output.
pub(crate) const NOT_VERIFIED: &str =
    "NOT VERIFIED: nothing below has been checked (signature, issuer, audience, expiry). \
     Use `wristband token verify` to check it.";

fn decode(args: &DecodeArgs, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let token = read_token(args.token.as_deref())?;
    let decoded = dangerous::decode_without_verification(&token)
        .context("cannot decode the token (`wristband token audit` reads malformed tokens too)")?;
    writeln!(out, "{NOT_VERIFIED}")?;
    writeln!(out, "header:")?;
    writeln!(out, "{}", serde_json::to_string_pretty(&decoded.header)?)?;
    writeln!(out, "claims:")?;
    writeln!(out, "{}", serde_json::to_string_pretty(&decoded.payload)?)?;
    let times: Vec<(&str, u64)> = ["iat", "nbf", "exp"]
        .iter()
        .filter_map(|&name| {
            let t = decoded.payload.get(name).and_then(Value::as_u64)?;
            (t <= MAX_NUMERIC_DATE).then_some((name, t))
        })
        .collect();
    if !times.is_empty() {
        writeln!(out, "times (UTC):")?;
        for (name, t) in times {
            writeln!(out, "  {name}: {}", timefmt::rfc3339(t))?;
        }
        if let (Some(iat), Some(exp)) = (
            decoded.payload.get("iat").and_then(Value::as_u64),
            decoded.payload.get("exp").and_then(Value::as_u64),
        ) {
            if exp >= iat {
                writeln!(out, "  lifetime: {}s", exp - iat)?;
            }
        }
    }
    Ok(Outcome::Success)
}
