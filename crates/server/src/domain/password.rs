//! Password policy and Argon2id hashing on a fixed pool of threads.

use std::sync::{mpsc, Arc, Mutex};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::oneshot;
use wristband_jose::SecretString;

use super::DomainError;
use crate::config::Argon2Config;

/// Shortest password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password, in bytes: bounds the hashing cost of hostile input.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Checks a new password: length, and a zxcvbn score of at least 2. The error says why.
pub fn check_policy(password: &str, username: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "password must be at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!(
            "password must be at most {MAX_PASSWORD_BYTES} bytes"
        ));
    }
    let entropy = zxcvbn::zxcvbn(password, &[username, "wristband"]);
    if (entropy.score() as u8) < 2 {
        let reason = entropy
            .feedback()
            .and_then(|f| f.warning().map(|w| w.to_string()))
            .unwrap_or_else(|| "this password is too easy to guess".to_owned());
        return Err(format!("password too weak: {reason}"));
    }
    Ok(())
}

/// The outcome of checking a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The password matched.
    pub ok: bool,
    /// The stored hash used other parameters and should be replaced.
    pub needs_rehash: bool,
}

/// A unit of hashing work for the pool.
type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of threads, one per permitted concurrent hash, taking jobs from one queue.
/// A thread that finishes a hash starts the next queued one at once, without a round trip
/// through the async runtime. The threads end when the last [`Passwords`] clone is dropped.
struct HashPool {
    jobs: mpsc::Sender<Job>,
}

impl HashPool {
    fn new(threads: usize) -> Result<Self, DomainError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("wristband-hash-{i}"))
                .spawn(move || loop {
                    // The guard is a temporary: the queue is unlocked while the job runs.
                    let job = match rx.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else { return };
                    // A panicking job drops its reply channel (the caller sees an error);
                    // the thread lives on.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                })
                .map_err(internal)?;
        }
        Ok(HashPool { jobs: tx })
    }

    fn submit(&self, job: Job) -> Result<(), DomainError> {
        self.jobs
            .send(job)
            .map_err(|_| internal("hash threads gone"))
    }
}

/// Argon2id hashing on a fixed pool of threads (one per core by default), so that a login
/// flood queues here instead of starving the threads that verify tokens.
#[derive(Clone)]
pub struct Passwords {
    argon: Argon2<'static>,
    params: Params,
    pool: Arc<HashPool>,
    /// A hash of a random password, checked for unknown users so that they cost the same.
    dummy_hash: Arc<str>,
    /// Argon2 working memory (m KiB each), reused across checks: allocating and faulting in
    /// 19 MiB per login cost about a fifth of the login's CPU time. At most one buffer per
    /// permit exists at once.
    blocks: Arc<std::sync::Mutex<Vec<Vec<Block>>>>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

fn internal(e: impl std::fmt::Display) -> DomainError {
    DomainError::internal(e.to_string())
}

fn salt() -> Result<SaltString, DomainError> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(internal)?;
    SaltString::encode_b64(&bytes).map_err(internal)
}

impl Passwords {
    /// A hasher with the given cost, allowing `concurrency` hashes at once.
    pub fn new(cfg: Argon2Config, concurrency: usize) -> Result<Self, DomainError> {
        let params =
            Params::new(cfg.memory_kib, cfg.iterations, cfg.parallelism, None).map_err(internal)?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let mut random = [0u8; 32];
        aws_lc_rs::rand::fill(&mut random).map_err(internal)?;
        let dummy_hash = argon
            .hash_password(&random, &salt()?)
            .map_err(internal)?
            .to_string();
        Ok(Passwords {
            argon,
            params,
            pool: Arc::new(HashPool::new(concurrency)?),
            dummy_hash: dummy_hash.into(),
            blocks: Arc::new(std::sync::Mutex::new(Vec::new())),
        })
    }

    /// Hashes a password as a PHC string.
    pub async fn hash(&self, password: SecretString) -> Result<String, DomainError> {
        let argon = self.argon.clone();
        let salt = salt()?;
        self.run(move || {
            argon
                .hash_password(password.expose().as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(internal)
        })
        .await?
    }

    /// Checks a password against a stored hash, or against the dummy hash when there is no
    /// user, so that both cases take the same time.
    pub async fn verify(
        &self,
        password: SecretString,
        stored: Option<String>,
    ) -> Result<Verdict, DomainError> {
        let argon = self.argon.clone();
        let params = self.params.clone();
        let pool = Arc::clone(&self.blocks);
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        self.run(move || {
            let Ok(parsed) = PasswordHash::new(&stored) else {
                return Verdict {
                    ok: false,
                    needs_rehash: false,
                };
            };
            let current = parsed.algorithm == argon2::ARGON2ID_IDENT
                && parsed.version == Some(Version::V0x13.into())
                && Params::try_from(&parsed).is_ok_and(|p| {
                    p.m_cost() == params.m_cost()
                        && p.t_cost() == params.t_cost()
                        && p.p_cost() == params.p_cost()
                });
            let matches = if current {
                verify_with_pool(
                    &argon,
                    &params,
                    &parsed,
                    password.expose().as_bytes(),
                    &pool,
                )
            } else {
                argon
                    .verify_password(password.expose().as_bytes(), &parsed)
                    .is_ok()
            };
            let ok = matches && known;
            Verdict {
                ok,
                needs_rehash: ok && !current,
            }
        })
        .await
    }

    /// Queues `f` on the hashing threads and waits for its result. A job whose caller has
    /// gone (the client disconnected while it was queued) is dropped without hashing.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, DomainError> {
        let (tx, rx) = oneshot::channel();
        self.pool.submit(Box::new(move || {
            if !tx.is_closed() {
                let _ = tx.send(f());
            }
        }))?;
        rx.await.map_err(internal)
    }
}

/// Checks `password` against a PHC hash made with our own parameters, computing into a
/// pooled block buffer and comparing the output in constant time.
fn verify_with_pool(
    argon: &Argon2<'static>,
    params: &Params,
    parsed: &PasswordHash<'_>,
    password: &[u8],
    pool: &std::sync::Mutex<Vec<Vec<Block>>>,
) -> bool {
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut blocks = pool
        .lock()
        .ok()
        .and_then(|mut p| p.pop())
        .unwrap_or_else(|| vec![Block::default(); params.block_count()]);
    let expected = expected.as_bytes();
    let mut out = vec![0u8; expected.len()];
    let computed = argon
        .hash_password_into_with_memory(password, salt, &mut out, &mut blocks[..])
        .is_ok();
    if let Ok(mut p) = pool.lock() {
        p.push(blocks);
    }
    computed && aws_lc_rs::constant_time::verify_slices_are_equal(&out, expected).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Argon2Config {
        Argon2Config {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        }
    }

    #[test]
    fn policy() {
        assert!(check_policy("short", "alice").is_err());
        assert!(check_policy("password", "alice")
            .unwrap_err()
            .contains("weak"));
        assert!(check_policy("alicealice", "alice").is_err());
        assert!(check_policy(&"x".repeat(1025), "alice").is_err());
        check_policy("correct horse battery staple", "alice").unwrap();
    }

    #[tokio::test]
    async fn hash_verify_and_rehash() {
        let p = Passwords::new(cheap(), 2).unwrap();
        let h = p.hash(SecretString::new("pw-123456".into())).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        let v = p
            .verify(SecretString::new("pw-123456".into()), Some(h.clone()))
            .await
            .unwrap();
        assert_eq!(
            v,
            Verdict {
                ok: true,
                needs_rehash: false
            }
        );
        let v = p
            .verify(SecretString::new("wrong".into()), Some(h.clone()))
            .await
            .unwrap();
        assert!(!v.ok);
        let v = p
            .verify(SecretString::new("pw-123456".into()), None)
            .await
            .unwrap();
        assert!(!v.ok, "unknown user never matches");
        let stronger = Passwords::new(
            Argon2Config {
                memory_kib: 128,
                ..cheap()
            },
            2,
        )
        .unwrap();
        let v = stronger
            .verify(SecretString::new("pw-123456".into()), Some(h))
            .await
            .unwrap();
        assert_eq!(
            v,
            Verdict {
                ok: true,
                needs_rehash: true
            }
        );
    }
}
