//! `GET /v1/revocations/stream` of a relay: the log's records after `Last-Event-ID`, then
//! each new one as the follower applies it (woken by the log's head), with heartbeats.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use http::HeaderMap;
use tokio::sync::watch;
use tokio::time::Instant;
use wristband_jose::{Claims, Verified};

use super::{Relay, HEARTBEAT, PAGE};
use crate::feed::LogEntry;

/// One subscriber's state; counts itself out of the subscribers when dropped.
struct Subscriber {
    relay: Relay,
    reader: Arc<Verified<Claims>>,
    cursor: i64,
    pending: VecDeque<LogEntry>,
    head: watch::Receiver<i64>,
    stopping: watch::Receiver<bool>,
    /// When the last event or heartbeat went out.
    last_sent: Instant,
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.relay
            .shared()
            .relay
            .subscribers
            .fetch_sub(1, Ordering::Relaxed);
    }
}

impl Subscriber {
    /// Why the stream must end now, if it must.
    fn must_end(&self) -> bool {
        if *self.stopping.borrow() || self.relay.withholding() {
            return true;
        }
        if !self.relay.0.readers.still_valid(&self.reader) {
            self.relay
                .shared()
                .relay
                .reader_ended
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(target: "wristband::relay", "relay stream ended: the reader's token expired or was revoked");
            return true;
        }
        false
    }

    /// Time until the reader's token expires.
    fn until_expiry(&self) -> Duration {
        let readers = &self.relay.0.readers;
        Duration::from_secs(
            readers
                .expires_at(&self.reader)
                .saturating_sub(readers.now()),
        )
        .max(Duration::from_millis(100))
    }
}

fn record_event(entry: &LogEntry) -> Event {
    Event::default()
        .id(entry.id.to_string())
        .event("revocation")
        .data(&*entry.json)
}

fn events(sub: Subscriber) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(sub, |mut sub| async move {
        loop {
            if sub.must_end() {
                return None;
            }
            if let Some(entry) = sub.pending.pop_front() {
                sub.last_sent = Instant::now();
                sub.relay
                    .shared()
                    .relay
                    .records
                    .fetch_add(1, Ordering::Relaxed);
                return Some((Ok(record_event(&entry)), sub));
            }
            // Mark the head seen before reading, so that a record appended meanwhile
            // wakes the wait below.
            sub.head.borrow_and_update();
            let now_secs = sub.relay.0.readers.now();
            let batch = sub.relay.shared().log.after(sub.cursor, PAGE, now_secs);
            if let Some(last) = batch.last() {
                sub.cursor = last.id;
                sub.pending.extend(batch);
                continue;
            }
            let heartbeat_at = sub.last_sent + HEARTBEAT;
            let expiry = tokio::time::sleep(sub.until_expiry());
            tokio::select! {
                changed = sub.head.changed() => {
                    if changed.is_err() {
                        // The follower is gone.
                        return None;
                    }
                }
                _ = sub.stopping.changed() => {}
                () = expiry => {}
                () = tokio::time::sleep_until(heartbeat_at) => {
                    if sub.must_end() {
                        return None;
                    }
                    sub.last_sent = Instant::now();
                    return Some((Ok(Event::default().comment("heartbeat")), sub));
                }
            }
        }
    })
}

/// `GET /v1/revocations/stream`.
pub(super) async fn stream(State(relay): State<Relay>, headers: HeaderMap) -> Response {
    let reader = match relay.admit(&headers).await {
        Ok(reader) => reader,
        Err(refusal) => return refusal.into_response(),
    };
    let cursor = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or(0);
    let counters = &relay.shared().relay;
    counters.subscribers.fetch_add(1, Ordering::Relaxed);
    counters.streams.fetch_add(1, Ordering::Relaxed);
    let sub = Subscriber {
        head: relay.shared().log.subscribe(),
        stopping: relay.0.stopping.subscribe(),
        relay,
        reader,
        cursor,
        pending: VecDeque::new(),
        last_sent: Instant::now(),
    };
    Sse::new(events(sub)).into_response()
}
