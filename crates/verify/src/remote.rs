//! A key set fetched from a JWKS URL: start-up with retries, background refresh, refetch
//! on an unknown `kid` (single-flight, at most once per cooldown), and last-good-keys on
//! any failure.
//!
//! Keys leave the set in two ways: a fetch no longer publishes them, or the revocation
//! feed revokes them ([`RemoteKeys::purge_revoked`]); a key revoked by the feed is also kept
//! out of every later fetch while its record lives. Either way the key-set generation is
//! bumped, which makes every verified-token cache entry made under an older generation a
//! miss, so a cached token signed by a removed key is checked again (and refused) on its
//! next use.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::Duration;

use url::Url;
use wristband_jose::{Clock, Jwks, KeySet, Policy};

use crate::cache::TokenCache;
use crate::feed::RevocationSet;
use crate::fetch::{FetchError, Fetcher};

/// Shortest background refresh interval, whatever `Cache-Control` says.
pub const MIN_REFRESH: Duration = Duration::from_secs(60);
/// Longest background refresh interval, whatever `Cache-Control` says.
pub const MAX_REFRESH: Duration = Duration::from_secs(24 * 60 * 60);
/// Refresh interval when the server sends no `max-age`.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(5 * 60);
/// Default minimum time between two refetches caused by unknown `kid`s.
pub const DEFAULT_REFETCH_COOLDOWN: Duration = Duration::from_secs(30);

/// Tuning of a remote key set. The defaults suit production; tests shorten the times.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// Minimum time between two refetches caused by unknown `kid`s. Default 30 s.
    pub refetch_cooldown: Duration,
    /// Deadline of one fetch (connect, send, read). Default 5 s.
    pub fetch_timeout: Duration,
    /// Largest accepted document. Default 256 KiB.
    pub max_fetch_bytes: usize,
    /// Fetch attempts at start-up before giving up. Default 5.
    pub startup_attempts: u32,
    /// First delay between start-up attempts, doubled after each failure. Default 250 ms.
    pub startup_backoff: Duration,
    /// First delay before retrying a failed background refresh, doubled after each
    /// failure up to [`MIN_REFRESH`]. Default 1 s.
    pub retry_backoff: Duration,
    /// Whether to refresh in the background at all. Default true.
    pub background_refresh: bool,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions {
            refetch_cooldown: DEFAULT_REFETCH_COOLDOWN,
            fetch_timeout: crate::fetch::DEFAULT_FETCH_TIMEOUT,
            max_fetch_bytes: crate::fetch::DEFAULT_MAX_FETCH_BYTES,
            startup_attempts: 5,
            startup_backoff: Duration::from_millis(250),
            retry_backoff: Duration::from_secs(1),
            background_refresh: true,
        }
    }
}

/// Clamps a server-declared freshness to [[`MIN_REFRESH`], [`MAX_REFRESH`]].
pub(crate) fn refresh_interval(max_age: Option<Duration>) -> Duration {
    max_age
        .unwrap_or(DEFAULT_REFRESH)
        .clamp(MIN_REFRESH, MAX_REFRESH)
}

/// Loads the usable keys of a JWKS document: keys weaker than the jose rules, keys of an
/// algorithm the policy does not allow, and malformed entries are skipped and logged. An
/// empty result is an error, so that a broken document never replaces good keys.
pub(crate) fn load_jwks(bytes: &[u8], policy: &Policy, source: &str) -> Result<KeySet, FetchError> {
    let jwks =
        Jwks::from_slice(bytes).map_err(|_| FetchError::Invalid("not a JWKS document".into()))?;
    let (all, skipped) = KeySet::from_jwks(&jwks);
    for s in &skipped {
        tracing::warn!(
            source,
            kid = s.kid.as_deref().unwrap_or("-"),
            reason = s.error.kind().code(),
            "JWKS key skipped"
        );
    }
    let mut keys = KeySet::new();
    for key in all.iter() {
        if policy.allows(key.algorithm()) {
            // Keys come from one set: the kid is unique and the family is consistent.
            let _ = keys.insert(key.clone());
        } else {
            tracing::warn!(source, kid = key.kid(), alg = %key.algorithm(), "JWKS key skipped: algorithm not allowed by policy");
        }
    }
    if keys.is_empty() {
        return Err(FetchError::Invalid("no usable key".into()));
    }
    Ok(keys)
}

/// Aborts the background refresh when the key set is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A key set kept in sync with a JWKS URL.
pub(crate) struct RemoteKeys {
    url: Url,
    fetcher: Fetcher,
    policy: Policy,
    options: RemoteOptions,
    keys: RwLock<Arc<KeySet>>,
    /// Bumped (under the `keys` write lock, after the swap) whenever a key leaves the set.
    generation: AtomicU64,
    /// Keys revoked by the feed, when it is followed: never loaded while their record lives.
    revoked: Option<Arc<RevocationSet>>,
    /// Held while a fetch runs: every fetch, whatever its cause, is single-flight.
    fetch_lock: Arc<tokio::sync::Mutex<()>>,
    /// When the last refetch caused by an unknown `kid` started, in milliseconds of the
    /// verifier's clock.
    last_kid_refetch: Mutex<Option<u64>>,
    /// The verifier's clock: the cooldown is measured with it, so tests move it on.
    clock: Arc<dyn Clock>,
    cache: Option<Arc<TokenCache>>,
    refresher: Mutex<Option<AbortOnDrop>>,
}

impl RemoteKeys {
    /// Fetches the key set (retrying with exponential backoff) and starts the refresh task.
    pub(crate) async fn start(
        url: Url,
        fetcher: Fetcher,
        policy: Policy,
        options: RemoteOptions,
        cache: Option<Arc<TokenCache>>,
        revoked: Option<Arc<RevocationSet>>,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, FetchError> {
        let mut delay = options.startup_backoff;
        let mut attempt = 1;
        let (keys, max_age) = loop {
            match fetch_keys(&fetcher, &url, &policy).await {
                Ok(ok) => break ok,
                Err(e) if attempt >= options.startup_attempts.max(1) => return Err(e),
                Err(e) => {
                    tracing::warn!(url = %url, attempt, error = %e, "JWKS fetch failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2);
                    attempt += 1;
                }
            }
        };
        tracing::info!(url = %url, keys = keys.len(), "JWKS loaded");
        let remote = Arc::new(RemoteKeys {
            url,
            fetcher,
            policy,
            options,
            keys: RwLock::new(Arc::new(keys)),
            generation: AtomicU64::new(0),
            revoked,
            fetch_lock: Arc::new(tokio::sync::Mutex::new(())),
            last_kid_refetch: Mutex::new(None),
            clock,
            cache,
            refresher: Mutex::new(None),
        });
        if remote.options.background_refresh {
            let task = tokio::spawn(refresh_loop(
                Arc::downgrade(&remote),
                refresh_interval(max_age),
            ));
            *remote
                .refresher
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(AbortOnDrop(task));
        }
        Ok(remote)
    }

    /// The current keys.
    pub(crate) fn current(&self) -> Arc<KeySet> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The JWKS URL.
    pub(crate) fn url(&self) -> &Url {
        &self.url
    }

    /// The key-set generation: it changes whenever a key leaves the set. Read it before
    /// [`RemoteKeys::current`] and tag what is verified with it.
    #[inline]
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Drops every key the revocation feed revoked (called by the feed after it applied a
    /// `kid` record, and harmless at any time).
    pub(crate) fn purge_revoked(&self) {
        let mut slot = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        let kept = self.without_revoked(&slot);
        if kept.len() == slot.len() {
            return;
        }
        let removed = slot.len() - kept.len();
        *slot = Arc::new(kept);
        self.generation.fetch_add(1, Ordering::AcqRel);
        drop(slot);
        if let Some(cache) = &self.cache {
            cache.clear();
        }
        tracing::warn!(url = %self.url, removed, "revoked signing keys dropped from the key set");
    }

    /// `keys` without the keys revoked by the feed.
    fn without_revoked(&self, keys: &KeySet) -> KeySet {
        let Some(revoked) = &self.revoked else {
            return keys.clone();
        };
        let mut kept = keys.clone();
        for key in keys.iter() {
            if revoked.is_kid_revoked(key.kid()) {
                tracing::warn!(url = %self.url, kid = key.kid(), "JWKS key skipped: revoked by the revocation feed");
                kept.remove(key.kid());
            }
        }
        kept
    }

    fn in_cooldown(&self) -> bool {
        let last = *self
            .last_kid_refetch
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.within_cooldown(last)
    }

    /// True when a refetch that started at `last` (clock milliseconds) is less than the
    /// cooldown ago. A clock that went back counts as no time passed.
    fn within_cooldown(&self, last: Option<u64>) -> bool {
        let cooldown = u64::try_from(self.options.refetch_cooldown.as_millis()).unwrap_or(u64::MAX);
        last.is_some_and(|t| self.clock.now_millis().saturating_sub(t) < cooldown)
    }

    /// Called when a token names `kid` and the current set lacks it. Refetches at most once
    /// per cooldown, single-flight: concurrent callers wait for the one fetch in progress.
    /// Returns the key set to verify against (the old one when nothing was fetched).
    pub(crate) async fn refetch_for_unknown_kid(self: &Arc<Self>, kid: &str) -> Arc<KeySet> {
        if self.in_cooldown() {
            // A refetch started within the cooldown may still be running (the typical case
            // right after a rotation: many requests with the new kid at once). Wait for it
            // rather than refuse these requests with the old keys.
            let _in_flight = self.fetch_lock.lock().await;
            return self.current();
        }
        let guard = Arc::clone(&self.fetch_lock).lock_owned().await;
        let current = self.current();
        if current.contains(kid) {
            return current;
        }
        {
            let mut last = self
                .last_kid_refetch
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if self.within_cooldown(*last) {
                return current;
            }
            *last = Some(self.clock.now_millis());
        }
        // The fetch runs in its own task so that a client hanging up cannot cancel it
        // halfway and waste the cooldown.
        let this = Arc::clone(self);
        let task = tokio::spawn(async move {
            let _guard = guard;
            if let Err(e) = this.fetch_and_store().await {
                tracing::warn!(url = %this.url, error = %e, "JWKS refetch for an unknown kid failed; keeping the last good keys");
            }
        });
        let _ = task.await;
        self.current()
    }

    /// Fetches now (the caller holds `fetch_lock`) and swaps in the new keys on success.
    async fn fetch_and_store(&self) -> Result<Option<Duration>, FetchError> {
        let (keys, max_age) = fetch_keys(&self.fetcher, &self.url, &self.policy).await?;
        self.store(keys);
        Ok(max_age)
    }

    /// Swaps in freshly fetched keys, minus the revoked ones. The filter runs under the
    /// write lock, so a key revoked meanwhile is either filtered here or purged right after.
    fn store(&self, keys: KeySet) {
        let mut slot = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        let keys = self.without_revoked(&keys);
        let new_kids: HashSet<&str> = keys.iter().map(|k| k.kid()).collect();
        let removed = slot.iter().filter(|k| !new_kids.contains(k.kid())).count();
        let added = keys.iter().filter(|k| !slot.contains(k.kid())).count();
        let count = keys.len();
        *slot = Arc::new(keys);
        if removed > 0 {
            // A token signed by a key that is gone must not live on in the cache: entries
            // of older generations are misses from now on, and the memory is freed.
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        drop(slot);
        if removed > 0 {
            if let Some(cache) = &self.cache {
                cache.clear();
            }
        }
        if added > 0 || removed > 0 {
            tracing::info!(url = %self.url, keys = count, added, removed, "JWKS changed");
        }
    }

    /// A scheduled refresh.
    async fn refresh(&self) -> Result<Option<Duration>, FetchError> {
        let _guard = self.fetch_lock.lock().await;
        self.fetch_and_store().await
    }
}

async fn fetch_keys(
    fetcher: &Fetcher,
    url: &Url,
    policy: &Policy,
) -> Result<(KeySet, Option<Duration>), FetchError> {
    let fetched = fetcher.get(url).await?;
    let keys = load_jwks(&fetched.body, policy, url.as_str())?;
    Ok((keys, fetched.max_age))
}

async fn refresh_loop(remote: Weak<RemoteKeys>, first: Duration) {
    let mut next = first;
    let mut backoff = None;
    loop {
        tokio::time::sleep(next).await;
        let Some(remote) = remote.upgrade() else {
            return;
        };
        match remote.refresh().await {
            Ok(max_age) => {
                next = refresh_interval(max_age);
                backoff = None;
            }
            Err(e) => {
                let delay = backoff
                    .unwrap_or(remote.options.retry_backoff)
                    .min(MIN_REFRESH);
                tracing::warn!(url = %remote.url, error = %e, retry_in = ?delay, "JWKS refresh failed; keeping the last good keys");
                next = delay;
                backoff = Some(delay.saturating_mul(2));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wristband_jose::{Algorithm, SigningKey};

    #[test]
    fn refresh_interval_is_clamped() {
        assert_eq!(refresh_interval(None), DEFAULT_REFRESH);
        assert_eq!(refresh_interval(Some(Duration::ZERO)), MIN_REFRESH);
        assert_eq!(refresh_interval(Some(Duration::from_secs(59))), MIN_REFRESH);
        assert_eq!(
            refresh_interval(Some(Duration::from_secs(600))),
            Duration::from_secs(600)
        );
        assert_eq!(refresh_interval(Some(Duration::MAX)), MAX_REFRESH);
    }

    #[test]
    fn jwks_loading_skips_what_policy_refuses() {
        let es = SigningKey::generate(Algorithm::ES256).unwrap();
        let ed = SigningKey::generate(Algorithm::EdDSA).unwrap();
        let set =
            KeySet::from_keys([es.verifying_key().clone(), ed.verifying_key().clone()]).unwrap();
        let doc = serde_json::to_vec(&set.to_public_jwks()).unwrap();
        let policy = Policy::builder("https://auth.example", "api")
            .algorithms(&[Algorithm::ES256])
            .build()
            .unwrap();
        let keys = load_jwks(&doc, &policy, "test").unwrap();
        assert_eq!(keys.len(), 1);
        assert!(keys.contains(es.kid()) && !keys.contains(ed.kid()));

        let only_ed = Policy::builder("https://auth.example", "api")
            .algorithms(&[Algorithm::RS256])
            .build()
            .unwrap();
        assert!(matches!(
            load_jwks(&doc, &only_ed, "test"),
            Err(FetchError::Invalid(_))
        ));
        assert!(matches!(
            load_jwks(b"{\"keys\":", &policy, "test"),
            Err(FetchError::Invalid(_))
        ));
        assert!(matches!(
            load_jwks(b"<html>", &policy, "test"),
            Err(FetchError::Invalid(_))
        ));
    }
}
