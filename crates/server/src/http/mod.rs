//! HTTP: the router, the start-up of a listening [`App`], and request metrics.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use wristband_jose::{Clock, SecretString, SigningKey};

use crate::config::{Config, ConfigError};
use crate::domain::{AuthService, DomainError, KeyManager, KeySchedule, MasterKey, PolicyTemplate};
use crate::metrics::{Metrics, Route};
use crate::store::{SqliteStore, Store, StoreError};

pub mod cookies;
pub mod error;
pub mod extract;
pub mod feed;
mod handlers;
mod oauth;
pub mod openapi;
mod pages;
mod session;
mod tls;

pub use wristband_serve::TrustedProxies;

/// How often expired revocation records and opaque tokens are dropped.
pub const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);
/// How often the server runs the key schedule.
pub const KEY_SYNC_EVERY: std::time::Duration = std::time::Duration::from_secs(2);
/// How often the server reloads keys changed elsewhere (the CLI, other instances). Shorter
/// than the feed's poll, so that after an emergency revocation made elsewhere this
/// instance has stopped signing with the key before verifiers start refusing it.
pub const KEY_RELOAD_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Shared state of the handlers.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The domain service.
    pub service: Arc<AuthService>,
}

/// The routes of the auth service.
pub fn router(state: AppState) -> Router {
    let config = state.service.config();
    // Validated at start-up.
    let proxies = TrustedProxies::parse(&config.trusted_proxies).unwrap_or_default();
    let cors = cors_layer(&config.cors_allowed_origins);
    let tls = config.tls();
    let router = Router::new()
        .route("/v1/login", post(handlers::login))
        .route("/v1/session/refresh", post(session::refresh))
        .route("/v1/session/logout", post(session::logout))
        .route("/v1/refresh", post(handlers::refresh))
        .route("/v1/logout", post(handlers::logout))
        .route("/v1/logout-all", post(handlers::logout_all))
        .route("/v1/me", get(handlers::me))
        .route("/v1/sessions", get(handlers::sessions))
        .route(
            "/v1/sessions/{id}",
            axum::routing::delete(handlers::delete_session),
        )
        .route("/v1/revocations", get(feed::page))
        .route("/v1/revocations/stream", get(feed::stream))
        .route("/oauth2/token", post(oauth::token))
        .route("/oauth2/revoke", post(oauth::revoke))
        .route("/oauth2/introspect", post(oauth::introspect))
        .route("/v1/users", post(handlers::register))
        .route("/.well-known/jwks.json", get(handlers::jwks))
        .route(
            "/.well-known/oauth-authorization-server",
            get(handlers::metadata),
        )
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .route("/metrics", get(handlers::metrics))
        .route(openapi::PATH, get(openapi::serve_document))
        .merge(pages::routes())
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), track_latency))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::Extension(Arc::new(proxies)))
        .layer(TraceLayer::new_for_http())
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
        ]));
    let router = match cors {
        Some(cors) => router
            .layer(cors)
            .layer(middleware::map_response(no_credentials_without_origin)),
        None => router,
    };
    let router = if tls {
        router.layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        ))
    } else {
        router
    };
    router
        .layer(middleware::map_response(error::json_errors))
        .with_state(state)
}

/// The CORS layer allows credentials on every preflight; without an allowed origin that
/// grants nothing, and it is not said at all.
async fn no_credentials_without_origin(mut r: Response) -> Response {
    if !r
        .headers()
        .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
    {
        r.headers_mut()
            .remove(header::ACCESS_CONTROL_ALLOW_CREDENTIALS);
    }
    r
}

/// CORS for the listed origins only, with credentials; `None` when none are listed.
fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| crate::config::parse_origin(o))
        .filter_map(|o| HeaderValue::from_str(&o).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_credentials(true)
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                header::HeaderName::from_static(cookies::CSRF_HEADER),
            ])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

/// The label value of anything outside a fixed set.
const OTHER: &str = "other";

/// The metric label of a method: one of the standard methods, else [`OTHER`].
fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => OTHER,
    }
}

async fn track_latency(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    // Label values from fixed sets only: a client must not be able to mint series.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| OTHER.to_owned(), |p| p.as_str().to_owned());
    let method = method_label(req.method());
    let response = next.run(req).await;
    let status = format!("{}xx", response.status().as_u16() / 100);
    s.service
        .metrics()
        .http_latency
        .get_or_create(&Route {
            route,
            method,
            status,
        })
        .observe(start.elapsed().as_secs_f64());
    response
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A setting is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Binding or creating files failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The store could not be opened.
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    /// Keys or the domain could not be set up.
    #[error("{0}")]
    Domain(#[from] DomainError),
}

/// Opens the store named by the configuration: the `database` URL, or a SQLite file in the
/// data directory. The data directory is made private (0700) and the SQLite file is
/// created 0600 before SQLite opens it (its `-wal` and `-shm` files take its mode).
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, StartError> {
    match config.database.as_deref() {
        None => {
            create_private_dir(&config.data_dir)?;
            let path = config.data_dir.join("wristband.db");
            private_database_file(&path, true)?;
            Ok(Arc::new(SqliteStore::open(&path).await?))
        }
        Some(url) if url.starts_with("sqlite:") => {
            if let Some(path) = sqlite_url_path(url) {
                private_database_file(&path, true)?;
            }
            Ok(Arc::new(SqliteStore::open_url(url).await?))
        }
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Arc::new(crate::store::PgStore::connect(url).await?))
        }
        Some(_) => Err(ConfigError(
            "database must be a sqlite:, postgres:// or postgresql:// URL".into(),
        )
        .into()),
    }
}

/// Opens the store for commands that only read (`user list`, `client list`, `keys list`):
/// nothing is created and no migration runs; SQLite is opened read-only and PostgreSQL
/// sessions are read-only. A schema older than this binary's is refused with a clear
/// error. The data directory and database file are still made private.
pub async fn open_store_read_only(config: &Config) -> Result<Arc<dyn Store>, StartError> {
    let missing = |path: &Path| {
        StartError::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "no database at {}: nothing is stored yet (start `wristband serve` or add a user)",
                path.display()
            ),
        ))
    };
    match config.database.as_deref() {
        None => {
            let path = config.data_dir.join("wristband.db");
            if !path.exists() {
                return Err(missing(&path));
            }
            create_private_dir(&config.data_dir)?;
            private_database_file(&path, false)?;
            Ok(Arc::new(SqliteStore::open_read_only(&path).await?))
        }
        Some(url) if url.starts_with("sqlite:") => {
            let path = sqlite_url_path(url);
            if let Some(path) = &path {
                if !path.exists() {
                    return Err(missing(path));
                }
                private_database_file(path, false)?;
            }
            Ok(Arc::new(SqliteStore::open_url_read_only(url).await?))
        }
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => Ok(
            Arc::new(crate::store::PgStore::connect_read_only(url).await?),
        ),
        Some(_) => Err(ConfigError(
            "database must be a sqlite:, postgres:// or postgresql:// URL".into(),
        )
        .into()),
    }
}

/// The file of a `sqlite:` URL, when it names one (not `:memory:`).
fn sqlite_url_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let file = rest.split('?').next().unwrap_or_default();
    (!file.is_empty() && !file.starts_with(":memory:")).then(|| std::path::PathBuf::from(file))
}

/// Opens the signing keys named by the configuration (master key, HS256 secret, rotation
/// schedule), running the schedule once. Used by the server and by `wristband keys`.
pub async fn open_keys(
    config: &Config,
    store: Arc<dyn Store>,
    now: i64,
) -> Result<(KeyManager, Vec<crate::domain::KeyEvent>), StartError> {
    let master = load_master_key(config)?;
    let hs256 = load_hs256_secret(config)?;
    let schedule = KeySchedule {
        alg: config.alg,
        rotate_every: (!config.key_rotation.is_zero()).then_some(config.key_rotation),
        prepublish: config.key_prepublish(),
        retire_for: config.key_retire_for(),
    };
    let template = PolicyTemplate {
        issuer: config.issuer(),
        audience: config.audience.clone(),
        max_lifetime: config.access_ttl,
    };
    let legacy = config.data_dir.join("keys");
    let (keys, events) =
        KeyManager::open(store, master, schedule, template, hs256, Some(&legacy), now).await?;
    Ok((keys, events))
}

/// The master key: from `WRISTBAND_MASTER_KEY`, the configured file, or `master.key` in
/// the data directory (created on first start, with a warning to move it).
pub fn load_master_key(config: &Config) -> Result<MasterKey, StartError> {
    if let Some(text) = &config.master_key {
        return Ok(MasterKey::from_text(text.expose())?);
    }
    if let Some(path) = &config.master_key_file {
        return Ok(MasterKey::read_file(path)?);
    }
    let path = config.data_dir.join("master.key");
    if path.exists() {
        return Ok(MasterKey::read_file(&path)?);
    }
    create_private_dir(&config.data_dir)?;
    let key = MasterKey::create_file(&path)?;
    tracing::warn!(
        file = %path.display(),
        "created a master key next to the database: anyone with both can read the signing \
         keys. Move it (--master-key-file or WRISTBAND_MASTER_KEY) and back it up apart \
         from the database"
    );
    Ok(key)
}

/// The HS256 secret in HS256 mode: `WRISTBAND_HS256_SECRET` or the configured file.
pub fn load_hs256_secret(config: &Config) -> Result<Option<SigningKey>, StartError> {
    let text = match (&config.hs256_secret, &config.hs256_secret_file) {
        (Some(s), _) => s.clone(),
        (None, Some(path)) => SecretString::new(
            std::fs::read_to_string(path)
                .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?,
        ),
        (None, None) => return Ok(None),
    };
    Ok(Some(crate::domain::keys::hs256_key_from_text(
        text.expose(),
    )?))
}

/// Creates a directory that only the owner can enter (0700), or tightens an existing one
/// that the group or others may use, with a warning. Refuses, with an error naming the
/// directory, when it cannot be tightened (e.g. it belongs to someone else).
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)?;
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return Ok(());
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!(
                "cannot restrict the data directory {} to its owner (mode {mode:o} to 0700):                  {e}; the database in it would hold password hashes and sessions readable by                  others. Fix its owner or mode, or choose another --data-dir",
                path.display()
            ),
        )
    })?;
    tracing::warn!(
        dir = %path.display(),
        "tightened the data directory from mode {mode:o} to 700: only its owner may read it"
    );
    Ok(())
}

/// Makes a SQLite database file private before SQLite opens it: created 0600 when
/// missing (if `create`), tightened to 0600 (with a warning) when the group or others may
/// read it; its `-wal` and `-shm` files too, when they exist. SQLite gives new `-wal` and
/// `-shm` files the mode of the database file.
pub fn private_database_file(path: &Path, create: bool) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if create && !path.exists() {
        // `create` without `truncate`: a file created meanwhile by another process is kept.
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
    }
    let mut names = vec![path.to_path_buf()];
    for suffix in ["-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        names.push(name.into());
    }
    for file in names {
        let Ok(meta) = std::fs::metadata(&file) else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 == 0 {
            continue;
        }
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "cannot restrict {} to its owner (mode {mode:o} to 0600): {e}",
                    file.display()
                ),
            )
        })?;
        tracing::warn!(
            file = %file.display(),
            "tightened a database file from mode {mode:o} to 600: only its owner may read it"
        );
    }
    Ok(())
}

/// A bound, ready-to-run auth service.
#[derive(Debug)]
pub struct App {
    listener: TcpListener,
    addr: SocketAddr,
    service: Arc<AuthService>,
    created_key: bool,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
}

impl App {
    /// Validates the configuration, binds the listener (port 0 picks a free port), opens the
    /// store (running migrations) and loads or creates the keys.
    pub async fn build(config: Config, clock: Arc<dyn Clock>) -> Result<App, StartError> {
        config.validate()?;
        let store = open_store(&config).await?;
        Self::build_with_store(config, store, clock).await
    }

    /// Like [`App::build`] with a store opened by the caller.
    pub async fn build_with_store(
        mut config: Config,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<App, StartError> {
        config.validate()?;
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(tls::server_config(cert, key)?),
            _ => None,
        };
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        if config.issuer.is_none() {
            let scheme = if tls.is_some() { "https" } else { "http" };
            config.issuer = Some(format!("{scheme}://{addr}"));
        }
        create_private_dir(&config.data_dir)?;
        let now = clock.now().as_i64();
        let (keys, events) = open_keys(&config, Arc::clone(&store), now).await?;
        let created_key = events.iter().any(|e| e.event == "key_activated");
        let metrics = Arc::new(Metrics::default());
        let service = Arc::new(AuthService::new(config, store, clock, keys, metrics)?);
        Ok(App {
            listener,
            addr,
            service,
            created_key,
            tls,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The domain service (for tests and the CLI).
    pub fn service(&self) -> &Arc<AuthService> {
        &self.service
    }

    /// True when this start created a new signing key.
    pub fn created_key(&self) -> bool {
        self.created_key
    }

    /// Serves until `shutdown` completes, then drains requests in flight. Raises the
    /// open-file limit first, and serves with the configured connection limits
    /// ([`wristband_serve`]).
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let service = self.service;
        let limits = service.config().serve_limits();
        let files = wristband_serve::raise_fd_limit().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
            wristband_serve::fd_limit()
        });
        tracing::info!(
            open_files = files,
            max_connections = limits.connection_cap(files),
            "connection limits"
        );
        // Housekeeping: drop revocation records and opaque tokens that no longer matter.
        let janitor = {
            let service = Arc::clone(&service);
            let mut stopping = service.stopping();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(PRUNE_EVERY) => {}
                        _ = stopping.changed() => return,
                    }
                    match service.prune().await {
                        Ok(n) if n > 0 => tracing::debug!(pruned = n, "pruned expired records"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "pruning failed"),
                    }
                }
            })
        };
        // Keys: run the rotation schedule and pick up changes made by the CLI or other
        // instances, well within the promised five seconds.
        let key_sync = {
            let service = Arc::clone(&service);
            let mut stopping = service.stopping();
            tokio::spawn(async move {
                let mut last_sync = tokio::time::Instant::now();
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(KEY_RELOAD_EVERY) => {}
                        _ = stopping.changed() => return,
                    }
                    let result = if last_sync.elapsed() >= KEY_SYNC_EVERY {
                        last_sync = tokio::time::Instant::now();
                        service.sync_keys().await.map(|_| ())
                    } else {
                        service.keys().reload().await.map(|_| ())
                    };
                    if let Err(e) = result {
                        tracing::warn!(error = %e, "key sync failed");
                    }
                }
            })
        };
        // Revocations recorded by other instances, pushed by the database when it can
        // (PostgreSQL's LISTEN/NOTIFY): wake the feed's streams at once instead of at
        // their next poll.
        let wakeups = service.store().revocation_wakeups().map(|mut rx| {
            let service = Arc::clone(&service);
            tokio::spawn(async move {
                while rx.recv().await.is_some() {
                    // The revocation may be a signing key's: stop signing with it now.
                    if let Err(e) = service.keys().reload().await {
                        tracing::warn!(error = %e, "key reload failed");
                    }
                    service.feed_changed();
                }
            })
        });
        let app = router(AppState {
            service: Arc::clone(&service),
        });
        let shutdown = async move {
            shutdown.await;
            // End the feed's streams, or the drain would wait for them forever.
            service.begin_shutdown();
        };
        let result = match self.tls {
            None => wristband_serve::serve(self.listener, app, limits, shutdown).await,
            Some(config) => {
                let listener = tls::TlsListener::new(self.listener, self.addr, config);
                wristband_serve::serve(listener, app, limits, shutdown).await
            }
        };
        janitor.abort();
        key_sync.abort();
        if let Some(w) = wakeups {
            w.abort();
        }
        result
    }
}
