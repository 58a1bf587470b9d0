//! Typed, layered settings: defaults, then a TOML file, then `WRISTBAND_*` environment
//! variables, then flags (the CLI maps its flags onto [`Overrides`]). [`Config::load`] is the
//! one loader of every command. Unknown keys are refused; everything is validated by
//! [`Config::validate`] before the service starts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use wristband_jose::{Algorithm, SecretString};

mod overrides;
mod public;

pub use overrides::{Overrides, CONFIG_ENV};
pub use public::PublicUrl;

/// A setting is out of range or cannot be parsed, or a file it names cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {message}")]
pub struct ConfigError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl ConfigError {
    /// A refused setting, and why.
    pub fn new(message: impl Into<String>) -> Self {
        ConfigError {
            message: message.into(),
            source: None,
        }
    }

    /// A refused setting, and the error behind it (a file that cannot be read, say).
    pub fn because(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        ConfigError {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// What is wrong, without the cause.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Argon2Config {
    /// Memory in KiB (OWASP minimum: 19456).
    pub memory_kib: u32,
    /// Iterations.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for Argon2Config {
    fn default() -> Self {
        Argon2Config {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// Login throttling: growing delays after a number of free failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleConfig {
    /// Failures allowed for one account from one IP before delays start.
    pub pair_free_failures: u32,
    /// Failures allowed for one account from all IPs before delays start.
    pub account_free_failures: u32,
    /// Failures allowed from one IP over all accounts before delays start.
    pub ip_free_failures: u32,
    /// Longest delay imposed, so that nobody can be locked out for good.
    #[serde(with = "duration_str")]
    pub max_delay: Duration,
    /// Failures are forgotten this long after the first one.
    #[serde(with = "duration_str")]
    pub window: Duration,
    /// Failures allowed for one known device (a valid device token) before delays start.
    pub device_free_failures: u32,
    /// How long a device token (and its cookie) stays valid after a successful login.
    #[serde(with = "duration_str")]
    pub device_cookie_max_age: Duration,
    /// Registrations allowed from one IP per `window` (with `allow_registration`).
    pub registrations_per_ip: u32,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            pair_free_failures: 5,
            account_free_failures: 20,
            ip_free_failures: 50,
            max_delay: Duration::from_secs(15 * 60),
            window: Duration::from_secs(60 * 60),
            device_free_failures: 5,
            device_cookie_max_age: Duration::from_secs(365 * 86_400),
            registrations_per_ip: 10,
        }
    }
}

/// Every setting of `wristband serve`. See `wristband.example.toml` for the documented list.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Directory for the SQLite database and key files.
    pub data_dir: PathBuf,
    /// Database URL; default: `wristband.db` in `data_dir`.
    pub database: Option<String>,
    /// Token issuer; default `http://<listen>`.
    pub issuer: Option<String>,
    /// Audience of issued access tokens.
    pub audience: String,
    /// Signing algorithm.
    pub alg: Algorithm,
    /// `client_id` claim of tokens issued through `/v1/login`.
    pub client_id: String,
    /// Access-token lifetime (1m to 60m).
    #[serde(with = "duration_str")]
    pub access_ttl: Duration,
    /// A session ends after this long without a refresh.
    #[serde(with = "duration_str")]
    pub refresh_idle_ttl: Duration,
    /// A session ends this long after login, whatever happens.
    #[serde(with = "duration_str")]
    pub refresh_absolute_ttl: Duration,
    /// How long the immediate predecessor of a refresh token may still be exchanged (0 to 60 s).
    #[serde(with = "duration_str")]
    pub refresh_grace: Duration,
    /// Enables `POST /v1/users`.
    pub allow_registration: bool,
    /// Format of access tokens issued at login and refresh: `jwt` or `opaque`.
    pub access_token_format: TokenFormat,
    /// Serve the revocation feed without authentication.
    pub revocation_feed_public: bool,
    /// `Cache-Control: max-age` of the JWKS.
    #[serde(with = "duration_str")]
    pub jwks_max_age: Duration,
    /// Password hashes running at once; default: the number of CPUs.
    pub hash_concurrency: Option<usize>,
    /// Password hashing cost.
    pub argon2: Argon2Config,
    /// Login throttling.
    pub throttle: ThrottleConfig,
    /// File holding the master key (32 bytes, base64url) that encrypts private keys in the
    /// store; default: `master.key` in `data_dir`, created on first start.
    pub master_key_file: Option<PathBuf>,
    /// The master key itself, from the `WRISTBAND_MASTER_KEY` environment variable (never
    /// from the file or a flag).
    #[serde(skip)]
    pub master_key: Option<SecretString>,
    /// HS256 mode: file holding the shared secret (base64url text or an `oct` JWK).
    pub hs256_secret_file: Option<PathBuf>,
    /// HS256 mode: the secret itself, from the `WRISTBAND_HS256_SECRET` environment variable.
    #[serde(skip)]
    pub hs256_secret: Option<SecretString>,
    /// The signing key is replaced this long after it started to sign; `0s`: only by hand.
    #[serde(with = "duration_str")]
    pub key_rotation: Duration,
    /// A new key is published this long before it signs; default twice `jwks_max_age`, and
    /// never less than `jwks_max_age`.
    #[serde(with = "duration_str_opt")]
    pub key_prepublish: Option<Duration>,
    /// Browser origins (`scheme://host[:port]`) allowed to call the service with
    /// credentials (CORS); empty: none besides the issuer's own.
    pub cors_allowed_origins: Vec<String>,
    /// Proxies (addresses or CIDR networks) whose `X-Forwarded-For` names the client, for
    /// throttling and the audit trail; empty: the header is ignored.
    pub trusted_proxies: Vec<String>,
    /// The browser-facing base URL of the pages, cookies and redirects, with a path when a
    /// proxy mounts the service under a prefix (`https://app.example.com/auth`); default:
    /// the issuer's origin, with no prefix.
    pub public_url: Option<String>,
    /// Origins (`scheme://host[:port]`) that a return target (`return_to`) may point to;
    /// empty: the public URL's origin only.
    pub return_origins: Vec<String>,
    /// PEM certificate chain: serve HTTPS (with HSTS) instead of HTTP.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Longest time from a connection's acceptance (including the TLS handshake), or from
    /// the first byte of its next request, to the end of the request header.
    #[serde(with = "duration_str")]
    pub header_read_timeout: Duration,
    /// A keep-alive connection waiting for its next request is closed after this long.
    #[serde(with = "duration_str")]
    pub idle_timeout: Duration,
    /// Longest time from the end of a request header to the end of its body.
    #[serde(with = "duration_str")]
    pub request_body_timeout: Duration,
    /// Most connections open at once; 0: derived from the open-file limit.
    pub max_connections: usize,
    /// How long a back-channel logout token is retried (with exponential backoff) before
    /// it is given up.
    #[serde(with = "duration_str")]
    pub backchannel_retry_window: Duration,
    /// Roles whose users must sign in with a second factor: one without a factor enrols at
    /// the next sign-in before getting a token.
    pub require_mfa_for_roles: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./wristband-data"),
            database: None,
            issuer: None,
            audience: "wristband".into(),
            alg: Algorithm::RS256,
            client_id: "wristband".into(),
            access_ttl: Duration::from_secs(15 * 60),
            refresh_idle_ttl: Duration::from_secs(14 * 86_400),
            refresh_absolute_ttl: Duration::from_secs(30 * 86_400),
            refresh_grace: Duration::from_secs(10),
            allow_registration: false,
            access_token_format: TokenFormat::Jwt,
            revocation_feed_public: false,
            jwks_max_age: Duration::from_secs(300),
            hash_concurrency: None,
            argon2: Argon2Config::default(),
            throttle: ThrottleConfig::default(),
            master_key_file: None,
            master_key: None,
            hs256_secret_file: None,
            hs256_secret: None,
            key_rotation: Duration::from_secs(30 * 86_400),
            key_prepublish: None,
            cors_allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            public_url: None,
            return_origins: Vec::new(),
            tls_cert: None,
            tls_key: None,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            request_body_timeout: Duration::from_secs(30),
            max_connections: 0,
            backchannel_retry_window: Duration::from_secs(3600),
            require_mfa_for_roles: Vec::new(),
        }
    }
}

impl Config {
    /// The one loader of every command: defaults, then the TOML file (`file`, else the one
    /// named by `WRISTBAND_CONFIG`), then the `WRISTBAND_*` environment variables read
    /// through `var`, then `flags`; validated.
    pub fn load(
        file: Option<&Path>,
        var: impl Fn(&str) -> Option<String>,
        flags: Overrides,
    ) -> Result<Self, ConfigError> {
        let from_env = var(CONFIG_ENV)
            .filter(|v| !v.trim().is_empty())
            .map(PathBuf::from);
        let base = match file.map(Path::to_path_buf).or(from_env) {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    ConfigError::because(format!("cannot read {}", path.display()), e)
                })?;
                Config::from_toml(&text).map_err(|e| {
                    ConfigError::new(format!("in {}: {}", path.display(), e.message()))
                })?
            }
            None => Config::default(),
        };
        let config = base.apply(Overrides::from_env(var)?).apply(flags);
        config.validate()?;
        Ok(config)
    }

    /// Parses a TOML file's text; unknown keys are errors.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::new(e.message().to_owned()))
    }

    /// Applies flag and environment overrides.
    pub fn apply(mut self, o: Overrides) -> Self {
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = o.$f { self.$f = v; } )* };
        }
        set!(
            listen,
            data_dir,
            audience,
            alg,
            access_ttl,
            refresh_idle_ttl,
            refresh_absolute_ttl,
            refresh_grace,
            allow_registration
        );
        if o.database.is_some() {
            self.database = o.database;
        }
        set!(
            key_rotation,
            jwks_max_age,
            cors_allowed_origins,
            trusted_proxies,
            return_origins,
            header_read_timeout,
            idle_timeout,
            request_body_timeout,
            max_connections,
            backchannel_retry_window,
            require_mfa_for_roles
        );
        macro_rules! set_opt {
            ($($f:ident),*) => { $( if o.$f.is_some() { self.$f = o.$f; } )* };
        }
        set_opt!(
            issuer,
            public_url,
            master_key_file,
            master_key,
            hs256_secret_file,
            hs256_secret,
            key_prepublish,
            tls_cert,
            tls_key
        );
        self
    }

    /// Checks every range; call before starting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |m: &str| Err(ConfigError::new(m));
        let ttl = self.access_ttl.as_secs();
        if !(60..=3600).contains(&ttl) {
            return err("access_ttl must be between 1m and 60m");
        }
        if self.refresh_grace > Duration::from_secs(60) {
            return err("refresh_grace must be between 0s and 60s");
        }
        if self.refresh_idle_ttl.is_zero() || self.refresh_idle_ttl > self.refresh_absolute_ttl {
            return err("refresh_idle_ttl must be positive and at most refresh_absolute_ttl");
        }
        if self.audience.is_empty() || self.client_id.is_empty() {
            return err("audience and client_id must not be empty");
        }
        if let Some(iss) = &self.issuer {
            if url::Url::parse(iss).is_err() {
                return err("issuer must be an absolute URL");
            }
        }
        let a = self.argon2;
        if a.memory_kib < 8 * a.parallelism || a.iterations == 0 || a.parallelism == 0 {
            return err("argon2 parameters out of range");
        }
        if self.throttle.window.is_zero() || self.throttle.max_delay.is_zero() {
            return err("throttle window and max_delay must be positive");
        }
        if self.throttle.device_cookie_max_age.is_zero() || self.throttle.registrations_per_ip == 0
        {
            return err("throttle device_cookie_max_age and registrations_per_ip must be positive");
        }
        if self.key_prepublish() < self.jwks_max_age {
            return err(
                "key_prepublish must be at least jwks_max_age, so that every verifier \
                        holds a new key before it signs",
            );
        }
        if !self.key_rotation.is_zero() && self.key_rotation <= self.key_prepublish() {
            return err("key_rotation must be longer than key_prepublish (or 0s for manual only)");
        }
        let hs = self.hs256_secret.is_some() || self.hs256_secret_file.is_some();
        if self.alg == Algorithm::HS256 && !hs {
            return err("HS256 needs a shared secret: --hs256-secret-file or WRISTBAND_HS256_SECRET \
                        (at least 32 random bytes; `wristband keys generate --alg HS256` makes one)");
        }
        if self.alg != Algorithm::HS256 && hs {
            return err("an HS256 secret is given but alg is not HS256");
        }
        if self.header_read_timeout.is_zero()
            || self.idle_timeout.is_zero()
            || self.request_body_timeout.is_zero()
        {
            return err(
                "header_read_timeout, idle_timeout and request_body_timeout must be positive",
            );
        }
        if self.backchannel_retry_window.is_zero()
            || self.backchannel_retry_window > Duration::from_secs(7 * 86_400)
        {
            return err("backchannel_retry_window must be between 1s and 7d");
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return err("tls_cert and tls_key go together");
        }
        if let Err(bad) = wristband_serve::TrustedProxies::parse(&self.trusted_proxies) {
            return Err(ConfigError::new(format!(
                "trusted_proxies: {bad:?} is not an address or a network like 10.0.0.0/8"
            )));
        }
        if let Some(public) = &self.public_url {
            if let Err(why) = PublicUrl::parse(public) {
                return Err(ConfigError::new(format!("public_url: {public:?} {why}")));
            }
        }
        for origin in &self.return_origins {
            if parse_origin(origin).is_none() {
                return Err(ConfigError::new(format!(
                    "return_origins: {origin:?} is not an origin like https://app.example.com"
                )));
            }
        }
        for origin in &self.cors_allowed_origins {
            if parse_origin(origin).is_none() {
                return Err(ConfigError::new(format!(
                    "cors_allowed_origins: {origin:?} is not an origin like https://app.example.com"
                )));
            }
        }
        Ok(())
    }

    /// Whether the service serves HTTPS itself.
    pub fn tls(&self) -> bool {
        self.tls_cert.is_some()
    }

    /// The connection limits of the HTTP server.
    pub fn serve_limits(&self) -> wristband_serve::ServeLimits {
        wristband_serve::ServeLimits {
            header_read_timeout: self.header_read_timeout,
            idle_timeout: self.idle_timeout,
            request_body_timeout: self.request_body_timeout,
            max_connections: (self.max_connections > 0).then_some(self.max_connections),
        }
    }

    /// How long a new key is published before it signs.
    pub fn key_prepublish(&self) -> Duration {
        self.key_prepublish
            .unwrap_or(self.jwks_max_age.saturating_mul(2))
    }

    /// How long a retired key stays published: the longest access-token lifetime plus the
    /// largest leeway a verifier may allow.
    pub fn key_retire_for(&self) -> Duration {
        self.access_ttl + wristband_jose::MAX_LEEWAY
    }

    /// Where browsers reach the pages: `public_url`, else the issuer's origin with no
    /// prefix. Call after [`Config::validate`].
    pub fn public_url(&self) -> PublicUrl {
        match self.public_url.as_deref().map(PublicUrl::parse) {
            Some(Ok(public)) => public,
            _ => PublicUrl::at_origin_of(&self.issuer()),
        }
    }

    /// The serialised origins a return target may point to: `return_origins`, else the
    /// public URL's origin.
    pub fn return_origins(&self) -> Vec<String> {
        if self.return_origins.is_empty() {
            return vec![self.public_url().origin().to_owned()];
        }
        self.return_origins
            .iter()
            .filter_map(|o| parse_origin(o))
            .collect()
    }

    /// The issuer URL, defaulting to `http://<listen>` (`https://` with TLS).
    pub fn issuer(&self) -> String {
        let scheme = if self.tls() { "https" } else { "http" };
        self.issuer
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{}", self.listen))
    }
}

/// The serialized origin (`scheme://host[:port]`, default port left out) of an absolute
/// http(s) URL that is nothing but an origin; `None` otherwise.
pub fn parse_origin(text: &str) -> Option<String> {
    let url = url::Url::parse(text).ok()?;
    let bare = matches!(url.path(), "" | "/")
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none();
    let origin = url.origin();
    (bare && matches!(url.scheme(), "http" | "https") && origin.is_tuple())
        .then(|| origin.ascii_serialization())
}

/// Parses `90s`, `15m`, `1h`, `14d` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, ConfigError> {
    let s = s.trim();
    let bad = || {
        ConfigError::new(format!(
            "cannot parse duration {s:?} (use e.g. 30s, 15m, 1h, 14d)"
        ))
    };
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).map(Duration::from_secs).ok_or_else(bad)
}

mod duration_str_opt {
    use std::time::Duration;

    use serde::Deserializer;

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        super::duration_str::deserialize(d).map(Some)
    }
}

/// Formats a duration the way [`parse_duration`] reads it.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "0s".into(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

mod duration_str {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Secs(u64),
        Text(String),
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        match Raw::deserialize(d)? {
            Raw::Secs(s) => Ok(Duration::from_secs(s)),
            Raw::Text(t) => super::parse_duration(&t).map_err(serde::de::Error::custom),
        }
    }
}

/// Which kind of access token to issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenFormat {
    /// A signed JWT (RFC 9068), verified locally by every API service.
    #[default]
    Jwt,
    /// A random reference token, checked by introspection; revocable instantly.
    Opaque,
}

impl TokenFormat {
    /// `jwt` or `opaque`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenFormat::Jwt => "jwt",
            TokenFormat::Opaque => "opaque",
        }
    }

    /// Parses `jwt` or `opaque`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "jwt" => Some(TokenFormat::Jwt),
            "opaque" => Some(TokenFormat::Opaque),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
