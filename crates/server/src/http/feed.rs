//! The revocation feed for verifiers: a paginated snapshot, and a Server-Sent Events stream
//! that resumes from `Last-Event-ID` and sends heartbeats.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream::{self, Stream};
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ErrorBody};
use super::AppState;
use crate::domain::{FeedEntry, FeedItem, FeedSubscription};
use crate::store::RevocationRecord;

pub use crate::domain::feed::{HEARTBEAT, PAGE};

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

/// A record as one Server-Sent Event (`id`, `event: revocation`, `data`), encoded once per
/// record whatever the number of streams: each stream sends the same shared bytes.
fn event(entry: &FeedEntry) -> Bytes {
    entry.wire(|r| {
        let data = serde_json::to_string(&WireRevocation::from(r)).unwrap_or_default();
        Bytes::from(format!("id: {}\nevent: revocation\ndata: {data}\n\n", r.id))
    })
}

/// The heartbeat: an SSE comment, which clients ignore.
const HEARTBEAT_EVENT: &[u8] = b": heartbeat\n\n";

/// The stream's body: the subscription's records and heartbeats until it ends (see
/// [`FeedSubscription::next`]), each already framed, so a stream adds no copy of its own.
fn revocation_stream(sub: FeedSubscription) -> impl Stream<Item = Result<Bytes, Infallible>> {
    stream::unfold(sub, |mut sub| async move {
        let bytes = match sub.next().await? {
            FeedItem::Record(entry) => event(&entry),
            FeedItem::Heartbeat => Bytes::from_static(HEARTBEAT_EVENT),
        };
        Some((Ok(bytes), sub))
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
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or(0);
    let sub = s.service.subscribe_feed(bearer(&headers), after).await?;
    // The heartbeat comes from the feed (one clock for every stream), not a timer per stream.
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(revocation_stream(sub)),
    )
        .into_response())
}
