//! Prometheus metrics of the auth service.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
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
        Metrics {
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
