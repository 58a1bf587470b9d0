//! The relay's metrics (`wristband_relay_*`), kept with the counters they read so that the
//! feed, which exports them, needs nothing of the relay.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use super::Shared;

/// The relay's part of [`super::FeedRevocations::prometheus_text`].
pub(crate) fn relay_prometheus_text(shared: &Shared) -> String {
    let c = &shared.relay;
    let mut out = String::with_capacity(1024);
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        );
    };
    metric(
        "wristband_relay_subscribers",
        "gauge",
        "Open relay streams.",
        c.subscribers.load(Ordering::Relaxed) as u64,
    );
    metric(
        "wristband_relay_streams_total",
        "counter",
        "Relay streams opened.",
        c.streams.load(Ordering::Relaxed),
    );
    metric(
        "wristband_relay_pages_total",
        "counter",
        "Relay pages answered.",
        c.pages.load(Ordering::Relaxed),
    );
    metric(
        "wristband_relay_records_served_total",
        "counter",
        "Records sent by the relay, on pages and streams.",
        c.records.load(Ordering::Relaxed),
    );
    metric(
        "wristband_relay_log_records",
        "gauge",
        "Records in the relay's log.",
        shared.log.len() as u64,
    );
    metric(
        "wristband_relay_log_bytes",
        "gauge",
        "Bytes of record JSON in the relay's log.",
        shared.log.bytes(),
    );
    metric(
        "wristband_relay_streams_ended_by_reader_total",
        "counter",
        "Relay streams ended because their reader's token expired or was revoked.",
        c.reader_ended.load(Ordering::Relaxed),
    );
    metric(
        "wristband_relay_refused_total",
        "counter",
        "Relay requests refused with 401 or 403.",
        c.refused.load(Ordering::Relaxed),
    );
    metric(
        "wristband_relay_unavailable_total",
        "counter",
        "Relay requests answered 503 while the relay was stale under fail-closed.",
        c.unavailable.load(Ordering::Relaxed),
    );
    out
}
