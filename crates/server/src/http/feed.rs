//! The revocation feed for verifiers: a paginated snapshot, and a Server-Sent Events stream
//! that resumes from `Last-Event-ID` and sends heartbeats.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream::{self, Stream};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::error::{ApiError, ErrorBody};
use super::AppState;
use crate::domain::oauth::FeedReader;
use crate::store::RevocationRecord;

/// Records per page of `GET /v1/revocations`, and per batch of the stream.
pub const PAGE: u32 = 500;
/// How often a stream looks for records written by other processes.
pub const POLL: Duration = Duration::from_secs(1);
/// Heartbeat interval of the stream.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// How often an open stream checks that its reader may still read (token not revoked,
/// client not removed, secret not rotated). Expiry is checked on every poll.
pub const READER_RECHECK: Duration = Duration::from_secs(5);

/// A revocation on the wire.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WireRevocation<'a> {
    /// Cursor / event id.
    pub id: i64,
    /// `jti`, `sid` or `sub`.
    #[schema(value_type = String, example = "jti")]
    pub kind: &'static str,
    /// The jti, sid or sub.
    pub value: &'a str,
    /// For `sub`: tokens issued at or before this time (Unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<i64>,
    /// For `sub`: the same cut-off in Unix milliseconds (tokens whose `iat_ms` is at or
    /// before it are covered). Added after `before`, which stays for deployed verifiers;
    /// absent on records made before it existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before_ms: Option<i64>,
    /// The record can be forgotten after this time (Unix seconds).
    pub expires_at: i64,
}

impl<'a> From<&'a RevocationRecord> for WireRevocation<'a> {
    fn from(r: &'a RevocationRecord) -> Self {
        WireRevocation {
            id: r.id,
            kind: r.kind.as_str(),
            value: &r.value,
            before: r.before,
            before_ms: r.before_ms,
            expires_at: r.expires_at,
        }
    }
}

/// A page of `GET /v1/revocations`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RevocationPage<'a> {
    /// Records after the cursor asked for, oldest first.
    pub revocations: Vec<WireRevocation<'a>>,
    /// Where the next page starts (`after`).
    pub cursor: i64,
    /// Whether more records follow.
    pub has_more: bool,
}

/// `GET /v1/revocations` query.
#[derive(Debug, Deserialize)]
pub(super) struct PageQuery {
    after: Option<i64>,
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

#[utoipa::path(get, path = "/v1/revocations", tag = "revocation feed",
    summary = "A page of revocation records after a cursor",
    description = "For verifiers: needs a resource-server client's token with `revocations:read`, unless the feed is configured public.",
    security(("bearer" = []), ()),
    params(("after" = Option<i64>, Query, description = "Cursor: records after this id (default 0)")),
    responses(
        (status = 200, description = "A page", body = RevocationPage),
        (status = 400, description = "A malformed cursor", body = ErrorBody),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "The token may not read the feed", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub(super) async fn page(
    State(s): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|_| ApiError::InvalidRequest("invalid cursor"))?;
    s.service.authorize_feed(bearer(&headers)).await?;
    let after = q.after.unwrap_or(0);
    let records = s.service.revocations_after(after, PAGE).await?;
    let cursor = records.last().map_or(after, |r| r.id);
    let wire: Vec<WireRevocation<'_>> = records.iter().map(Into::into).collect();
    Ok(Json(RevocationPage {
        revocations: wire,
        cursor,
        has_more: records.len() == PAGE as usize,
    })
    .into_response())
}

struct StreamState {
    app: AppState,
    reader: FeedReader,
    next_check: tokio::time::Instant,
    cursor: i64,
    pending: std::collections::VecDeque<RevocationRecord>,
    wake: watch::Receiver<u64>,
    stopping: watch::Receiver<bool>,
}

fn event(r: &RevocationRecord) -> Event {
    let data = serde_json::to_string(&WireRevocation::from(r)).unwrap_or_default();
    Event::default()
        .id(r.id.to_string())
        .event("revocation")
        .data(data)
}

/// True while the stream's reader may read: its token's expiry on every call, the rest
/// every [`READER_RECHECK`]. A store that cannot be reached does not end the stream (the
/// records cannot be read either; the next check decides).
async fn reader_may_read(st: &mut StreamState) -> bool {
    if st
        .reader
        .expires_at()
        .is_some_and(|exp| st.app.service.now() >= exp)
    {
        return false;
    }
    let now = tokio::time::Instant::now();
    if now < st.next_check {
        return true;
    }
    st.next_check = now + READER_RECHECK;
    match st.app.service.feed_reader_valid(&st.reader).await {
        Ok(valid) => valid,
        Err(e) => {
            tracing::warn!(error = %e, "revocation stream: reader check failed");
            true
        }
    }
}

fn revocation_stream(state: StreamState) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(state, |mut st| async move {
        loop {
            if *st.stopping.borrow() {
                // The server is shutting down: end the stream; the client resumes elsewhere
                // or later with Last-Event-ID.
                return None;
            }
            if !reader_may_read(&mut st).await {
                // The reader's token expired or was revoked, or its client was removed or
                // its secret rotated: end the stream. A follower reconnects with a fresh
                // token, if it can still get one.
                return None;
            }
            if let Some(r) = st.pending.pop_front() {
                let ev = event(&r);
                return Some((Ok(ev), st));
            }
            match st.app.service.revocations_after(st.cursor, PAGE).await {
                Ok(batch) if !batch.is_empty() => {
                    st.cursor = batch.last().map_or(st.cursor, |r| r.id);
                    st.pending.extend(batch);
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "revocation stream: store read failed"),
            }
            // Nothing new: wait for a local revocation, or poll for other processes' ones.
            tokio::select! {
                _ = tokio::time::timeout(POLL, st.wake.changed()) => {}
                _ = st.stopping.changed() => {}
            }
        }
    })
}

#[utoipa::path(get, path = "/v1/revocations/stream", tag = "revocation feed",
    summary = "Server-Sent Events: every revocation as it happens",
    description = "Events are named `revocation`, carry a `WireRevocation` as data and the cursor as id; resume with `Last-Event-ID`. A heartbeat comment comes every 15 seconds. Same authorization as the page.",
    security(("bearer" = []), ()),
    params(("Last-Event-ID" = Option<i64>, Header, description = "Resume after this id")),
    responses(
        (status = 200, description = "The event stream", content_type = "text/event-stream", body = String),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "The token may not read the feed", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub(super) async fn stream(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let reader = s.service.authorize_feed(bearer(&headers)).await?;
    let cursor = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or(0);
    let wake = s.service.subscribe_feed();
    let stopping = s.service.stopping();
    let state = StreamState {
        reader,
        next_check: tokio::time::Instant::now() + READER_RECHECK,
        stopping,
        app: s,
        cursor,
        pending: std::collections::VecDeque::new(),
        wake,
    };
    Ok(Sse::new(revocation_stream(state))
        .keep_alive(KeepAlive::new().interval(HEARTBEAT).text("heartbeat"))
        .into_response())
}
