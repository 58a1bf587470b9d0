//! Prometheus metrics of the auth service.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Label for an outcome such as `ok` or `failed`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    /// The outcome.
    pub outcome: &'static str,
}

/// Label for an HTTP route.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Route {
    /// Matched route pattern (the router's fixed set), or `other`.
    pub route: String,
    /// A standard HTTP method, or `other`.
    pub method: &'static str,
    /// Status class (`2xx`, `4xx`, ...).
    pub status: String,
}

/// Label for who read the store on the feed's behalf.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeedReader {
    /// `tail` (the instance's one tail) or `catch_up` (a stream older than the ring).
    pub reader: &'static str,
}

/// Label for what happened to a subscriber that fell behind the ring.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeedLag {
    /// `moved` (to store catch-up) or `ended`.
    pub action: &'static str,
}

type HistogramFamily = Family<Route, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.25 ms .. ~8 s
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

/// Every metric the service exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Access tokens issued.
    pub tokens_issued: Counter,
    /// Logins by outcome: `ok`, `failed`, `throttled`.
    pub logins: Family<Outcome, Counter>,
    /// Refreshes by outcome: `ok`, `grace`, `reuse`, `invalid`.
    pub refreshes: Family<Outcome, Counter>,
    /// HTTP request latency by route.
    pub http_latency: HistogramFamily,
    /// The revocation feed's fan-out.
    pub feed: FeedMetrics,
    /// OpenID Connect back-channel logout.
    pub backchannel: BackchannelMetrics,
}

/// Metrics of back-channel logout (`wristband_backchannel_*`).
#[derive(Debug, Clone, Default)]
pub struct BackchannelMetrics {
    /// Logout tokens queued for delivery.
    pub queued: Counter,
    /// Logout tokens delivered (the client answered 2xx).
    pub delivered: Counter,
    /// Delivery attempts that failed (another status, a timeout, no connection).
    pub failures: Counter,
    /// Logout tokens abandoned at the end of the retry window.
    pub given_up: Counter,
}

impl BackchannelMetrics {
    fn register(registry: &mut Registry) -> Self {
        let m = BackchannelMetrics::default();
        let r = registry.sub_registry_with_prefix("backchannel");
        r.register(
            "queued",
            "Back-channel logout tokens queued",
            m.queued.clone(),
        );
        r.register(
            "delivered",
            "Back-channel logout tokens delivered (2xx)",
            m.delivered.clone(),
        );
        r.register(
            "failures",
            "Back-channel logout delivery attempts that failed",
            m.failures.clone(),
        );
        r.register(
            "given_up",
            "Back-channel logout tokens abandoned after the retry window",
            m.given_up.clone(),
        );
        m
    }
}

/// Metrics of the revocation feed's fan-out (`wristband_feed_*`).
#[derive(Debug, Clone)]
pub struct FeedMetrics {
    /// Open streams.
    pub subscribers: Gauge,
    /// Records held in the ring.
    pub ring_records: Gauge,
    /// Streams that read the store to catch up with the ring (on opening with an old
    /// cursor, or after falling behind).
    pub catch_ups: Counter,
    /// Streams that fell behind the ring, by what happened to them: `moved` to store
    /// catch-up; `ended` stays 0 (no stream is ended for lag).
    pub lagged: Family<FeedLag, Counter>,
    /// Store reads made by the feed: `tail` or `catch_up`.
    pub store_reads: Family<FeedReader, Counter>,
    /// Batches the tail published into the ring.
    pub batches: Counter,
    /// From the tail's wake-up to the batch's publication.
    pub delivery_lag: Histogram,
}

impl FeedMetrics {
    fn register(registry: &mut Registry) -> Self {
        let m = FeedMetrics {
            subscribers: Gauge::default(),
            ring_records: Gauge::default(),
            catch_ups: Counter::default(),
            lagged: Family::default(),
            store_reads: Family::default(),
            batches: Counter::default(),
            // 0.1 ms .. ~3 s
            delivery_lag: Histogram::new(exponential_buckets(0.000_1, 2.0, 16)),
        };
        // Every label value of the fixed sets shows, at zero until it happens.
        for action in ["moved", "ended"] {
            drop(m.lagged.get_or_create(&FeedLag { action }));
        }
        for reader in ["tail", "catch_up"] {
            drop(m.store_reads.get_or_create(&FeedReader { reader }));
        }
        let feed = registry.sub_registry_with_prefix("feed");
        feed.register(
            "subscribers",
            "Open revocation streams",
            m.subscribers.clone(),
        );
        feed.register(
            "ring_records",
            "Revocation records held in the in-memory ring",
            m.ring_records.clone(),
        );
        feed.register(
            "catch_ups",
            "Streams that read the store to catch up with the ring",
            m.catch_ups.clone(),
        );
        feed.register(
            "lagged",
            "Streams that fell behind the ring, by action (moved to catch-up, or ended)",
            m.lagged.clone(),
        );
        feed.register(
            "store_reads",
            "Store reads made by the feed, by reader (tail or catch_up)",
            m.store_reads.clone(),
        );
        feed.register(
            "batches",
            "Batches of records the tail published",
            m.batches.clone(),
        );
        feed.register_with_unit(
            "delivery_lag",
            "Time from the tail's wake-up to the publication of the batch",
            prometheus_client::registry::Unit::Seconds,
            m.delivery_lag.clone(),
        );
        m
    }

    /// Counts a store read by `reader` (`tail` or `catch_up`).
    pub fn store_read(&self, reader: &'static str) {
        self.store_reads.get_or_create(&FeedReader { reader }).inc();
    }

    /// Counts a stream that fell behind the ring and was moved to catch-up.
    pub fn moved_for_lag(&self) {
        self.lagged
            .get_or_create(&FeedLag { action: "moved" })
            .inc();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("wristband");
        let tokens_issued = Counter::default();
        let logins = Family::<Outcome, Counter>::default();
        let refreshes = Family::<Outcome, Counter>::default();
        let http_latency: HistogramFamily = Family::new_with_constructor(latency_histogram);
        registry.register(
            "tokens_issued",
            "Access tokens issued",
            tokens_issued.clone(),
        );
        registry.register("logins", "Login attempts by outcome", logins.clone());
        registry.register(
            "refreshes",
            "Refresh attempts by outcome",
            refreshes.clone(),
        );
        registry.register_with_unit(
            "http_request_duration",
            "HTTP request latency",
            prometheus_client::registry::Unit::Seconds,
            http_latency.clone(),
        );
        let feed = FeedMetrics::register(&mut registry);
        let backchannel = BackchannelMetrics::register(&mut registry);
        Metrics {
            feed,
            backchannel,
            registry,
            tokens_issued,
            logins,
            refreshes,
            http_latency,
        }
    }
}

impl Metrics {
    /// Counts a login outcome.
    pub fn login(&self, outcome: &'static str) {
        self.logins.get_or_create(&Outcome { outcome }).inc();
    }

    /// Counts a refresh outcome.
    pub fn refresh(&self, outcome: &'static str) {
        self.refreshes.get_or_create(&Outcome { outcome }).inc();
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
