//! Following the auth service's revocation feed: [`FeedRevocations`] and its
//! [`StalenessPolicy`]; [`RevocationSet`] holds the records, `log` keeps them in id order
//! with their wire JSON for a relay, `sse` parses the stream and `client` talks to the
//! token, feed and introspection endpoints.

mod client;
mod log;
mod relay_metrics;
mod set;
mod sse;

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, StatusCode};
use http_body_util::BodyExt;
use serde::Deserialize;
use url::Url;
use wristband_jose::{Claims, Clock, UnixTime};

pub(crate) use client::{AuthHttp, ClientAuth};
pub(crate) use log::{FeedLog, LogEntry};
pub(crate) use relay_metrics::relay_prometheus_text;
pub use set::{RevocationKind, RevocationRecord, RevocationSet};

use crate::fetch::FetchError;
use crate::revocation::RevocationView;
use sse::{SseItem, SseParser};

/// What to do with tokens while the feed is out of sync for too long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StalenessPolicy {
    /// Keep verifying; log loudly. The default: an auth-service outage does not take the
    /// API down.
    #[default]
    FailOpen,
    /// Refuse tokens issued before the last sync.
    FailClosed,
}

impl FromStr for StalenessPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fail-open" => Ok(StalenessPolicy::FailOpen),
            "fail-closed" => Ok(StalenessPolicy::FailClosed),
            other => Err(format!(
                "unknown staleness policy `{other}` (fail-open or fail-closed)"
            )),
        }
    }
}

impl StalenessPolicy {
    /// `fail-open` or `fail-closed`.
    pub fn as_str(self) -> &'static str {
        match self {
            StalenessPolicy::FailOpen => "fail-open",
            StalenessPolicy::FailClosed => "fail-closed",
        }
    }
}

/// Tuning of the feed follower. The defaults suit production; tests shorten the times.
#[derive(Debug, Clone)]
pub struct FeedOptions {
    /// What to do once out of sync longer than `max_staleness`. Default fail-open.
    pub policy: StalenessPolicy,
    /// How long the view may be out of sync before the policy applies. Default 60 s
    /// (the stream's heartbeat comes every 15 s).
    pub max_staleness: Duration,
    /// First reconnect delay, doubled after each failure. Default 500 ms.
    pub backoff_initial: Duration,
    /// Longest reconnect delay. Default 30 s.
    pub backoff_max: Duration,
    /// Failed stream attempts in a row after which the snapshot is polled. Default 3.
    pub fallback_after: u32,
    /// Polling interval while the stream is down. Default 5 s.
    pub poll_interval: Duration,
    /// A stream silent for this long is dropped and reopened. Default 40 s.
    pub idle_timeout: Duration,
    /// Interval of pruning and of the staleness log line. Default 10 s.
    pub housekeeping_interval: Duration,
    /// Snapshot attempts at start-up before giving up. Default 5.
    pub startup_attempts: u32,
    /// First delay between start-up attempts, doubled after each failure. Default 250 ms.
    pub startup_backoff: Duration,
    /// Deadline of one request (and of a stream's response head). Default 5 s.
    pub request_timeout: Duration,
    /// Largest accepted snapshot page or introspection response. Default 1 MiB.
    pub max_response_bytes: usize,
}

impl Default for FeedOptions {
    fn default() -> Self {
        FeedOptions {
            policy: StalenessPolicy::FailOpen,
            max_staleness: Duration::from_secs(60),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            fallback_after: 3,
            poll_interval: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(40),
            housekeeping_interval: Duration::from_secs(10),
            startup_attempts: 5,
            startup_backoff: Duration::from_millis(250),
            request_timeout: Duration::from_secs(5),
            max_response_bytes: 1024 * 1024,
        }
    }
}

/// Longest accepted SSE line.
const MAX_SSE_LINE: usize = 64 * 1024;

/// Counters of the follower, for metrics and tests.
#[derive(Debug, Default)]
struct Counters {
    stream_connects: AtomicUsize,
    stream_failures: AtomicUsize,
    polls: AtomicUsize,
    events: AtomicUsize,
}

/// Counters of a relay serving this follower's log ([`crate::relay::Relay`]).
#[derive(Debug, Default)]
pub(crate) struct RelayCounters {
    /// Set once a relay serves the log: its metrics are exported from then on.
    pub(crate) serving: AtomicBool,
    /// Open streams.
    pub(crate) subscribers: AtomicUsize,
    /// Streams opened so far.
    pub(crate) streams: AtomicU64,
    /// Pages answered so far.
    pub(crate) pages: AtomicU64,
    /// Records sent, on pages and streams.
    pub(crate) records: AtomicU64,
    /// Streams ended because their reader's token expired or was revoked.
    pub(crate) reader_ended: AtomicU64,
    /// Requests refused with 401 or 403.
    pub(crate) refused: AtomicU64,
    /// Requests answered 503 (the relay stale under the fail-closed policy).
    pub(crate) unavailable: AtomicU64,
}

/// Called after records revoking signing keys were applied (the remote key set drops
/// them).
pub(crate) type KidHook = Box<dyn Fn() + Send + Sync>;

pub(crate) struct Shared {
    set: Arc<RevocationSet>,
    /// The applied unexpired records in id order, for a relay.
    pub(crate) log: FeedLog,
    pub(crate) relay: RelayCounters,
    on_kid: Option<KidHook>,
    clock: Arc<dyn Clock>,
    /// Unix seconds of the last sync.
    last_sync: AtomicU64,
    /// The last applied record id.
    cursor: AtomicI64,
    pub(crate) policy: StalenessPolicy,
    max_staleness: u64,
    counters: Counters,
}

impl Shared {
    fn touch(&self) {
        self.last_sync
            .fetch_max(self.clock.now().as_secs(), Ordering::Relaxed);
    }

    fn staleness_secs(&self) -> u64 {
        self.clock
            .now()
            .as_secs()
            .saturating_sub(self.last_sync.load(Ordering::Relaxed))
    }

    pub(crate) fn is_stale(&self) -> bool {
        self.staleness_secs() > self.max_staleness
    }

    /// Applies records in id order, skipping those at or below the cursor.
    fn apply(&self, records: &[RevocationRecord]) -> usize {
        let cursor = self.cursor.load(Ordering::Relaxed);
        let fresh: Vec<&RevocationRecord> = records.iter().filter(|r| r.id > cursor).collect();
        if fresh.is_empty() {
            return 0;
        }
        let now = self.clock.now();
        self.set.apply_all(fresh.iter().copied(), now);
        self.log.append(fresh.iter().copied(), now.as_secs());
        let mut kids = 0;
        for r in fresh.iter().filter(|r| r.kind == RevocationKind::Kid) {
            tracing::warn!(target: "wristband::revocation", kid = %r.value, expires_at = r.expires_at, "signing key revoked");
            kids += 1;
        }
        if kids > 0 {
            if let Some(hook) = &self.on_kid {
                hook();
            }
        }
        let top = fresh.iter().map(|r| r.id).max().unwrap_or(cursor);
        self.cursor.fetch_max(top, Ordering::Relaxed);
        self.counters
            .events
            .fetch_add(fresh.len(), Ordering::Relaxed);
        fresh.len()
    }
}

/// Where the feed is and how to read it.
pub(crate) struct FeedEndpoints {
    pub(crate) snapshot: Url,
    pub(crate) stream: Url,
}

struct Follower {
    shared: Arc<Shared>,
    http: AuthHttp,
    auth: Option<Arc<ClientAuth>>,
    endpoints: FeedEndpoints,
    options: FeedOptions,
}

/// Aborts the background tasks when the view goes away.
struct Tasks(Vec<tokio::task::AbortHandle>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// A [`RevocationView`] that keeps the verifier in step with the auth service's
/// revocation feed. Enable it with [`crate::VerifierBuilder::revocation_feed`]:
///
/// 1. at start-up it reads the whole snapshot (`GET /v1/revocations?after=N`, page by
///    page);
/// 2. then it follows the Server-Sent Events stream (`GET /v1/revocations/stream`), sending
///    `Last-Event-ID` with the last applied record so that a reconnect misses nothing, and
///    reading the unread tail of the snapshot right after each connect;
/// 3. when the stream fails it reconnects with exponential backoff and jitter; after
///    [`FeedOptions::fallback_after`] failures in a row it also polls the snapshot every
///    [`FeedOptions::poll_interval`] until the stream is back;
/// 4. records are pruned once expired, so memory follows the live set.
///
/// Besides the lookup maps it keeps the applied unexpired records in id order, each with
/// its wire JSON serialised once (about 100 bytes a record), so that the feed can be
/// re-served to downstream verifiers by a [`crate::relay::Relay`]
/// ([`FeedRevocations::logged_ids`]).
///
/// # Revoked signing keys
///
/// A record of kind [`RevocationKind::Kid`] revokes a signing key in an emergency. From
/// the next request on, every token whose header names that `kid` is refused with 401
/// `invalid_token`, tokens already in the verified-token cache included
/// ([`RevocationView::is_key_revoked`], one atomic load while no key is revoked). A key
/// set fetched from a JWKS URL also drops the key at once, and a later fetch that still
/// publishes it (a stale CDN copy, say) does not bring it back while the record lives.
///
/// Both endpoints are read with the verifier's own access token (client credentials, scope
/// `revocations:read`), renewed before it runs out.
///
/// # Staleness
///
/// The view is *in sync* when a snapshot page or a stream event or heartbeat arrived
/// recently. [`FeedRevocations::staleness`] is the time since the last of those. Once it
/// exceeds [`FeedOptions::max_staleness`] the [`StalenessPolicy`] decides:
///
/// - [`StalenessPolicy::FailOpen`] (the default): keep accepting tokens that verify and
///   are not known to be revoked, and log an error on every housekeeping tick;
/// - [`StalenessPolicy::FailClosed`]: refuse (401 `invalid_token`) every token issued
///   before the last sync, the tokens a missed revocation could cover. Tokens issued since
///   (fresh logins and refreshes) are still accepted, so clients recover by refreshing.
///   A token issued after the last sync and revoked during the outage is not caught: the
///   exposure is bounded by the outage, not closed.
///
/// Staleness is also logged on every housekeeping tick (target `wristband::revocation`,
/// field `staleness_seconds`) and exported by [`FeedRevocations::prometheus_text`] as the
/// gauge `wristband_verifier_revocation_staleness_seconds`.
pub struct FeedRevocations {
    shared: Arc<Shared>,
    _tasks: Tasks,
}

impl std::fmt::Debug for FeedRevocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedRevocations")
            .field("records", &self.shared.set.len())
            .field("cursor", &self.cursor())
            .field("staleness_secs", &self.shared.staleness_secs())
            .field("policy", &self.shared.policy)
            .finish()
    }
}

/// Why the feed could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeedError {
    /// The request failed or was answered with an error status.
    #[error("revocation feed request failed")]
    Fetch(#[from] FetchError),
    /// The stream sent a line longer than the cap.
    #[error("revocation stream line too long")]
    LineTooLong,
    /// A record or page could not be parsed.
    #[error("invalid revocation feed document")]
    Invalid,
    /// The stream went silent for longer than the idle timeout.
    #[error("revocation stream idle for {0:?}")]
    Idle(Duration),
    /// The stream ended.
    #[error("revocation stream closed")]
    Closed,
}

#[derive(Deserialize)]
struct Page {
    revocations: Vec<RevocationRecord>,
    cursor: i64,
    #[serde(default)]
    has_more: bool,
}

impl FeedRevocations {
    /// Reads the snapshot (with the start-up retries), then starts following the stream.
    pub(crate) async fn start(
        endpoints: FeedEndpoints,
        http: AuthHttp,
        auth: Option<Arc<ClientAuth>>,
        clock: Arc<dyn Clock>,
        options: FeedOptions,
        set: Arc<RevocationSet>,
        on_kid: Option<KidHook>,
    ) -> Result<Self, FeedError> {
        let shared = Arc::new(Shared {
            set,
            log: FeedLog::default(),
            relay: RelayCounters::default(),
            on_kid,
            clock,
            last_sync: AtomicU64::new(0),
            cursor: AtomicI64::new(0),
            policy: options.policy,
            max_staleness: options.max_staleness.as_secs(),
            counters: Counters::default(),
        });
        let follower = Follower {
            shared: Arc::clone(&shared),
            http,
            auth,
            endpoints,
            options,
        };
        let mut delay = follower.options.startup_backoff;
        let mut attempt = 1;
        loop {
            match follower.poll().await {
                Ok(()) => break,
                Err(e) if attempt >= follower.options.startup_attempts.max(1) => return Err(e),
                Err(e) => {
                    tracing::warn!(target: "wristband::revocation", attempt, error = %chain(&e), "revocation snapshot failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2);
                    attempt += 1;
                }
            }
        }
        tracing::info!(
            target: "wristband::revocation",
            records = shared.set.len(),
            cursor = shared.cursor.load(Ordering::Relaxed),
            "revocation snapshot loaded"
        );
        let housekeeping = tokio::spawn(housekeeping(
            Arc::clone(&shared),
            follower.options.housekeeping_interval,
        ));
        let follow = tokio::spawn(follower.run());
        Ok(FeedRevocations {
            shared,
            _tasks: Tasks(vec![follow.abort_handle(), housekeeping.abort_handle()]),
        })
    }

    /// Time since the view was last in sync (a snapshot page, a stream event or a
    /// heartbeat), by the verifier's clock, in whole seconds.
    pub fn staleness(&self) -> Duration {
        Duration::from_secs(self.shared.staleness_secs())
    }

    /// When the view was last in sync.
    pub fn last_sync(&self) -> UnixTime {
        UnixTime::from_secs(self.shared.last_sync.load(Ordering::Relaxed))
    }

    /// True when out of sync for longer than the maximum staleness.
    pub fn is_stale(&self) -> bool {
        self.shared.is_stale()
    }

    /// The policy applied while stale.
    pub fn policy(&self) -> StalenessPolicy {
        self.shared.policy
    }

    /// The id of the last applied record.
    pub fn cursor(&self) -> i64 {
        self.shared.cursor.load(Ordering::Relaxed)
    }

    /// The records held.
    pub fn records(&self) -> &RevocationSet {
        &self.shared.set
    }

    /// Successful stream connections so far.
    pub fn stream_connects(&self) -> usize {
        self.shared.counters.stream_connects.load(Ordering::Relaxed)
    }

    /// Failed or ended stream connections so far.
    pub fn stream_failures(&self) -> usize {
        self.shared.counters.stream_failures.load(Ordering::Relaxed)
    }

    /// Snapshot polls (all pages of one round count once) so far, start-up included.
    pub fn polls(&self) -> usize {
        self.shared.counters.polls.load(Ordering::Relaxed)
    }

    /// Records applied so far. A record is applied once: one delivered again (the stream
    /// replaying what a snapshot page already gave, say) is skipped by its id.
    pub fn records_applied(&self) -> usize {
        self.shared.counters.events.load(Ordering::Relaxed)
    }

    /// The ids of the unexpired records applied, oldest first: the log a relay re-serves
    /// ([`crate::relay::Relay`]). Ids only ever grow along it, each appears once.
    pub fn logged_ids(&self) -> Vec<i64> {
        self.shared.log.ids()
    }

    /// The records held, shared.
    pub(crate) fn records_arc(&self) -> &Arc<RevocationSet> {
        &self.shared.set
    }

    /// The follower's state, for a relay.
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The staleness gauge in the Prometheus text format:
    /// `wristband_verifier_revocation_staleness_seconds`, plus the record count, and once a
    /// relay serves this feed its gauges and counters (`wristband_relay_*`: subscribers,
    /// streams, pages, records served, logged records and bytes, streams ended by their
    /// reader's token, refusals).
    pub fn prometheus_text(&self) -> String {
        let mut text = self.follower_text();
        if self.shared.relay.serving.load(Ordering::Relaxed) {
            text.push_str(&relay_prometheus_text(&self.shared));
        }
        text
    }

    fn follower_text(&self) -> String {
        format!(
            "# HELP wristband_verifier_revocation_staleness_seconds Seconds since the revocation view was last in sync.\n\
             # TYPE wristband_verifier_revocation_staleness_seconds gauge\n\
             wristband_verifier_revocation_staleness_seconds {}\n\
             # HELP wristband_verifier_revocation_records Revocation records held.\n\
             # TYPE wristband_verifier_revocation_records gauge\n\
             wristband_verifier_revocation_records {}\n",
            self.shared.staleness_secs(),
            self.shared.set.len()
        )
    }
}

impl RevocationView for FeedRevocations {
    #[inline]
    fn is_revoked(&self, claims: &Claims) -> bool {
        if self.shared.set.is_revoked(claims) {
            return true;
        }
        if self.shared.policy == StalenessPolicy::FailClosed {
            let last = self.shared.last_sync.load(Ordering::Relaxed);
            let now = self.shared.clock.now().as_secs();
            if now.saturating_sub(last) > self.shared.max_staleness && claims.iat.as_secs() < last {
                return true;
            }
        }
        false
    }

    #[inline]
    fn is_key_revoked(&self, kid: &str) -> bool {
        self.shared.set.is_kid_revoked(kid)
    }
}

async fn housekeeping(shared: Arc<Shared>, every: Duration) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let pruned = shared.set.prune(shared.clock.now());
        shared.log.prune(shared.clock.now().as_secs());
        let staleness = shared.staleness_secs();
        let records = shared.set.len();
        if staleness <= shared.max_staleness {
            tracing::debug!(
                target: "wristband::revocation",
                staleness_seconds = staleness,
                records,
                pruned,
                "revocation view in sync"
            );
        } else if shared.policy == StalenessPolicy::FailOpen {
            tracing::error!(
                target: "wristband::revocation",
                staleness_seconds = staleness,
                records,
                policy = "fail-open",
                "revocation feed out of sync: tokens revoked since are still accepted"
            );
        } else {
            tracing::warn!(
                target: "wristband::revocation",
                staleness_seconds = staleness,
                records,
                policy = "fail-closed",
                "revocation feed out of sync: refusing tokens issued before the last sync"
            );
        }
    }
}

impl Follower {
    async fn bearer(&self) -> Result<Option<HeaderValue>, FeedError> {
        match &self.auth {
            Some(a) => Ok(Some(a.bearer().await?)),
            None => Ok(None),
        }
    }

    async fn on_status(&self, status: StatusCode) {
        if status == StatusCode::UNAUTHORIZED {
            if let Some(a) = &self.auth {
                a.invalidate().await;
            }
        }
    }

    /// Reads every page after the cursor.
    async fn poll(&self) -> Result<(), FeedError> {
        loop {
            let auth = self.bearer().await?;
            let mut url = self.endpoints.snapshot.clone();
            url.query_pairs_mut().clear().append_pair(
                "after",
                &self.shared.cursor.load(Ordering::Relaxed).to_string(),
            );
            let (status, body) = self.http.get(&url, auth.as_ref()).await?;
            if status != StatusCode::OK {
                self.on_status(status).await;
                return Err(FetchError::Status(status).into());
            }
            let page: Page = serde_json::from_slice(&body).map_err(|_| FeedError::Invalid)?;
            self.shared.apply(&page.revocations);
            self.shared.cursor.fetch_max(page.cursor, Ordering::Relaxed);
            self.shared.touch();
            if !page.has_more || page.revocations.is_empty() {
                break;
            }
        }
        self.shared.counters.polls.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Follows the stream forever: reconnects with backoff, polls while it keeps failing.
    async fn run(self) {
        let mut failures: u32 = 0;
        loop {
            let (delivered, error) = self.stream_once().await;
            self.shared
                .counters
                .stream_failures
                .fetch_add(1, Ordering::Relaxed);
            if delivered {
                failures = 0;
            }
            failures = failures.saturating_add(1);
            let delay = backoff(&self.options, failures);
            tracing::warn!(
                target: "wristband::revocation",
                error = %chain(&error),
                failures,
                retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                "revocation stream interrupted"
            );
            if failures >= self.options.fallback_after.max(1) {
                self.poll_for(delay).await;
            } else {
                tokio::time::sleep(delay).await;
            }
        }
    }

    /// Polls the snapshot now and every poll interval until `total` has passed.
    async fn poll_for(&self, total: Duration) {
        let end = tokio::time::Instant::now() + total;
        loop {
            if let Err(e) = self.poll().await {
                tracing::warn!(target: "wristband::revocation", error = %chain(&e), "revocation poll failed");
            }
            let now = tokio::time::Instant::now();
            if now >= end {
                return;
            }
            tokio::time::sleep((end - now).min(self.options.poll_interval)).await;
        }
    }

    /// One stream connection, until it fails. Returns whether it delivered anything.
    async fn stream_once(&self) -> (bool, FeedError) {
        let auth = match self.bearer().await {
            Ok(a) => a,
            Err(e) => return (false, e),
        };
        let cursor = self.shared.cursor.load(Ordering::Relaxed);
        let response = match self
            .http
            .open_stream(&self.endpoints.stream, auth.as_ref(), cursor)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                if let FetchError::Status(s) = &e {
                    self.on_status(*s).await;
                }
                return (false, e.into());
            }
        };
        self.shared
            .counters
            .stream_connects
            .fetch_add(1, Ordering::Relaxed);
        tracing::debug!(target: "wristband::revocation", cursor, "revocation stream connected");
        // Whatever happened while disconnected is read now (the stream replays it too;
        // duplicates are skipped by id).
        let mut delivered = self.poll().await.is_ok();
        let mut body = response.into_body();
        let mut parser = SseParser::new(MAX_SSE_LINE);
        let mut items = Vec::new();
        loop {
            let frame = match tokio::time::timeout(self.options.idle_timeout, body.frame()).await {
                Err(_) => return (delivered, FeedError::Idle(self.options.idle_timeout)),
                Ok(None) => return (delivered, FeedError::Closed),
                Ok(Some(Err(e))) => return (delivered, FetchError::Body(Box::new(e)).into()),
                Ok(Some(Ok(frame))) => frame,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if parser.feed(&data, &mut items).is_err() {
                return (delivered, FeedError::LineTooLong);
            }
            let mut records = Vec::new();
            for item in items.drain(..) {
                match item {
                    SseItem::Comment => {}
                    SseItem::Event(ev) if ev.event == "revocation" || ev.event.is_empty() => {
                        match serde_json::from_str::<RevocationRecord>(&ev.data) {
                            Ok(r) => records.push(r),
                            Err(_) => return (delivered, FeedError::Invalid),
                        }
                    }
                    SseItem::Event(_) => {}
                }
                delivered = true;
                self.shared.touch();
            }
            if !records.is_empty() {
                let applied = self.shared.apply(&records);
                tracing::debug!(target: "wristband::revocation", applied, cursor = self.shared.cursor.load(Ordering::Relaxed), "revocations applied");
            }
        }
    }
}

/// An error and its causes, `: `-separated, for logs.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Exponential backoff with jitter: a random delay in `[d/2, d]` where `d` doubles from
/// the initial delay with each failure, up to the maximum.
fn backoff(options: &FeedOptions, failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(20);
    let full = options
        .backoff_initial
        .saturating_mul(1u32 << exp)
        .min(options.backoff_max);
    let mut bytes = [0u8; 4];
    let r = if aws_lc_rs::rand::fill(&mut bytes).is_ok() {
        u32::from_le_bytes(bytes)
    } else {
        u32::MAX
    };
    let half = full / 2;
    half + half.mul_f64(f64::from(r) / f64::from(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let o = FeedOptions {
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
            ..FeedOptions::default()
        };
        for _ in 0..50 {
            let d1 = backoff(&o, 1);
            assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
            let d3 = backoff(&o, 3);
            assert!(d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400));
            let d30 = backoff(&o, 30);
            assert!(d30 >= Duration::from_millis(500) && d30 <= Duration::from_secs(1));
        }
    }

    #[test]
    fn policy_names() {
        assert_eq!("fail-open".parse(), Ok(StalenessPolicy::FailOpen));
        assert_eq!("fail-closed".parse(), Ok(StalenessPolicy::FailClosed));
        assert!("closed".parse::<StalenessPolicy>().is_err());
        assert_eq!(StalenessPolicy::FailClosed.as_str(), "fail-closed");
    }
}
