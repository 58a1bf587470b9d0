//! Opening the store named by the configuration, and the private files and directory
//! that hold it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::StartError;
use crate::config::{Config, ConfigError};
use crate::store::{SqliteStore, Store};

/// Opens the store named by the configuration: the `database` URL, or a SQLite file in the
/// data directory. The data directory is made private (0700) and the SQLite file is
/// created 0600 before SQLite opens it (its `-wal` and `-shm` files take its mode).
///
/// A new SQLite database is logged (`created a new store`); callers that must not create
/// one use [`open_existing_store`], and callers that tell a user ask [`new_store_path`]
/// first.
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, StartError> {
    if let Some(path) = new_store_path(config) {
        tracing::info!(path = %path.display(), "created a new store");
    }
    match config.database.as_deref() {
        None => {
            create_private_dir(&config.data_dir)?;
            let path = config.data_dir.join(DATABASE_FILE);
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
        Some(_) => Err(ConfigError::new(
            "database must be a sqlite:, postgres:// or postgresql:// URL",
        )
        .into()),
    }
}

/// The SQLite file in the data directory.
const DATABASE_FILE: &str = "wristband.db";

/// The SQLite database file the configuration names, if it names one.
fn sqlite_path(config: &Config) -> Option<PathBuf> {
    match config.database.as_deref() {
        None => Some(config.data_dir.join(DATABASE_FILE)),
        Some(url) if url.starts_with("sqlite:") => sqlite_url_path(url),
        Some(_) => None,
    }
}

/// The SQLite database that opening the store would create: `Some(path)` when the
/// configuration names a SQLite file that does not exist yet.
pub fn new_store_path(config: &Config) -> Option<PathBuf> {
    sqlite_path(config).filter(|p| !p.exists())
}

/// Like [`open_store`], for commands that change an existing store: a SQLite database that
/// does not exist is refused rather than created (a mistyped `--data-dir` would otherwise
/// make an empty one).
pub async fn open_existing_store(config: &Config) -> Result<Arc<dyn Store>, StartError> {
    if let Some(path) = new_store_path(config) {
        return Err(missing_database(&path));
    }
    open_store(config).await
}

fn missing_database(path: &Path) -> StartError {
    StartError::Io(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!(
            "no database at {}: nothing is stored yet (check --data-dir, or start \
             `wristband serve` or add a user first)",
            path.display()
        ),
    ))
}

/// Locks the SQLite database the configuration names, for a running `serve`: the lock
/// file beside it (`<database>.lock`) is held with an exclusive advisory lock until the
/// returned file is dropped. `None` for PostgreSQL, which several instances share.
pub(super) fn lock_database(config: &Config) -> Result<Option<std::fs::File>, StartError> {
    use std::os::unix::fs::OpenOptionsExt;
    let Some(database) = sqlite_path(config) else {
        return Ok(None);
    };
    if config.database.is_none() {
        create_private_dir(&config.data_dir)?;
    }
    let mut lock = database.as_os_str().to_owned();
    lock.push(".lock");
    let lock = PathBuf::from(lock);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&lock)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Err(StartError::Locked { database, lock }),
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

/// Opens the store for commands that only read (`user list`, `client list`, `keys list`):
/// nothing is created and no migration runs; SQLite is opened read-only and PostgreSQL
/// sessions are read-only. A schema older than this binary's is refused with a clear
/// error. The data directory and database file are still made private.
pub async fn open_store_read_only(config: &Config) -> Result<Arc<dyn Store>, StartError> {
    let missing = missing_database;
    match config.database.as_deref() {
        None => {
            let path = config.data_dir.join(DATABASE_FILE);
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
        Some(_) => Err(ConfigError::new(
            "database must be a sqlite:, postgres:// or postgresql:// URL",
        )
        .into()),
    }
}

/// The file of a `sqlite:` URL, when it names one (not `:memory:`).
fn sqlite_url_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let file = rest.split('?').next().unwrap_or_default();
    (!file.is_empty() && !file.starts_with(":memory:")).then(|| PathBuf::from(file))
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
                "cannot restrict the data directory {} to its owner (mode {mode:o} to 0700): \
                 {e}; the database in it would hold password hashes and sessions readable by \
                 others. Fix its owner or mode, or choose another --data-dir",
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
