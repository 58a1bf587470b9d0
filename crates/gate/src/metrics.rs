//! The gate's Prometheus metrics: decisions by endpoint and outcome, policy reloads, and
//! the verifier's cached tokens and revocation staleness, and the relay's metrics when the
//! gate re-serves the revocation feed.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::original::Protocol;

/// How a decision was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// 200.
    Allow,
    /// 401 with a challenge.
    Unauthenticated,
    /// Sent to the login page (302/303, or 401 with `Location` at auth-request).
    Redirect,
    /// 403.
    Forbidden,
    /// The token was sent more than once.
    InvalidRequest,
}

const OUTCOMES: [(Outcome, &str); 5] = [
    (Outcome::Allow, "allow"),
    (Outcome::Unauthenticated, "unauthenticated"),
    (Outcome::Redirect, "redirect"),
    (Outcome::Forbidden, "forbidden"),
    (Outcome::InvalidRequest, "invalid_request"),
];

const PROTOCOLS: [Protocol; 3] = [Protocol::AuthRequest, Protocol::Forward, Protocol::ExtAuthz];

fn protocol_index(p: Protocol) -> usize {
    match p {
        Protocol::AuthRequest => 0,
        Protocol::Forward => 1,
        Protocol::ExtAuthz => 2,
    }
}

fn outcome_index(o: Outcome) -> usize {
    match o {
        Outcome::Allow => 0,
        Outcome::Unauthenticated => 1,
        Outcome::Redirect => 2,
        Outcome::Forbidden => 3,
        Outcome::InvalidRequest => 4,
    }
}

/// Counters, updated with relaxed atomics on the request path.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    decisions: [[AtomicU64; 5]; 3],
    reloads: AtomicU64,
    reload_failures: AtomicU64,
    /// The relay the gate serves, whose metrics are appended.
    pub(crate) relay: Option<wristband_verify::relay::Relay>,
}

impl Metrics {
    /// Counters at zero, appending the metrics of `relay` when there is one.
    pub(crate) fn with_relay(relay: Option<wristband_verify::relay::Relay>) -> Self {
        Metrics {
            relay,
            ..Metrics::default()
        }
    }

    pub(crate) fn count(&self, protocol: Protocol, outcome: Outcome) {
        self.decisions[protocol_index(protocol)][outcome_index(outcome)]
            .fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn reloaded(&self, ok: bool) {
        let counter = if ok {
            &self.reloads
        } else {
            &self.reload_failures
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub(crate) fn render(
        &self,
        cached_tokens: usize,
        staleness: Option<std::time::Duration>,
    ) -> String {
        let mut out = String::with_capacity(2048);
        out.push_str("# HELP wristband_gate_decisions_total Decisions by endpoint and outcome.\n");
        out.push_str("# TYPE wristband_gate_decisions_total counter\n");
        for p in PROTOCOLS {
            for (o, label) in OUTCOMES {
                let n = self.decisions[protocol_index(p)][outcome_index(o)].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "wristband_gate_decisions_total{{endpoint=\"{}\",outcome=\"{label}\"}} {n}",
                    p.as_str()
                );
            }
        }
        out.push_str("# HELP wristband_gate_policy_reloads_total Policy file reloads by result.\n");
        out.push_str("# TYPE wristband_gate_policy_reloads_total counter\n");
        let _ = writeln!(
            out,
            "wristband_gate_policy_reloads_total{{result=\"ok\"}} {}",
            self.reloads.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "wristband_gate_policy_reloads_total{{result=\"invalid\"}} {}",
            self.reload_failures.load(Ordering::Relaxed)
        );
        out.push_str("# HELP wristband_gate_cached_tokens Tokens in the verified-token cache.\n");
        out.push_str("# TYPE wristband_gate_cached_tokens gauge\n");
        let _ = writeln!(out, "wristband_gate_cached_tokens {cached_tokens}");
        if let Some(staleness) = staleness {
            out.push_str("# HELP wristband_gate_revocation_staleness_seconds Seconds since the revocation view was last in sync.\n");
            out.push_str("# TYPE wristband_gate_revocation_staleness_seconds gauge\n");
            let _ = writeln!(
                out,
                "wristband_gate_revocation_staleness_seconds {}",
                staleness.as_secs()
            );
        }
        if let Some(relay) = &self.relay {
            out.push_str(&relay.prometheus_text());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_show_up_in_the_text() {
        let m = Metrics::default();
        m.count(Protocol::Forward, Outcome::Redirect);
        m.count(Protocol::Forward, Outcome::Redirect);
        m.reloaded(false);
        let text = m.render(7, Some(std::time::Duration::from_secs(3)));
        assert!(text.contains(
            "wristband_gate_decisions_total{endpoint=\"forward\",outcome=\"redirect\"} 2\n"
        ));
        assert!(text.contains(
            "wristband_gate_decisions_total{endpoint=\"auth-request\",outcome=\"allow\"} 0\n"
        ));
        assert!(text.contains("wristband_gate_policy_reloads_total{result=\"invalid\"} 1\n"));
        assert!(text.contains("wristband_gate_cached_tokens 7\n"));
        assert!(text.contains("wristband_gate_revocation_staleness_seconds 3\n"));
        assert!(!m.render(0, None).contains("staleness"));
    }
}
