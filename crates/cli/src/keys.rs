//! `wristband keys`: key generation.

use std::fs::DirBuilder;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use wristband_jose::{Algorithm, KeySet, SigningKey};
use zeroize::Zeroizing;

use crate::args::AlgArg;
use crate::keyfile::write_new_file;
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

/// `wristband keys ...`
#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Generate a signing key and write it to a directory.
    ///
    /// Asymmetric keys are written as `private.pem` (PKCS#8, mode 0600), `public.pem`
    /// (SPKI), `public.jwk.json` and `jwks.json` (the JWKS to publish). An HS256 secret is
    /// written as `secret.jwk.json` (mode 0600) only: it has no public half to publish.
    /// The key id (`kid`) is the RFC 7638 thumbprint of the public key.
    Generate(GenerateArgs),
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
pub(crate) fn run(cmd: KeysCommand, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    match cmd {
        KeysCommand::Generate(args) => generate(&args, out),
    }
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
