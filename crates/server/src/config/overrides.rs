//! The command-line and environment layer of the settings: each `Some` wins over the file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use wristband_jose::{Algorithm, SecretString};

use super::{parse_duration, ConfigError};

/// Settings given on the command line or in `WRISTBAND_*` variables; each `Some` wins over
/// the file.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub database: Option<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub alg: Option<Algorithm>,
    pub access_ttl: Option<Duration>,
    pub refresh_idle_ttl: Option<Duration>,
    pub refresh_absolute_ttl: Option<Duration>,
    pub refresh_grace: Option<Duration>,
    pub allow_registration: Option<bool>,
    pub master_key_file: Option<PathBuf>,
    pub master_key: Option<SecretString>,
    pub hs256_secret_file: Option<PathBuf>,
    pub hs256_secret: Option<SecretString>,
    pub key_rotation: Option<Duration>,
    pub key_prepublish: Option<Duration>,
    pub jwks_max_age: Option<Duration>,
    pub cors_allowed_origins: Option<Vec<String>>,
    pub trusted_proxies: Option<Vec<String>>,
    pub public_url: Option<String>,
    pub return_origins: Option<Vec<String>>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub header_read_timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub request_body_timeout: Option<Duration>,
    pub max_connections: Option<usize>,
    pub backchannel_retry_window: Option<Duration>,
    pub require_mfa_for_roles: Option<Vec<String>>,
}

/// The environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "WRISTBAND_CONFIG";

impl Overrides {
    /// The settings given in `WRISTBAND_*` environment variables, read through `var` (the
    /// process environment in production: `|name| std::env::var(name).ok()`). Empty values
    /// count as unset; a value that cannot be parsed is an error naming the variable.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let bad = |name: &str, what: &str| {
            ConfigError::new(format!(
                "{name}: {:?} is not {what}",
                get(name).unwrap_or_default()
            ))
        };
        let duration = |name: &str| -> Result<Option<Duration>, ConfigError> {
            get(name)
                .map(|v| {
                    parse_duration(&v)
                        .map_err(|e| ConfigError::new(format!("{name}: {}", e.message())))
                })
                .transpose()
        };
        let path = |name: &str| get(name).map(PathBuf::from);
        let list = |name: &str| {
            get(name).map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
            })
        };
        let listen = match get("WRISTBAND_LISTEN") {
            Some(v) => Some(
                v.trim()
                    .parse()
                    .map_err(|_| bad("WRISTBAND_LISTEN", "an address like 127.0.0.1:8080"))?,
            ),
            None => None,
        };
        let alg = match get("WRISTBAND_ALG") {
            Some(v) => Some(
                v.trim()
                    .parse()
                    .map_err(|_| bad("WRISTBAND_ALG", "RS256, PS256, ES256, EdDSA or HS256"))?,
            ),
            None => None,
        };
        let allow_registration = match get("WRISTBAND_ALLOW_REGISTRATION")
            .as_deref()
            .map(str::trim)
        {
            Some("true" | "1") => Some(true),
            Some("false" | "0") => Some(false),
            Some(_) => return Err(bad("WRISTBAND_ALLOW_REGISTRATION", "true or false")),
            None => None,
        };
        let max_connections = match get("WRISTBAND_MAX_CONNECTIONS") {
            Some(v) => Some(
                v.trim()
                    .parse()
                    .map_err(|_| bad("WRISTBAND_MAX_CONNECTIONS", "a whole number"))?,
            ),
            None => None,
        };
        Ok(Overrides {
            listen,
            data_dir: path("WRISTBAND_DATA_DIR"),
            database: get("WRISTBAND_DATABASE"),
            issuer: get("WRISTBAND_ISSUER"),
            audience: get("WRISTBAND_AUDIENCE"),
            alg,
            access_ttl: duration("WRISTBAND_ACCESS_TTL")?,
            refresh_idle_ttl: duration("WRISTBAND_REFRESH_IDLE_TTL")?,
            refresh_absolute_ttl: duration("WRISTBAND_REFRESH_ABSOLUTE_TTL")?,
            refresh_grace: duration("WRISTBAND_REFRESH_GRACE")?,
            allow_registration,
            master_key_file: path("WRISTBAND_MASTER_KEY_FILE"),
            master_key: get("WRISTBAND_MASTER_KEY").map(SecretString::new),
            hs256_secret_file: path("WRISTBAND_HS256_SECRET_FILE"),
            hs256_secret: get("WRISTBAND_HS256_SECRET").map(SecretString::new),
            key_rotation: duration("WRISTBAND_KEY_ROTATION")?,
            key_prepublish: duration("WRISTBAND_KEY_PREPUBLISH")?,
            jwks_max_age: duration("WRISTBAND_JWKS_MAX_AGE")?,
            cors_allowed_origins: list("WRISTBAND_CORS_ALLOWED_ORIGINS"),
            trusted_proxies: list("WRISTBAND_TRUSTED_PROXIES"),
            public_url: get("WRISTBAND_PUBLIC_URL"),
            return_origins: list("WRISTBAND_RETURN_ORIGINS"),
            tls_cert: path("WRISTBAND_TLS_CERT"),
            tls_key: path("WRISTBAND_TLS_KEY"),
            header_read_timeout: duration("WRISTBAND_HEADER_READ_TIMEOUT")?,
            idle_timeout: duration("WRISTBAND_IDLE_TIMEOUT")?,
            request_body_timeout: duration("WRISTBAND_REQUEST_BODY_TIMEOUT")?,
            max_connections,
            backchannel_retry_window: duration("WRISTBAND_BACKCHANNEL_RETRY_WINDOW")?,
            require_mfa_for_roles: list("WRISTBAND_REQUIRE_MFA_FOR_ROLE"),
        })
    }
}
