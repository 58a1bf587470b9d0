//! `wristband keys`: key generation, and the life cycle of the auth service's signing keys
//! (list, rotate, retire, revoke, export, import) on the same store as the server.

use std::fs::DirBuilder;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use wristband_jose::{Algorithm, KeySet, SigningKey};
use zeroize::Zeroizing;

use wristband_server::config::{Config, Overrides};
use wristband_server::domain::keys::rewrap_master_key;
use wristband_server::domain::keys::KeyExport;
use wristband_server::domain::{KeyEvent, KeyManager, MasterKey, RecordLifetime};
use wristband_server::startup::{load_master_key, open_keys, open_store_read_only};
use wristband_server::store::{KeyRecord, KeyState};

use crate::args::AlgArg;
use crate::keyfile::write_new_file;
use crate::settings::{current_thread_runtime, init_logging, StoreArgs};
use crate::Outcome;

/// The private key of an asymmetric pair, PKCS#8 PEM.
pub(crate) const PRIVATE_PEM: &str = "private.pem";
/// The public key, SPKI PEM.
pub(crate) const PUBLIC_PEM: &str = "public.pem";
/// The public key as a JWK.
pub(crate) const PUBLIC_JWK: &str = "public.jwk.json";
/// A JWKS holding the public key, ready to publish.
pub(crate) const JWKS: &str = "jwks.json";
/// The HS256 secret as a private JWK.
pub(crate) const SECRET_JWK: &str = "secret.jwk.json";

const SECRET_MODE: u32 = 0o600;
const PUBLIC_MODE: u32 = 0o644;

/// `wristband keys ...`: the store flags, which may come before or after the subcommand.
#[derive(Debug, Args)]
pub(crate) struct KeysArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(subcommand)]
    command: KeysCommand,
}

/// The subcommands of `wristband keys`.
#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Generate a signing key and write it to a directory.
    ///
    /// Asymmetric keys are written as `private.pem` (PKCS#8, mode 0600), `public.pem`
    /// (SPKI), `public.jwk.json` and `jwks.json` (the JWKS to publish). An HS256 secret is
    /// written as `secret.jwk.json` (mode 0600) only: it has no public half to publish.
    /// The key id (`kid`) is the RFC 7638 thumbprint of the public key.
    Generate(GenerateArgs),
    /// List the auth service's signing keys and their states (read-only: the rotation
    /// schedule is left to the server).
    List,
    /// Publish a new signing key; it signs after the pre-publication time (or at once with
    /// --immediate). A running server picks the change up within 5 seconds.
    Rotate(RotateArgs),
    /// Stop signing with a key. The current key is replaced at once; a retired key stays
    /// published until its tokens have expired.
    Retire(KidArgs),
    /// Emergency: remove a key from the JWKS at once and tell every verifier (through the
    /// revocation feed) to refuse its tokens. A revoked current key is replaced at once.
    Revoke(KidArgs),
    /// Write a backup of the signing keys. Private keys stay encrypted under the master key:
    /// restoring needs the same master key.
    Export(ExportArgs),
    /// Restore signing keys from a backup made with `keys export`.
    Import(ImportArgs),
    /// Re-encrypt every stored key and secret under a new master key. Stop every auth
    /// instance first, then start them all with the new key.
    Rewrap(RewrapArgs),
}

/// Arguments of `wristband keys rewrap`.
#[derive(Debug, Args)]
pub(crate) struct RewrapArgs {
    /// File with the new master key (32 random bytes, base64url).
    #[arg(long, value_name = "FILE")]
    new_master_key_file: PathBuf,
}

/// Arguments of `wristband keys rotate`.
#[derive(Debug, Args)]
pub(crate) struct RotateArgs {
    /// Algorithm of the new key (to migrate, e.g. from RS256 to EdDSA) [default: the
    /// configured alg].
    #[arg(long, value_enum)]
    alg: Option<AlgArg>,
    /// Sign with the new key now instead of after the pre-publication time.
    #[arg(long)]
    immediate: bool,
}

/// A key id on the store.
#[derive(Debug, Args)]
pub(crate) struct KidArgs {
    /// The key id. Key ids are base64url and may begin with `-`, which is taken as part of
    /// the id, not as a flag.
    #[arg(allow_hyphen_values = true)]
    kid: String,
}

/// Arguments of `wristband keys export`.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// Backup file to create (mode 0600).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

/// Arguments of `wristband keys import`.
#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// Backup file written by `keys export`.
    file: PathBuf,
}

/// Arguments of `wristband keys generate`.
#[derive(Debug, Args)]
pub(crate) struct GenerateArgs {
    /// Signature algorithm of the new key.
    #[arg(long, value_enum)]
    alg: AlgArg,
    /// Directory for the key files (created with mode 0700 when missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// RSA modulus size, for RS256 and PS256.
    #[arg(long, value_name = "BITS", default_value = "2048",
          value_parser = ["2048", "3072", "4096"])]
    rsa_bits: String,
    /// Replace key files that already exist.
    #[arg(long)]
    force: bool,
}

/// Runs a `keys` subcommand.
pub(crate) fn run(args: KeysArgs, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let store = &args.store;
    match args.command {
        KeysCommand::Generate(args) => generate(&args, out),
        KeysCommand::List => list_read_only(store, out),
        KeysCommand::Rotate(a) => {
            let alg = a.alg.map(Algorithm::from);
            with_keys(store, false, out, move |k, _, out| {
                Box::pin(async move {
                    let events = k.rotate(alg, a.immediate, crate::args::now_secs()).await?;
                    print_events(&events, out)?;
                    list(k, out).await
                })
            })
        }
        KeysCommand::Retire(a) => {
            let kid = a.kid.clone();
            with_keys(store, false, out, move |k, _, out| {
                Box::pin(async move {
                    print_events(&k.retire(&kid, crate::args::now_secs()).await?, out)?;
                    list(k, out).await
                })
            })
        }
        KeysCommand::Revoke(a) => {
            let kid = a.kid.clone();
            with_keys(store, false, out, move |k, config, out| {
                Box::pin(async move {
                    let life = RecordLifetime {
                        access_ttl_secs: wristband_jose::secs_i64(config.access_ttl),
                    };
                    print_events(
                        &k.revoke(&kid, life.span(), crate::args::now_secs()).await?,
                        out,
                    )?;
                    writeln!(
                        out,
                        "verifiers following the revocation feed refuse its tokens at once; \
                         the others at their next JWKS refresh"
                    )?;
                    list(k, out).await
                })
            })
        }
        KeysCommand::Export(a) => {
            let path = a.out.clone();
            with_keys(store, false, out, move |k, _, out| {
                Box::pin(async move {
                    let backup = k.export().await?;
                    let mut bytes = Zeroizing::new(serde_json::to_vec_pretty(&backup)?);
                    bytes.push(b'\n');
                    write_new_file(&path, &bytes, SECRET_MODE, false)?;
                    writeln!(
                        out,
                        "wrote {} key(s) to {}; they stay encrypted under the master key, \
                         so keep a copy of the master key apart from this file",
                        backup.keys.len(),
                        path.display()
                    )?;
                    Ok(())
                })
            })
        }
        KeysCommand::Rewrap(a) => rewrap(store, &a, out),
        KeysCommand::Import(a) => {
            let path = a.file.clone();
            with_keys(store, true, out, move |k, _, out| {
                Box::pin(async move {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    let backup: KeyExport = serde_json::from_str(&text)
                        .with_context(|| format!("{} is not a key backup", path.display()))?;
                    let kids = k.import(&backup, crate::args::now_secs()).await?;
                    writeln!(out, "imported {} key(s)", kids.len())?;
                    list(k, out).await
                })
            })
        }
    }
}

fn rewrap(store: &StoreArgs, args: &RewrapArgs, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let config = store.load(Overrides::default())?;
    init_logging();
    let new = MasterKey::read_file(&args.new_master_key_file)?;
    if config.master_key.is_none()
        && config.master_key_file.is_none()
        && !config.data_dir.join("master.key").exists()
    {
        anyhow::bail!(
            "no current master key: give it with --master-key-file or WRISTBAND_MASTER_KEY"
        );
    }
    let old = load_master_key(&config).context("the current master key")?;
    current_thread_runtime()?.block_on(async {
        let db = crate::settings::open_writable_store(&config, false)
            .await
            .context("opening the store")?;
        let (keys, secrets) = rewrap_master_key(&*db, &old, &new).await?;
        writeln!(
            out,
            "re-sealed {keys} key(s) and {secrets} secret(s) under the new master key; \
             start every instance with it (--master-key-file {})",
            args.new_master_key_file.display()
        )?;
        anyhow::Ok(())
    })?;
    Ok(Outcome::Success)
}

type KeysFuture<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + 'a>>;

/// Opens the store and its keys (running the rotation schedule once), then runs `f`. Only
/// a command that may start a new store (`create`: restoring a backup) creates a missing
/// one, and says so.
fn with_keys<F>(
    store: &StoreArgs,
    create: bool,
    out: &mut dyn Write,
    f: F,
) -> anyhow::Result<Outcome>
where
    F: for<'a> FnOnce(&'a KeyManager, &'a Config, &'a mut dyn Write) -> KeysFuture<'a>,
{
    let config = store.load(Overrides::default())?;
    init_logging();
    let rt = current_thread_runtime()?;
    rt.block_on(async {
        let db = crate::settings::open_writable_store(&config, create)
            .await
            .context("opening the store")?;
        let (keys, events) = open_keys(&config, db, crate::args::now_secs())
            .await
            .context("opening the signing keys")?;
        print_events(&events, out)?;
        f(&keys, &config, out).await
    })?;
    Ok(Outcome::Success)
}

fn print_events(events: &[KeyEvent], out: &mut dyn Write) -> anyhow::Result<()> {
    for e in events {
        writeln!(out, "{}: {} ({})", e.kind.verb(), e.kid, e.alg)?;
    }
    Ok(())
}

/// `keys list`: the stored keys, read without writing (no migrations, no rotation, no
/// master key created).
fn list_read_only(store: &StoreArgs, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let config = store.load(Overrides::default())?;
    init_logging();
    current_thread_runtime()?.block_on(async {
        let db = open_store_read_only(&config)
            .await
            .context("opening the store")?;
        print_keys(db.list_keys().await?, out)
    })?;
    Ok(Outcome::Success)
}

async fn list(keys: &KeyManager, out: &mut dyn Write) -> anyhow::Result<()> {
    print_keys(keys.list().await?, out)
}

fn print_keys(rows: Vec<KeyRecord>, out: &mut dyn Write) -> anyhow::Result<()> {
    writeln!(out, "{:<44} {:<6} {:<8} since", "kid", "alg", "state")?;
    for r in rows {
        let (since, note) = match r.state {
            KeyState::Next => (r.created_at, format!("  signs from {}", ts(r.activates_at))),
            KeyState::Current => (r.activated_at.unwrap_or(r.created_at), String::new()),
            KeyState::Retired => (
                r.retired_at.unwrap_or(r.created_at),
                format!("  published until {}", ts(r.removes_at)),
            ),
            KeyState::Removed => (r.removes_at.unwrap_or(r.created_at), String::new()),
            KeyState::Revoked => (r.revoked_at.unwrap_or(r.created_at), String::new()),
        };
        writeln!(
            out,
            "{:<44} {:<6} {:<8} {}{note}",
            r.kid,
            r.alg.as_str(),
            r.state.as_str(),
            ts(Some(since))
        )?;
    }
    Ok(())
}

fn ts(t: Option<i64>) -> String {
    t.and_then(|t| u64::try_from(t).ok())
        .map_or_else(|| "-".into(), crate::timefmt::rfc3339)
}

/// A file to write: its name in the output directory, contents and mode.
struct KeyFile {
    name: &'static str,
    what: &'static str,
    contents: Zeroizing<Vec<u8>>,
    mode: u32,
}

fn generate(args: &GenerateArgs, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let alg = Algorithm::from(args.alg);
    let bits: usize = args.rsa_bits.parse()?;
    let key = SigningKey::generate_with_rsa_bits(alg, bits).context("generating the key")?;
    let files = key_files(&key)?;

    let paths: Vec<PathBuf> = files.iter().map(|f| args.out.join(f.name)).collect();
    if !args.force {
        let existing: Vec<String> = paths
            .iter()
            .filter(|p| p.exists())
            .map(|p| p.display().to_string())
            .collect();
        if !existing.is_empty() {
            bail!(
                "refusing to overwrite {} (pass --force to replace)",
                existing.join(", ")
            );
        }
    }
    create_dir(&args.out)?;
    for (file, path) in files.iter().zip(&paths) {
        write_new_file(path, &file.contents, file.mode, args.force)?;
    }

    writeln!(out, "alg: {alg}")?;
    writeln!(out, "kid: {}", key.kid())?;
    for (file, path) in files.iter().zip(&paths) {
        writeln!(out, "{}: {}", file.what, path.display())?;
    }
    if alg.is_symmetric() {
        writeln!(
            out,
            "No public.jwk.json or jwks.json: an HS256 key is a shared secret with no public \
             half. Anyone who can verify with it can also sign, so it must never be \
             published; give it only to the services that verify, through a secret store."
        )?;
    }
    Ok(Outcome::Success)
}

fn key_files(key: &SigningKey) -> anyhow::Result<Vec<KeyFile>> {
    if key.algorithm().is_symmetric() {
        let jwk = key.to_private_jwk()?;
        return Ok(vec![KeyFile {
            name: SECRET_JWK,
            what: "secret (private JWK, mode 0600)",
            contents: json(&jwk)?,
            mode: SECRET_MODE,
        }]);
    }
    let public = key.verifying_key();
    let jwk = public
        .to_jwk()
        .context("the key has no public JWK")?
        .clone();
    let jwks = KeySet::from_keys([public.clone()])?.to_public_jwks();
    let pem = key.to_pem()?;
    Ok(vec![
        KeyFile {
            name: PRIVATE_PEM,
            what: "private key (PKCS#8 PEM, mode 0600)",
            contents: Zeroizing::new(pem.as_bytes().to_vec()),
            mode: SECRET_MODE,
        },
        KeyFile {
            name: PUBLIC_PEM,
            what: "public key (SPKI PEM)",
            contents: Zeroizing::new(public.to_public_pem()?.into_bytes()),
            mode: PUBLIC_MODE,
        },
        KeyFile {
            name: PUBLIC_JWK,
            what: "public JWK",
            contents: json(&jwk)?,
            mode: PUBLIC_MODE,
        },
        KeyFile {
            name: JWKS,
            what: "JWKS",
            contents: json(&jwks)?,
            mode: PUBLIC_MODE,
        },
    ])
}

fn create_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

/// Pretty JSON plus a final newline, zeroised on drop (it may be a private JWK).
fn json<T: serde::Serialize>(value: &T) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let mut bytes = Zeroizing::new(serde_json::to_vec_pretty(value)?);
    bytes.push(b'\n');
    Ok(bytes)
}
