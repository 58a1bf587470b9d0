//! The revocation feed's fan-out: one tail per instance, one ring shared by every stream.
//!
//! - **One tail.** [`AuthService::run_feed_tail`] is the only reader of new records. It is
//!   woken by a local revocation ([`AuthService::feed_changed`]), by the store's push
//!   (PostgreSQL `NOTIFY`), or by a [`POLL`] for writes the store does not push (the CLI on
//!   SQLite). It reads the records after its cursor in pages of [`PAGE`] and publishes each
//!   batch once into the ring, then moves the ring's head, which wakes the streams. Store
//!   reads per revocation do not depend on the number of streams.
//! - **The ring** keeps the last [`RING_CAPACITY`] records, in id order and without gaps:
//!   every unexpired record with an id above the ring's `floor` (the id of the last record
//!   it dropped, or where the tail started) is in it. The PostgreSQL store serialises the
//!   transactions that add revocations ("the revocation lock"), and SQLite has one writer,
//!   so ids become visible in id order and a cursor never steps over a record committed
//!   later: the tail keeps the guarantee each stream's own reads had. Each record's wire
//!   form is encoded once and shared by every stream ([`FeedEntry::wire`]).
//! - **Streams** ([`FeedSubscription`]) serve from the ring when their cursor is at or above
//!   its floor; an older cursor catches up from the store in pages of [`PAGE`], then joins.
//!   An idle stream costs nothing but its heartbeat: it waits on the ring's head.
//! - **Slow subscribers are moved, not ended.** A stream that falls behind the ring's
//!   capacity is just a cursor: nothing holds the ring for it, so neither the tail nor any
//!   other stream waits. When it reads again it finds its cursor below the floor and
//!   catches up from the store, then joins the ring again, receiving every record once and
//!   in order. Ending it instead would cost the same store reads at its reconnection, plus a
//!   new TLS handshake and authorization, for no gain.
//! - **Reader re-checks without polling.** A stream ends at its reader token's `exp` (one
//!   timer wheel for the instance, turned by the tail), or when a record it consumes revokes
//!   the reader's own token (`jti`, `sid`, or a `sub` cut-off covering its `iat`). Removing a
//!   client and rotating its secret both record a `sub` revocation for the client id, so
//!   those end the stream through the same records. No stream reads the store to check its
//!   reader.

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::{watch, Notify};

use super::oauth::FeedReader;
use super::{AuthService, DomainError};
use crate::metrics::FeedMetrics;
use crate::store::RevocationRecord;

/// Records per store read, by the tail and by a catching-up stream (and per page of
/// `GET /v1/revocations`).
pub const PAGE: u32 = 500;
/// How often the tail looks for records that nothing woke it for (written by other
/// processes on a store that does not push), and turns the expiry timers.
pub const POLL: Duration = Duration::from_secs(1);
/// Records the ring keeps by default.
pub const RING_CAPACITY: usize = 8192;
/// Records a stream takes from the ring per visit (it holds the ring's read lock that long).
const TAKE: usize = 256;
/// Interval of the streams' heartbeat (an SSE comment), published by the tail for all.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// What a stream sends next.
#[derive(Debug)]
pub enum FeedItem {
    /// A record.
    Record(Arc<FeedEntry>),
    /// A heartbeat: the connection is alive, nothing new.
    Heartbeat,
}

/// One revocation record in the ring, with its wire form encoded once for every stream.
#[derive(Debug)]
pub struct FeedEntry {
    /// The record.
    pub record: RevocationRecord,
    wire: OnceLock<bytes::Bytes>,
}

impl FeedEntry {
    fn new(record: RevocationRecord) -> Arc<Self> {
        Arc::new(FeedEntry {
            record,
            wire: OnceLock::new(),
        })
    }

    /// The record's id: the feed cursor.
    pub fn id(&self) -> i64 {
        self.record.id
    }

    /// The record's wire form, made by `encode` the first time any stream asks and shared
    /// from then on: every stream sends the same bytes, and cloning them only counts a
    /// reference.
    pub fn wire(&self, encode: impl FnOnce(&RevocationRecord) -> bytes::Bytes) -> bytes::Bytes {
        self.wire.get_or_init(|| encode(&self.record)).clone()
    }
}

#[derive(Debug)]
struct Ring {
    entries: VecDeque<Arc<FeedEntry>>,
    /// Every unexpired record above this id is in `entries`; `None` until the tail starts.
    floor: Option<i64>,
    capacity: usize,
}

impl Ring {
    fn trim(&mut self) {
        while self.entries.len() > self.capacity {
            if let Some(e) = self.entries.pop_front() {
                self.floor = Some(e.id());
            }
        }
    }
}

/// The in-memory side of the feed: the ring, its head, and the readers' expiry timers.
/// Owned by [`AuthService`]; see the module documentation.
#[derive(Debug)]
pub struct FeedHub {
    ring: RwLock<Ring>,
    /// The id of the newest published record (the tail's cursor); `None` until the tail
    /// starts. Streams wait on it.
    head: watch::Sender<Option<i64>>,
    /// Wakes the tail.
    wake: Notify,
    /// Readers' token expiries, `(exp, subscription)`: when one is due the head is
    /// touched, and each woken stream checks its own reader.
    expiries: Mutex<BTreeSet<(i64, u64)>>,
    /// Heartbeats published so far: each stream sends one when this moves.
    heartbeats: AtomicU64,
    /// Milliseconds between heartbeats ([`HEARTBEAT`] unless tuned).
    heartbeat_ms: AtomicU64,
    next_subscription: AtomicU64,
    metrics: FeedMetrics,
}

impl FeedHub {
    /// An empty hub whose tail has not started.
    pub fn new(metrics: FeedMetrics) -> Self {
        FeedHub {
            ring: RwLock::new(Ring {
                entries: VecDeque::new(),
                floor: None,
                capacity: RING_CAPACITY,
            }),
            head: watch::Sender::new(None),
            wake: Notify::new(),
            expiries: Mutex::new(BTreeSet::new()),
            heartbeats: AtomicU64::new(0),
            heartbeat_ms: AtomicU64::new(u64::try_from(HEARTBEAT.as_millis()).unwrap_or(15_000)),
            next_subscription: AtomicU64::new(0),
            metrics,
        }
    }

    /// Wakes the tail: a revocation was recorded (here, or elsewhere and pushed).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Changes how many records the ring keeps (at least 1); the oldest go at once when it
    /// shrinks. For tuning and tests.
    pub fn set_capacity(&self, records: usize) {
        let mut ring = self.ring.write().unwrap_or_else(PoisonError::into_inner);
        ring.capacity = records.max(1);
        ring.trim();
        self.metrics.ring_records.set(gauge(ring.entries.len()));
    }

    /// Changes the interval of the streams' heartbeat (at least 10 ms), from the next one
    /// on. For tuning and tests.
    pub fn set_heartbeat(&self, every: Duration) {
        let ms = u64::try_from(every.as_millis()).unwrap_or(u64::MAX).max(10);
        self.heartbeat_ms.store(ms, Ordering::Relaxed);
        self.wake();
    }

    fn heartbeat_every(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms.load(Ordering::Relaxed))
    }

    /// A receiver of the head: it changes when the tail publishes a batch (and when it
    /// touches the head for a heartbeat, an expiry or the shutdown).
    pub fn watch_head(&self) -> watch::Receiver<Option<i64>> {
        self.head.subscribe()
    }

    /// The newest published id, `None` before the tail starts.
    pub fn head(&self) -> Option<i64> {
        *self.head.borrow()
    }

    /// `(floor, records held)`: every unexpired record above `floor` is in the ring.
    pub fn span(&self) -> (Option<i64>, usize) {
        let ring = self.ring.read().unwrap_or_else(PoisonError::into_inner);
        (ring.floor, ring.entries.len())
    }

    /// The tail starts at `newest`: nothing above it exists yet.
    fn start(&self, newest: i64) {
        let mut ring = self.ring.write().unwrap_or_else(PoisonError::into_inner);
        ring.floor = Some(newest);
        drop(ring);
        self.head.send_replace(Some(newest));
    }

    /// Publishes a batch read by the tail (in id order, all above the head).
    fn publish(&self, batch: Vec<RevocationRecord>) {
        let Some(last) = batch.last().map(|r| r.id) else {
            return;
        };
        let mut ring = self.ring.write().unwrap_or_else(PoisonError::into_inner);
        ring.entries.extend(batch.into_iter().map(FeedEntry::new));
        ring.trim();
        let held = ring.entries.len();
        drop(ring);
        self.metrics.ring_records.set(gauge(held));
        self.metrics.batches.inc();
        self.head.send_replace(Some(last));
    }

    /// Up to [`TAKE`] entries above `after`, or `Err(floor)` when `after` is below the
    /// floor (the records right after it are gone from the ring), or `Err(None)` before
    /// the tail starts.
    fn take_after(&self, after: i64, into: &mut VecDeque<Arc<FeedEntry>>) -> Result<(), Lag> {
        let ring = self.ring.read().unwrap_or_else(PoisonError::into_inner);
        match ring.floor {
            None => Err(Lag::NotStarted),
            Some(floor) if after < floor => Err(Lag::Behind),
            Some(_) => {
                let start = ring.entries.partition_point(|e| e.id() <= after);
                into.extend(ring.entries.range(start..).take(TAKE).cloned());
                Ok(())
            }
        }
    }

    /// Wakes the subscriptions when a reader's token has expired by `now` (each checks its
    /// own; expiries are rare next to records).
    fn expire(&self, now: i64) {
        let mut timers = self.expiries.lock().unwrap_or_else(PoisonError::into_inner);
        let later = timers.split_off(&(now.saturating_add(1), 0));
        let due = std::mem::replace(&mut *timers, later);
        drop(timers);
        if !due.is_empty() {
            self.touch();
        }
    }

    /// Wakes every subscription without publishing anything: it looks at the reader's
    /// expiry, the shutdown flag and the heartbeat count again.
    pub(crate) fn touch(&self) {
        self.head.send_modify(|_| {});
    }

    /// Publishes a heartbeat: every open stream sends one.
    fn beat(&self) {
        self.heartbeats.fetch_add(1, Ordering::Relaxed);
        self.touch();
    }
}

enum Lag {
    NotStarted,
    Behind,
}

fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl AuthService {
    /// The feed's hub (ring, head, timers).
    pub fn feed_hub(&self) -> &FeedHub {
        &self.feed
    }

    /// The instance's one tail: reads new records and publishes them into the ring, until
    /// the service begins to shut down. The server starts it once, beside its other
    /// background tasks. It starts at the store's newest id; a store that
    /// cannot be read is tried again at the next wake-up or poll.
    pub async fn run_feed_tail(&self) {
        let mut stopping = self.stopping();
        let mut cursor: Option<i64> = None;
        let mut last_beat = tokio::time::Instant::now();
        loop {
            if *stopping.borrow() {
                return;
            }
            let woke = tokio::time::Instant::now();
            if woke >= last_beat + self.feed.heartbeat_every() {
                self.feed.beat();
                last_beat = woke;
            }
            self.feed.expire(self.now());
            cursor = match cursor {
                None => match self.store.last_revocation_id().await {
                    Ok(newest) => {
                        self.feed.start(newest);
                        Some(newest)
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "revocation feed: cannot start the tail");
                        None
                    }
                },
                Some(c) => Some(self.tail_once(c, woke).await),
            };
            let until = (woke + POLL).min(last_beat + self.feed.heartbeat_every());
            tokio::select! {
                () = self.feed.wake.notified() => {}
                () = tokio::time::sleep_until(until) => {}
                _ = stopping.changed() => {}
            }
        }
    }

    /// Reads and publishes every record after `cursor`; returns the new cursor.
    async fn tail_once(&self, mut cursor: i64, woke: tokio::time::Instant) -> i64 {
        loop {
            self.feed.metrics.store_read("tail");
            match self.store.revocations_after(cursor, self.now(), PAGE).await {
                Ok(batch) => {
                    let full = batch.len() == PAGE as usize;
                    if let Some(last) = batch.last() {
                        cursor = last.id;
                        self.feed.publish(batch);
                        self.feed
                            .metrics
                            .delivery_lag
                            .observe(woke.elapsed().as_secs_f64());
                    }
                    if !full {
                        return cursor;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "revocation feed: the tail cannot read the store");
                    return cursor;
                }
            }
        }
    }

    /// Opens a stream of the feed for the holder of `token` (see
    /// [`AuthService::authorize_feed`]), resuming after `after` (`Last-Event-ID`, 0 for
    /// everything).
    pub async fn subscribe_feed(
        self: &Arc<Self>,
        token: Option<&str>,
        after: i64,
    ) -> Result<FeedSubscription, DomainError> {
        // Taken before the reader is checked against the store: every record above it is
        // matched against the reader by the stream itself, every one at or below it was
        // committed before that check.
        let checked = self.feed.head();
        let reader = self.authorize_feed(token).await?;
        let id = self.feed.next_subscription.fetch_add(1, Ordering::Relaxed);
        if let Some(exp) = reader.expires_at() {
            self.feed
                .expiries
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert((exp, id));
        }
        self.feed.metrics.subscribers.inc();
        Ok(FeedSubscription {
            service: Arc::clone(self),
            id,
            pos: after.min(checked.unwrap_or(0)),
            after,
            reader,
            pending: VecDeque::new(),
            mode: Mode::Ring,
            joined: false,
            caught_up: None,
            head: self.feed.head.subscribe(),
            stopping: self.stopping(),
            beats: self.feed.heartbeats.load(Ordering::Relaxed),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Taking records from the ring.
    Ring,
    /// Reading the store, page by page, until the ring can take over.
    CatchUp,
}

/// One open stream of the feed: a cursor into the ring, or into the store while it
/// catches up. Dropping it closes it.
#[derive(Debug)]
pub struct FeedSubscription {
    service: Arc<AuthService>,
    id: u64,
    /// Every record at or below it has been handled (sent, skipped, or checked).
    pos: i64,
    /// Records at or below it are not sent (the client's `Last-Event-ID`).
    after: i64,
    reader: FeedReader,
    pending: VecDeque<Arc<FeedEntry>>,
    mode: Mode,
    /// Set when it has served from the ring (so that falling behind counts as lag).
    joined: bool,
    /// After a catch-up: where the position moves once the records read are handled.
    caught_up: Option<i64>,
    head: watch::Receiver<Option<i64>>,
    stopping: watch::Receiver<bool>,
    /// Heartbeats sent so far (the hub's count when it opened, then each one sent).
    beats: u64,
}

impl Drop for FeedSubscription {
    fn drop(&mut self) {
        let feed = &self.service.feed;
        feed.metrics.subscribers.dec();
        if let Some(exp) = self.reader.expires_at() {
            feed.expiries
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&(exp, self.id));
        }
    }
}

impl FeedSubscription {
    /// The next record to send, or a heartbeat, waiting for one as long as needed. `None`
    /// ends the stream: the server is shutting down, or the reader's token expired or was
    /// revoked (also by its client's removal or secret rotation).
    ///
    /// It waits on the ring's head alone: the tail also touches the head for a heartbeat
    /// (every [`HEARTBEAT`]), for a reader's expiry, and at shutdown, so that a waiting
    /// stream holds one registration and no timer.
    pub async fn next(&mut self) -> Option<FeedItem> {
        loop {
            if *self.stopping.borrow() {
                return None;
            }
            let now = self.service.now();
            if self.reader.expires_at().is_some_and(|exp| now >= exp) {
                return None;
            }
            if let Some(entry) = self.pending.pop_front() {
                if entry.id() <= self.pos {
                    continue;
                }
                self.pos = entry.id();
                if self.reader.revoked_by(&entry.record, now) {
                    // The reader's own token is revoked: end. A follower reconnects with a
                    // fresh token, if it can still get one, and resumes from its cursor.
                    return None;
                }
                if entry.id() > self.after && entry.record.expires_at > now {
                    return Some(FeedItem::Record(entry));
                }
                continue;
            }
            if let Some(h) = self.caught_up.take() {
                self.pos = self.pos.max(h);
            }
            let mut retry = false;
            match self.mode {
                Mode::Ring => {
                    // Seen before looking, so that a batch published after the look wakes
                    // the wait below.
                    self.head.borrow_and_update();
                    match self.service.feed.take_after(self.pos, &mut self.pending) {
                        Ok(()) => {
                            self.joined = true;
                            if !self.pending.is_empty() {
                                continue;
                            }
                        }
                        Err(Lag::NotStarted) => {}
                        Err(Lag::Behind) => {
                            if self.joined {
                                // It fell behind the ring: move it to catch-up.
                                self.service.feed.metrics.moved_for_lag();
                            }
                            self.service.feed.metrics.catch_ups.inc();
                            self.mode = Mode::CatchUp;
                            continue;
                        }
                    }
                }
                Mode::CatchUp => match self.catch_up().await {
                    CatchUp::Progress => continue,
                    CatchUp::Wait => {}
                    CatchUp::Retry => retry = true,
                },
            }
            let beats = self.service.feed.heartbeats.load(Ordering::Relaxed);
            if beats != self.beats {
                self.beats = beats;
                return Some(FeedItem::Heartbeat);
            }
            // Nothing to send: wait for the tail (a batch, a heartbeat, a reader's expiry or
            // the shutdown), or after a failed store read a moment.
            if retry {
                tokio::select! {
                    r = self.head.changed() => if r.is_err() { return None },
                    () = tokio::time::sleep(POLL) => {}
                }
            } else if self.head.changed().await.is_err() {
                return None;
            }
        }
    }

    /// One page from the store after `pos`. On a short page the stream has every record up
    /// to the store's newest, and goes back to the ring.
    async fn catch_up(&mut self) -> CatchUp {
        // Every record at or below the published head was committed before this read.
        let head = self.service.feed.head();
        let svc = &self.service;
        svc.feed.metrics.store_read("catch_up");
        match svc.store.revocations_after(self.pos, svc.now(), PAGE).await {
            Ok(batch) => {
                let full = batch.len() == PAGE as usize;
                let read = !batch.is_empty();
                self.pending.extend(batch.into_iter().map(FeedEntry::new));
                if !full {
                    if let Some(h) = head {
                        // Nothing unexpired is missing up to the head: once these records
                        // are handled the position moves there, above the ring's floor
                        // (records below it may have expired since the tail read them).
                        self.caught_up = Some(h);
                        self.mode = Mode::Ring;
                        return CatchUp::Progress;
                    }
                }
                if read || full {
                    CatchUp::Progress
                } else {
                    // The tail has not started: wait for it.
                    CatchUp::Wait
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "revocation stream: store read failed");
                CatchUp::Retry
            }
        }
    }
}

enum CatchUp {
    /// Records were read, or the ring takes over: look again.
    Progress,
    /// Wait for the tail to start.
    Wait,
    /// The store failed: try again in a moment.
    Retry,
}
