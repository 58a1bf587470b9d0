//! Value parsers and inputs shared by several commands: algorithms, durations, the time
//! "now", and the token read from an argument or standard input.

use std::io::Read;
use std::time::Duration;
use wristband_jose::Clock as _;

use anyhow::{bail, Context};
use clap::ValueEnum;
use wristband_jose::{Algorithm, UnixTime, MAX_LEEWAY, MAX_TOKEN_BYTES};

/// The longest token lifetime `token sign` produces.
pub(crate) const MAX_TTL: Duration = Duration::from_secs(60 * 60);

/// An algorithm name on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum AlgArg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    #[value(name = "RS256")]
    Rs256,
    /// RSASSA-PSS with SHA-256.
    #[value(name = "PS256")]
    Ps256,
    /// ECDSA P-256 with SHA-256.
    #[value(name = "ES256")]
    Es256,
    /// Ed25519.
    #[value(name = "EdDSA")]
    EdDsa,
    /// HMAC SHA-256 with a shared secret.
    #[value(name = "HS256")]
    Hs256,
}

impl From<AlgArg> for Algorithm {
    fn from(a: AlgArg) -> Self {
        match a {
            AlgArg::Rs256 => Algorithm::RS256,
            AlgArg::Ps256 => Algorithm::PS256,
            AlgArg::Es256 => Algorithm::ES256,
            AlgArg::EdDsa => Algorithm::EdDSA,
            AlgArg::Hs256 => Algorithm::HS256,
        }
    }
}

/// Parses `90s`, `15m` or `1h` (a whole number and one unit).
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() {
        return Err(format!("`{s}` is not a duration like 90s, 15m or 1h"));
    }
    let n: u64 = digits.parse().map_err(|_| format!("`{s}` is too large"))?;
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => {
            return Err(format!(
                "`{s}` needs a unit: s, m or h (as in 90s, 15m, 1h)"
            ))
        }
    };
    n.checked_mul(unit_secs)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("`{s}` is too large"))
}

/// A server timeout: `10s`, `1m`, `1h` or a bare number of seconds, more than zero.
pub(crate) fn parse_timeout(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let d = if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        parse_duration(&format!("{t}s"))?
    } else {
        parse_duration(t)?
    };
    if d.is_zero() {
        return Err("a timeout must be positive".into());
    }
    Ok(d)
}

/// A token lifetime: more than zero and at most [`MAX_TTL`].
pub(crate) fn parse_ttl(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() || d > MAX_TTL {
        return Err(format!(
            "`{s}` is out of range: access tokens live between 1s and 60m"
        ));
    }
    Ok(d)
}

/// A clock-skew allowance: at most [`MAX_LEEWAY`].
pub(crate) fn parse_leeway(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d > MAX_LEEWAY {
        return Err(format!(
            "`{s}` is out of range: the leeway is at most {}s",
            MAX_LEEWAY.as_secs()
        ));
    }
    Ok(d)
}

/// A maximum token lifetime for verification: more than zero.
pub(crate) fn parse_lifetime(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err("the maximum lifetime must be more than zero".into());
    }
    Ok(d)
}

/// The time to use as "now": the hidden `--now` option when given (tests pin time with
/// it), else the system clock.
pub(crate) fn now(pinned: Option<u64>) -> UnixTime {
    pinned.map_or_else(|| wristband_jose::SystemClock.now(), UnixTime::from_secs)
}

/// Now in whole seconds, as the stores keep it.
pub(crate) fn now_secs() -> i64 {
    now(None).as_i64()
}

/// The token from the command line, or from standard input when the argument is absent
/// or `-` (which keeps the token out of shell history and process listings).
pub(crate) fn read_token(arg: Option<&str>) -> anyhow::Result<String> {
    let text = match arg {
        Some(t) if t != "-" => t.to_owned(),
        _ => {
            let mut buf = String::new();
            std::io::stdin()
                .take(4 * MAX_TOKEN_BYTES as u64)
                .read_to_string(&mut buf)
                .context("reading the token from standard input")?;
            buf
        }
    };
    let token = text.trim();
    if token.is_empty() {
        bail!("no token given: pass it as an argument or on standard input");
    }
    Ok(token.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        for bad in [
            "",
            "15",
            "m",
            "1.5h",
            "-1m",
            "15 m",
            "1d",
            "99999999999999999999s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn timeouts_take_bare_seconds_and_are_positive() {
        assert_eq!(parse_timeout("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_timeout("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_timeout("0").is_err());
        assert!(parse_timeout("0s").is_err());
        assert!(parse_timeout("x").is_err());
    }

    #[test]
    fn ttl_is_short_and_never_zero() {
        assert_eq!(parse_ttl("60m"), Ok(MAX_TTL));
        assert_eq!(parse_ttl("1s"), Ok(Duration::from_secs(1)));
        assert!(parse_ttl("0s").is_err());
        assert!(parse_ttl("61m").is_err());
        assert!(parse_ttl("3601s").is_err());
        assert!(parse_ttl("2h").is_err());
    }

    #[test]
    fn leeway_is_at_most_a_minute() {
        assert_eq!(parse_leeway("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_leeway("1m"), Ok(MAX_LEEWAY));
        assert!(parse_leeway("61s").is_err());
    }
}
