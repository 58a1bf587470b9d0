//! Settings of the commands that use the auth service's store: one loader for all of them
//! ([`Config::load`]): defaults, then the TOML file (`--config`), then `WRISTBAND_*`
//! environment variables, then flags. The store flags are global: they may come before or
//! after the subcommand.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use std::io::Write as _;

use anyhow::Context;
use clap::Args;
use wristband_server::config::{Config, Overrides};

use crate::args::AlgArg;

fn duration(s: &str) -> Result<Duration, String> {
    wristband_server::config::parse_duration(s).map_err(|e| e.to_string())
}

/// Where the data lives: shared by `serve`, `user`, `client`, `sessions` and `keys`. Each
/// flag may also be set in its `WRISTBAND_*` variable (`WRISTBAND_CONFIG`,
/// `WRISTBAND_DATA_DIR`, `WRISTBAND_DATABASE`, `WRISTBAND_MASTER_KEY_FILE`).
#[derive(Debug, Args)]
pub(crate) struct StoreArgs {
    /// TOML configuration file (see wristband.example.toml).
    #[arg(long, global = true)]
    pub(crate) config: Option<PathBuf>,
    /// Directory for the SQLite database and keys [default: ./wristband-data].
    #[arg(long, global = true)]
    pub(crate) data_dir: Option<PathBuf>,
    /// Database URL instead of the SQLite file in the data directory: `sqlite:PATH`, or
    /// `postgres://USER@HOST/DB` for several auth instances on one PostgreSQL.
    #[arg(long, global = true)]
    pub(crate) database: Option<String>,
    /// File with the master key that encrypts the signing keys in the store [default:
    /// <data-dir>/master.key]. The key itself may be given in WRISTBAND_MASTER_KEY instead.
    #[arg(long, global = true)]
    pub(crate) master_key_file: Option<PathBuf>,
}

/// Flags of `wristband serve`.
#[derive(Debug, Args)]
#[command(
    after_help = "Every setting may also be given in the configuration file or in a \
    WRISTBAND_* environment variable (--access-ttl: WRISTBAND_ACCESS_TTL, and so on; see \
    wristband.example.toml). Flags win over the environment, which wins over the file. \
    The other commands on the store (user, client, sessions, keys) read the same file and \
    variables."
)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Issuer URL [default: http://<listen>].
    #[arg(long)]
    issuer: Option<String>,
    /// Audience of issued tokens [default: wristband].
    #[arg(long)]
    audience: Option<String>,
    /// Signing algorithm [default: RS256].
    #[arg(long, value_enum)]
    alg: Option<AlgArg>,
    /// Access-token lifetime, 1m to 60m [default: 15m].
    #[arg(long, value_parser = duration)]
    access_ttl: Option<Duration>,
    /// Session idle lifetime [default: 14d].
    #[arg(long, value_parser = duration)]
    refresh_idle_ttl: Option<Duration>,
    /// Session absolute lifetime [default: 30d].
    #[arg(long, value_parser = duration)]
    refresh_absolute_ttl: Option<Duration>,
    /// Grace window for the previous refresh token, 0s to 60s [default: 10s].
    #[arg(long, value_parser = duration)]
    refresh_grace: Option<Duration>,
    /// Enable POST /v1/users (self-service registration).
    #[arg(long)]
    allow_registration: Option<bool>,
    /// HS256 mode: file with the shared secret (base64url or an `oct` JWK). The secret
    /// itself may be given in WRISTBAND_HS256_SECRET instead.
    #[arg(long)]
    hs256_secret_file: Option<PathBuf>,
    /// Replace the signing key this long after it started to sign; 0s: only by hand
    /// [default: 30d].
    #[arg(long, value_parser = duration)]
    key_rotation: Option<Duration>,
    /// Publish a new key this long before it signs [default: twice --jwks-max-age].
    #[arg(long, value_parser = duration)]
    key_prepublish: Option<Duration>,
    /// Cache-Control max-age of the JWKS [default: 5m].
    #[arg(long, value_parser = duration)]
    jwks_max_age: Option<Duration>,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key); adds HSTS.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// A browser origin allowed to call the service with credentials (CORS), e.g.
    /// https://app.example.com; repeat for several (environment: comma-separated).
    #[arg(long = "cors-allowed-origin", value_delimiter = ',')]
    cors_allowed_origins: Vec<String>,
    /// A proxy (address or CIDR network) whose X-Forwarded-For names the client, for
    /// throttling and the audit trail; repeatable [default: none, the header is ignored].
    #[arg(long = "trusted-proxy", value_name = "NET", value_delimiter = ',')]
    trusted_proxies: Vec<String>,
    /// The browser-facing base URL of the pages, cookies and redirects; it may have a path
    /// when a proxy mounts the service under a prefix, e.g. https://app.example.com/auth
    /// [default: the issuer's origin, no prefix].
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// An origin that return targets (return_to) may point to; repeatable
    /// [default: the public URL's origin].
    #[arg(long = "return-origin", value_name = "ORIGIN", value_delimiter = ',')]
    return_origins: Vec<String>,
    /// Close a connection that has not sent a complete request header (nor, with HTTPS,
    /// finished its handshake) this long after it was accepted or began its next request
    /// [default: 10s].
    #[arg(long, value_parser = duration)]
    header_read_timeout: Option<Duration>,
    /// Close a keep-alive connection idle this long [default: 60s].
    #[arg(long, value_parser = duration)]
    idle_timeout: Option<Duration>,
    /// Answer 408 and close when a request body has not arrived this long after its header
    /// [default: 30s].
    #[arg(long, value_parser = duration)]
    request_body_timeout: Option<Duration>,
    /// Most connections open at once; 0: from the open-file limit, keeping a reserve
    /// [default: 0].
    #[arg(long)]
    max_connections: Option<usize>,
    /// Users of this role must sign in with a second factor: one without enrols an
    /// authenticator app at the next sign-in, before getting a token; repeatable
    /// (environment: comma-separated) [default: none].
    #[arg(
        long = "require-mfa-for-role",
        value_name = "ROLE",
        value_delimiter = ','
    )]
    require_mfa_for_roles: Vec<String>,
}

impl StoreArgs {
    /// The configuration of a command on the store: file, environment, then these flags
    /// and `extra`.
    pub(crate) fn load(&self, extra: Overrides) -> anyhow::Result<Config> {
        let flags = Overrides {
            data_dir: self.data_dir.clone(),
            database: self.database.clone(),
            master_key_file: self.master_key_file.clone(),
            ..extra
        };
        Ok(Config::load(
            self.config.as_deref(),
            |name| std::env::var(name).ok(),
            flags,
        )?)
    }
}

impl ServeArgs {
    /// The configuration for `serve`.
    pub(crate) fn load(&self) -> anyhow::Result<Config> {
        self.store.load(Overrides {
            listen: self.listen,
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            alg: self.alg.map(Into::into),
            access_ttl: self.access_ttl,
            refresh_idle_ttl: self.refresh_idle_ttl,
            refresh_absolute_ttl: self.refresh_absolute_ttl,
            refresh_grace: self.refresh_grace,
            allow_registration: self.allow_registration,
            hs256_secret_file: self.hs256_secret_file.clone(),
            key_rotation: self.key_rotation,
            key_prepublish: self.key_prepublish,
            jwks_max_age: self.jwks_max_age,
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            cors_allowed_origins: (!self.cors_allowed_origins.is_empty())
                .then(|| self.cors_allowed_origins.clone()),
            trusted_proxies: (!self.trusted_proxies.is_empty())
                .then(|| self.trusted_proxies.clone()),
            public_url: self.public_url.clone(),
            return_origins: (!self.return_origins.is_empty()).then(|| self.return_origins.clone()),
            header_read_timeout: self.header_read_timeout,
            idle_timeout: self.idle_timeout,
            request_body_timeout: self.request_body_timeout,
            max_connections: self.max_connections,
            require_mfa_for_roles: (!self.require_mfa_for_roles.is_empty())
                .then(|| self.require_mfa_for_roles.clone()),
            ..Overrides::default()
        })
    }
}

/// Logs to stderr; `RUST_LOG` filters (default `info`). Audit events use the target
/// `wristband::audit`.
pub(crate) fn init_logging() {
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colours only on a terminal: logs redirected to a file or a pipe stay plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .try_init();
}

/// A single-threaded tokio runtime for the commands that run once against the store.
pub(crate) fn current_thread_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// A multi-threaded tokio runtime for the commands that serve.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    runtime_with_threads(0)
}

/// A multi-threaded tokio runtime with `threads` worker threads (0: one per CPU, or
/// `TOKIO_WORKER_THREADS`).
pub(crate) fn runtime_with_threads(threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if threads > 0 {
        builder.worker_threads(threads);
    }
    builder
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Opens the store for a command that changes it. A command that may start a new store
/// (`create`: `user add`, `keys import`) says on standard error when it creates one; every
/// other command refuses a SQLite database that does not exist, so that a mistyped
/// `--data-dir` never leaves an empty database behind.
pub(crate) async fn open_writable_store(
    config: &Config,
    create: bool,
) -> Result<std::sync::Arc<dyn wristband_server::store::Store>, wristband_server::startup::StartError>
{
    use wristband_server::startup::{new_store_path, open_existing_store, open_store};
    if !create {
        return open_existing_store(config).await;
    }
    if let Some(path) = new_store_path(config) {
        // Nothing more can be done if stderr is gone.
        let _ = writeln!(
            std::io::stderr(),
            "notice: creating a new store at {}",
            path.display()
        );
    }
    open_store(config).await
}
