//! Start-up: everything between a [`Config`] and a serving auth service, for `serve` and
//! for every admin command of the CLI.
//!
//! - [`open_store`] and [`open_store_read_only`]: the store the configuration names, with
//!   its data directory and files made private.
//! - [`open_keys`], [`load_master_key`], [`load_hs256_secret`]: the signing keys and the
//!   secrets that protect them.
//! - [`App`]: binds the listener, builds the domain service and the router's state, serves
//!   (over TLS when configured) with the background tasks, and shuts down.
//!
//! Start-up sits above [`crate::http`], [`crate::domain`] and [`crate::store`]; none of
//! them imports it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use wristband_jose::Clock;

use crate::config::{Config, ConfigError};
use crate::domain::{AuthService, DomainError, KeyEventKind};
use crate::http::{router, AppState};
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

mod keys;
mod store;
mod tls;

pub use keys::{load_hs256_secret, load_master_key, open_keys};
pub use store::{
    create_private_dir, new_store_path, open_existing_store, open_store, open_store_read_only,
    private_database_file,
};

/// How often expired revocation records and opaque tokens are dropped.
pub const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);
/// How often the server runs the key schedule.
pub const KEY_SYNC_EVERY: std::time::Duration = std::time::Duration::from_secs(2);
/// How often the server reloads keys changed elsewhere (the CLI, other instances). Shorter
/// than the feed's poll, so that after an emergency revocation made elsewhere this
/// instance has stopped signing with the key before verifiers start refusing it.
pub const KEY_RELOAD_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A setting is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Creating or reading files failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The listening address cannot be bound (in use, or not this machine's).
    #[error(
        "cannot listen on {addr}: {source}; is another server using it? \
         Choose another address with --listen"
    )]
    Bind {
        /// The address of the `listen` setting.
        addr: SocketAddr,
        /// Why it cannot be bound.
        source: std::io::Error,
    },
    /// Another `wristband serve` already serves this SQLite database.
    #[error(
        "another wristband serve is using {} (it holds {}): one SQLite database has one auth \
         service; stop the other one, choose another --data-dir, or share a PostgreSQL \
         database between instances", database.display(), lock.display()
    )]
    Locked {
        /// The database file.
        database: std::path::PathBuf,
        /// The lock file.
        lock: std::path::PathBuf,
    },
    /// The store could not be opened.
    #[error("cannot open the store")]
    Store(#[from] StoreError),
    /// Keys or the domain could not be set up.
    #[error(transparent)]
    Domain(#[from] DomainError),
}

/// A bound, ready-to-run auth service.
#[derive(Debug)]
pub struct App {
    listener: TcpListener,
    addr: SocketAddr,
    service: Arc<AuthService>,
    created_key: bool,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    /// The SQLite database's lock, held while this service runs ([`store::lock_database`]).
    _lock: Option<std::fs::File>,
}

impl App {
    /// Validates the configuration, binds the listener (port 0 picks a free port), opens the
    /// store (running migrations) and loads or creates the keys.
    ///
    /// The address is bound before anything is created, so that a port in use leaves no
    /// data directory behind. A SQLite database is locked for as long as the service runs:
    /// a second `serve` on the same file is refused ([`StartError::Locked`]).
    pub async fn build(config: Config, clock: Arc<dyn Clock>) -> Result<App, StartError> {
        config.validate()?;
        let listener = bind(config.listen).await?;
        let lock = store::lock_database(&config)?;
        let store = open_store(&config).await?;
        let mut app = Self::assemble(config, listener, store, clock).await?;
        app._lock = lock;
        Ok(app)
    }

    /// Like [`App::build`] with a store opened by the caller (no lock is taken).
    pub async fn build_with_store(
        config: Config,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<App, StartError> {
        config.validate()?;
        let listener = bind(config.listen).await?;
        Self::assemble(config, listener, store, clock).await
    }

    async fn assemble(
        mut config: Config,
        listener: TcpListener,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<App, StartError> {
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(tls::server_config(cert, key)?),
            _ => None,
        };
        let addr = listener.local_addr()?;
        if config.issuer.is_none() {
            let scheme = if tls.is_some() { "https" } else { "http" };
            config.issuer = Some(format!("{scheme}://{addr}"));
        }
        create_private_dir(&config.data_dir)?;
        let now = clock.now().as_i64();
        let (keys, events) = open_keys(&config, Arc::clone(&store), now).await?;
        let created_key = events.iter().any(|e| e.kind == KeyEventKind::Activated);
        let metrics = Arc::new(Metrics::default());
        let service = Arc::new(AuthService::new(config, store, clock, keys, metrics)?);
        Ok(App {
            listener,
            addr,
            service,
            created_key,
            tls,
            _lock: None,
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
        let janitor = spawn_janitor(Arc::clone(&service));
        let key_sync = spawn_key_sync(Arc::clone(&service));
        let wakeups = spawn_wakeups(&service);
        let tail = spawn_feed_tail(&service);
        let backchannel = spawn_backchannel(&service);
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
        tail.abort();
        for task in backchannel {
            task.abort();
        }
        if let Some(w) = wakeups {
            w.abort();
        }
        result
    }
}

/// Binds the listening address, naming it when that fails.
async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

/// Housekeeping: drops revocation records and opaque tokens that no longer matter, every
/// [`PRUNE_EVERY`], until the service stops.
fn spawn_janitor(service: Arc<AuthService>) -> JoinHandle<()> {
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
}

/// Keys: runs the rotation schedule every [`KEY_SYNC_EVERY`] and picks up changes made by
/// the CLI or other instances every [`KEY_RELOAD_EVERY`], well within the promised five
/// seconds.
fn spawn_key_sync(service: Arc<AuthService>) -> JoinHandle<()> {
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
}

/// The revocation feed's one tail ([`AuthService::run_feed_tail`]): reads new records once
/// for every stream of this instance, until the service stops.
fn spawn_feed_tail(service: &Arc<AuthService>) -> JoinHandle<()> {
    let service = Arc::clone(service);
    tokio::spawn(async move { service.run_feed_tail().await })
}

/// Back-channel logout: the follower of the revocation feed that queues logout tokens, and
/// the worker that delivers them ([`crate::domain::oidc::backchannel`]).
fn spawn_backchannel(service: &Arc<AuthService>) -> [JoinHandle<()>; 2] {
    let follower = Arc::clone(service);
    let worker = Arc::clone(service);
    [
        tokio::spawn(async move { follower.run_backchannel_follower().await }),
        tokio::spawn(async move { worker.run_backchannel_worker().await }),
    ]
}

/// Revocations recorded by other instances, pushed by the database when it can
/// (PostgreSQL's LISTEN/NOTIFY): wakes the feed's tail at once instead of at its next poll.
/// `None` when the store pushes nothing.
fn spawn_wakeups(service: &Arc<AuthService>) -> Option<JoinHandle<()>> {
    let mut rx = service.store().revocation_wakeups()?;
    let service = Arc::clone(service);
    Some(tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // The revocation may be a signing key's: stop signing with it now.
            if let Err(e) = service.keys().reload().await {
                tracing::warn!(error = %e, "key reload failed");
            }
            service.feed_changed();
        }
    }))
}
