//! Key files: reading private keys (PKCS#8 PEM or private JWK) and public keys (PEM, JWK
//! or JWKS), and writing files that hold secrets with mode 0600 from the start.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{anyhow, bail, Context};
use serde_json::Value;
use wristband_jose::{Algorithm, Jwk, Jwks, KeySet, SigningKey, VerifyingKey};
use zeroize::Zeroizing;

/// Key files are small; anything larger is not a key.
const MAX_KEY_FILE_BYTES: u64 = 1024 * 1024;

/// The algorithms tried, in order, for a PEM key when none is named: an RSA key is taken
/// as RS256 unless `--alg PS256` says otherwise.
const PEM_GUESSES: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

/// A key file's contents, zeroised on drop because it may hold private material.
fn read_key_file(path: &Path) -> anyhow::Result<Zeroizing<String>> {
    let file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut text = Zeroizing::new(String::new());
    file.take(MAX_KEY_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("reading {}", path.display()))?;
    if text.len() as u64 > MAX_KEY_FILE_BYTES {
        bail!("{} is too large to be a key file", path.display());
    }
    Ok(text)
}

/// The label of the first PEM block (`PRIVATE KEY`, `PUBLIC KEY`, ...), if the text is PEM.
fn pem_label(text: &str) -> Option<&str> {
    let rest = text.trim_start().strip_prefix("-----BEGIN ")?;
    rest.split_once("-----").map(|(label, _)| label)
}

fn is_private_label(label: &str) -> bool {
    matches!(label, "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY")
}

fn is_public_label(label: &str) -> bool {
    matches!(label, "PUBLIC KEY" | "RSA PUBLIC KEY")
}

fn parse_jwk(text: &str, path: &Path) -> anyhow::Result<Jwk> {
    serde_json::from_str(text).with_context(|| format!("{} is not a JWK", path.display()))
}

/// Fills in `alg` on an RSA JWK that has none: RS256, or `alg` when one was asked for.
fn with_rsa_alg(mut jwk: Jwk, alg: Option<Algorithm>) -> Jwk {
    if jwk.alg.is_none() && jwk.kty == "RSA" {
        jwk.alg = Some(alg.unwrap_or(Algorithm::RS256).as_str().to_owned());
    }
    jwk
}

/// Reads a private key: PKCS#8 PEM (PKCS#1 and SEC 1 too) or a private JWK, such as the
/// HS256 secret file written by `keys generate`.
///
/// `alg` picks RS256 or PS256 for an RSA key (default RS256); for other keys it must
/// match the key when given.
pub(crate) fn load_signing_key(path: &Path, alg: Option<Algorithm>) -> anyhow::Result<SigningKey> {
    let text = read_key_file(path)?;
    let key = if let Some(label) = pem_label(&text) {
        if is_public_label(label) {
            bail!(
                "{} holds a public key; signing needs the private key",
                path.display()
            );
        }
        if !is_private_label(label) {
            bail!("{}: unsupported PEM block `{label}`", path.display());
        }
        signing_key_from_pem(&text, alg)
            .with_context(|| format!("{} is not a usable private key", path.display()))?
    } else {
        let jwk = parse_jwk(&text, path)?;
        if !jwk.has_private_material() {
            bail!(
                "{} holds a public JWK; signing needs the private key",
                path.display()
            );
        }
        SigningKey::from_jwk(&with_rsa_alg(jwk, alg))
            .with_context(|| format!("{} is not a usable private JWK", path.display()))?
    };
    if let Some(alg) = alg {
        if key.algorithm() != alg {
            bail!("{} is a {} key, not {alg}", path.display(), key.algorithm());
        }
    }
    Ok(key)
}

fn signing_key_from_pem(text: &str, alg: Option<Algorithm>) -> anyhow::Result<SigningKey> {
    if let Some(alg) = alg {
        return Ok(SigningKey::from_pem(alg, text)?);
    }
    PEM_GUESSES
        .iter()
        .find_map(|&alg| SigningKey::from_pem(alg, text).ok())
        .ok_or_else(|| anyhow!("not an RSA (2048 to 4096 bits), P-256 or Ed25519 private key"))
}

fn verifying_key_from_public_pem(text: &str, rsa_alg: Algorithm) -> anyhow::Result<VerifyingKey> {
    [rsa_alg, Algorithm::ES256, Algorithm::EdDSA]
        .iter()
        .find_map(|&alg| VerifyingKey::from_public_pem(alg, text).ok())
        .ok_or_else(|| anyhow!("not an RSA (2048 to 4096 bits), P-256 or Ed25519 public key"))
}

/// The keys in a file given to `token verify --key`: a public PEM, a public JWK, a JWKS,
/// or a private key or HS256 secret file (whose public half is used).
///
/// `rsa_alg` is the algorithm an RSA key is loaded for when the file does not say.
pub(crate) fn load_verifying_keys(path: &Path, rsa_alg: Algorithm) -> anyhow::Result<KeySet> {
    let text = read_key_file(path)?;
    let context = || format!("{} is not a usable key", path.display());
    let key = match pem_label(&text) {
        Some(label) if is_public_label(label) => {
            verifying_key_from_public_pem(&text, rsa_alg).with_context(context)?
        }
        Some(label) if is_private_label(label) => signing_key_from_pem(&text, Some(rsa_alg))
            .or_else(|_| signing_key_from_pem(&text, None))
            .with_context(context)?
            .verifying_key()
            .clone(),
        Some(label) => bail!("{}: unsupported PEM block `{label}`", path.display()),
        None => {
            let value: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is neither PEM nor JSON", path.display()))?;
            if value.get("keys").is_some() {
                return keyset_from_jwks(text.as_bytes(), &path.display().to_string());
            }
            let jwk = with_rsa_alg(parse_jwk(&text, path)?, Some(rsa_alg));
            if jwk.has_private_material() && jwk.kty != "oct" {
                SigningKey::from_jwk(&jwk)
                    .with_context(context)?
                    .verifying_key()
                    .clone()
            } else {
                VerifyingKey::from_jwk(&jwk).with_context(context)?
            }
        }
    };
    Ok(KeySet::from_keys([key])?)
}

/// Loads the usable keys of a JWKS document; entries that are skipped are reported on
/// stderr. Fails when no key is usable.
pub(crate) fn keyset_from_jwks(bytes: &[u8], origin: &str) -> anyhow::Result<KeySet> {
    let jwks = Jwks::from_slice(bytes).with_context(|| format!("{origin} is not a JWKS"))?;
    let (keys, skipped) = KeySet::from_jwks(&jwks);
    let mut err = io::stderr();
    for s in &skipped {
        // Diagnostics only: a closed stderr must not stop the command.
        let _ = writeln!(
            err,
            "warning: skipped JWKS key {}: {}",
            s.kid.as_deref().unwrap_or("(no kid)"),
            s.error.kind()
        );
    }
    if keys.is_empty() {
        bail!("{origin} holds no usable key");
    }
    Ok(keys)
}

/// Writes `contents` to `path`, creating the file with `mode` (so that a secret is never
/// readable by others, not even for a moment).
///
/// Without `force` an existing file is an error. With `force` the new contents are
/// written to a fresh temporary file in the same directory and renamed over the old one,
/// so the old file's permissions are not inherited.
pub(crate) fn write_new_file(
    path: &Path,
    contents: &[u8],
    mode: u32,
    force: bool,
) -> anyhow::Result<()> {
    let create = |p: &Path| -> io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(p)?;
        f.write_all(contents)?;
        f.sync_all()
    };
    if !force {
        return create(path).with_context(|| format!("writing {}", path.display()));
    }
    let name = path
        .file_name()
        .ok_or_else(|| anyhow!("{} is not a file path", path.display()))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", tmp.display())),
    }
    create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_labels() {
        assert_eq!(
            pem_label("\n-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
            Some("PRIVATE KEY")
        );
        assert_eq!(pem_label("{\"kty\":\"oct\"}"), None);
        assert!(is_private_label("EC PRIVATE KEY") && !is_private_label("PUBLIC KEY"));
        assert!(is_public_label("RSA PUBLIC KEY") && !is_public_label("CERTIFICATE"));
    }

    #[test]
    fn rsa_jwk_without_alg_gets_the_requested_one() {
        let jwk = Jwk {
            kty: "RSA".into(),
            ..Jwk::default()
        };
        let got = with_rsa_alg(jwk.clone(), Some(Algorithm::PS256));
        assert_eq!(got.alg.as_deref(), Some("PS256"));
        assert_eq!(with_rsa_alg(jwk, None).alg.as_deref(), Some("RS256"));
        let ec = Jwk {
            kty: "EC".into(),
            ..Jwk::default()
        };
        assert_eq!(with_rsa_alg(ec, None).alg, None);
    }
}
