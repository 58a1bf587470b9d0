//! [`FeedLog`]: the unexpired records a follower applied, in id order, each with its wire
//! JSON serialised once, and a watch on the log's head: what a relay
//! ([`crate::relay::Relay`]) re-serves to downstream verifiers.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use serde::Serialize;
use tokio::sync::watch;

use super::set::{RevocationKind, RevocationRecord};

/// One logged record: its cursor, its expiry and its wire JSON.
#[derive(Debug, Clone)]
pub(crate) struct LogEntry {
    /// The upstream id (the cursor and SSE event id).
    pub(crate) id: i64,
    /// Unix seconds after which the record is no longer served.
    pub(crate) expires_at: u64,
    /// The record as the auth service writes it on the wire.
    pub(crate) json: Arc<str>,
}

/// A record on the wire: the fields, their order and their omissions of the auth
/// service's `WireRevocation`, so that a relay's pages and events are byte-identical to
/// the auth service's.
#[derive(Serialize)]
struct Wire<'a> {
    id: i64,
    kind: &'static str,
    value: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    before: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    before_ms: Option<u64>,
    expires_at: u64,
}

/// The wire JSON of `record`.
pub(crate) fn wire_json(record: &RevocationRecord) -> Arc<str> {
    let wire = Wire {
        id: record.id,
        kind: record.kind.as_str(),
        value: &record.value,
        before: record.before,
        before_ms: record.before_ms,
        expires_at: record.expires_at,
    };
    // Serialising a struct of integers and strings into a String cannot fail.
    serde_json::to_string(&wire).unwrap_or_default().into()
}

impl RevocationKind {
    /// The kind's name on the wire: `jti`, `sid`, `sub` or `kid`.
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationKind::Jti => "jti",
            RevocationKind::Sid => "sid",
            RevocationKind::Sub => "sub",
            RevocationKind::Kid => "kid",
        }
    }
}

/// The applied, unexpired records in id order. Written by the follower task only; read by
/// every relay subscriber under a read lock held for one batch copy.
#[derive(Debug)]
pub(crate) struct FeedLog {
    entries: RwLock<VecDeque<LogEntry>>,
    /// The id of the newest logged record (0 while none was).
    head: watch::Sender<i64>,
    /// Bytes of wire JSON held, for the metrics.
    bytes: AtomicU64,
}

impl Default for FeedLog {
    fn default() -> Self {
        FeedLog {
            entries: RwLock::new(VecDeque::new()),
            head: watch::Sender::new(0),
            bytes: AtomicU64::new(0),
        }
    }
}

impl FeedLog {
    /// Appends the records (already filtered to ids above the follower's cursor, in id
    /// order) that are unexpired at `now`, then moves the head.
    pub(crate) fn append<'a>(
        &self,
        records: impl IntoIterator<Item = &'a RevocationRecord>,
        now: u64,
    ) {
        let mut top = None;
        {
            let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
            let mut last = entries.back().map_or(i64::MIN, |e| e.id);
            for r in records {
                if r.id <= last || r.expires_at <= now {
                    continue;
                }
                let json = wire_json(r);
                self.bytes.fetch_add(json.len() as u64, Ordering::Relaxed);
                entries.push_back(LogEntry {
                    id: r.id,
                    expires_at: r.expires_at,
                    json,
                });
                last = r.id;
                top = Some(r.id);
            }
        }
        if let Some(top) = top {
            self.head.send_replace(top);
        }
    }

    /// Drops the records expired at `now`; returns how many went.
    pub(crate) fn prune(&self, now: u64) -> usize {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        let before = entries.len();
        let mut freed = 0u64;
        entries.retain(|e| {
            let keep = e.expires_at > now;
            if !keep {
                freed += e.json.len() as u64;
            }
            keep
        });
        self.bytes.fetch_sub(freed, Ordering::Relaxed);
        before - entries.len()
    }

    /// Up to `limit` records with an id above `after`, unexpired at `now`, oldest first.
    pub(crate) fn after(&self, after: i64, limit: usize, now: u64) -> Vec<LogEntry> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let start = entries.partition_point(|e| e.id <= after);
        entries
            .range(start..)
            .filter(|e| e.expires_at > now)
            .take(limit)
            .cloned()
            .collect()
    }

    /// A receiver of the head's changes.
    pub(crate) fn subscribe(&self) -> watch::Receiver<i64> {
        self.head.subscribe()
    }

    /// The ids held, oldest first.
    pub(crate) fn ids(&self) -> Vec<i64> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        entries.iter().map(|e| e.id).collect()
    }

    /// Number of records held.
    pub(crate) fn len(&self) -> usize {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Bytes of wire JSON held.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: i64, kind: RevocationKind, exp: u64) -> RevocationRecord {
        RevocationRecord {
            id,
            kind,
            value: format!("v\"{id}"),
            before: (kind == RevocationKind::Sub).then_some(900),
            before_ms: (kind == RevocationKind::Sub).then_some(900_250),
            expires_at: exp,
        }
    }

    #[test]
    fn wire_json_has_the_auth_services_field_order() {
        assert_eq!(
            &*wire_json(&rec(7, RevocationKind::Jti, 2_000)),
            r#"{"id":7,"kind":"jti","value":"v\"7","expires_at":2000}"#
        );
        assert_eq!(
            &*wire_json(&rec(8, RevocationKind::Sub, 2_000)),
            r#"{"id":8,"kind":"sub","value":"v\"8","before":900,"before_ms":900250,"expires_at":2000}"#
        );
    }

    #[test]
    fn append_after_and_prune() {
        let log = FeedLog::default();
        let head = log.subscribe();
        let records = [
            rec(1, RevocationKind::Jti, 2_000),
            rec(2, RevocationKind::Sid, 1_000),
            rec(3, RevocationKind::Sub, 1_500),
            rec(5, RevocationKind::Kid, 3_000),
        ];
        log.append(&records, 1_000);
        assert_eq!(log.ids(), vec![1, 3, 5], "an expired record is not logged");
        assert_eq!(*head.borrow(), 5);
        // Replays and older ids are ignored.
        log.append(&records[..1], 1_000);
        assert_eq!(log.len(), 3);
        let ids = |v: Vec<LogEntry>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
        assert_eq!(ids(log.after(0, 2, 1_000)), vec![1, 3]);
        assert_eq!(ids(log.after(1, 500, 1_000)), vec![3, 5]);
        assert_eq!(ids(log.after(4, 500, 1_000)), vec![5]);
        assert_eq!(ids(log.after(5, 500, 1_000)), Vec::<i64>::new());
        // Serving skips what expired before the next prune.
        assert_eq!(ids(log.after(0, 500, 1_600)), vec![1, 5]);
        let bytes = log.bytes();
        assert!(bytes > 0);
        assert_eq!(log.prune(2_000), 2);
        assert_eq!(log.ids(), vec![5]);
        assert!(log.bytes() < bytes);
    }
}
