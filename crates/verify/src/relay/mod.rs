//! Relays: any service that follows the revocation feed re-serves it to downstream
//! verifiers, so that a fleet forms a tree (auth service → one relay per host or pod →
//! the local verifiers) instead of every verifier holding a connection to the auth
//! service.
//!
//! A [`Relay`] serves, from the log of records its [`FeedRevocations`] applied:
//!
//! - `GET /v1/revocations?after=N`: pages of up to [`PAGE`] records after the cursor,
//!   `{"revocations":[..],"cursor":N,"has_more":bool}`;
//! - `GET /v1/revocations/stream`: Server-Sent Events resuming after `Last-Event-ID`, each
//!   record as `event: revocation`, `id: <id>`, `data: <record>`, and a `: heartbeat`
//!   comment after [`HEARTBEAT`] without an event.
//!
//! Pages, events and cursors are the auth service's: the same ids, and each record's JSON
//! byte for byte as the auth service writes it (serialised once when the record is
//! applied, then shared by every page and stream). A downstream verifier follows a relay
//! with [`crate::VerifierBuilder::revocation_feed_url`].
//!
//! # Authorization
//!
//! As at the auth service: a bearer token of a resource-server client with the scope
//! `revocations:read`, whose audience is `<issuer>/v1/revocations`. The relay verifies it
//! locally with its own keys (no call upstream), and answers refusals with the auth
//! service's statuses, `WWW-Authenticate` challenges and JSON bodies: 401 `unauthorized`
//! without a token, 401 `invalid_token` for a token that does not verify (bad, expired,
//! revoked by a record the relay holds), 403 `insufficient_scope` for a valid token of
//! another audience or without the scope. An open stream ends when its reader's token
//! expires or a record in the relay's log revokes it; the reader reconnects with a fresh
//! token. Removing the reader's client or rotating its secret writes a subject record for
//! the client at the auth service, so the relay refuses the client's earlier tokens, and
//! ends their streams, as soon as that record reaches it. Opaque (`wbo_`) reader tokens
//! are refused: the relay does not introspect.
//! A relay always asks for a reader's token, even in front of an auth service whose feed
//! is configured public.
//!
//! # Cursors and history
//!
//! The relay's follower starts from cursor 0, so its log holds every unexpired record and
//! any cursor is served from it: a cursor older than the oldest logged record only means
//! that the records in between expired, which the auth service would not serve either.
//! A restarted relay reads the snapshot again before it serves, with the same ids.
//!
//! # When the relay loses its upstream
//!
//! The relay's follower reconnects from its own cursor (backoff, then polling), so
//! downstream verifiers see every record once, in order, with no gap. Meanwhile the relay
//! keeps serving what it has, according to its [`StalenessPolicy`] once it is out of sync
//! for longer than its maximum staleness:
//!
//! - [`StalenessPolicy::FailOpen`]: pages, streams and heartbeats go on. Downstream
//!   verifiers stay in sync with the relay and keep accepting tokens; only the relay's
//!   logs and its staleness gauge show the outage (availability first, as fail-open
//!   chooses);
//! - [`StalenessPolicy::FailClosed`]: the relay stops vouching for freshness. Its open
//!   streams end, and pages and new streams are answered 503 `temporarily_unavailable`
//!   until it is back in sync, so downstream verifiers go stale in turn and apply their
//!   own policy. Their view is then at most the relay's maximum staleness plus their own
//!   behind the auth service.
//!
//! # Unknown record kinds
//!
//! A relay re-serves only the records it understands. Its follower refuses a record of a
//! kind it does not know (the page or event is invalid, retried, and the relay goes
//! stale), so an unknown kind is never passed on: like every verifier, relays are
//! upgraded before the auth service starts writing a new kind. Fields a future auth
//! service might add to a record are not passed on either.
//!
//! # Example
//!
//! ```no_run
//! use wristband_verify::relay::Relay;
//! use wristband_verify::Verifier;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A service following the auth service's feed re-serves it on its own port.
//! let verifier = Verifier::builder("https://auth.example", "api://orders")
//!     .client_credentials("rs-client-id", "rs-client-secret")
//!     .revocation_feed()
//!     .build()
//!     .await?;
//! let relay = Relay::new(&verifier)?;
//! let app = axum::Router::new().merge(relay.router());
//! # let _ = app;
//!
//! // A verifier on the same host follows the relay instead of the auth service.
//! let local = Verifier::builder("https://auth.example", "api://billing")
//!     .client_credentials("rs-client-id", "rs-client-secret")
//!     .revocation_feed_url("http://127.0.0.1:8181/v1/revocations")
//!     .build()
//!     .await?;
//! # let _ = local;
//! # Ok(())
//! # }
//! ```

mod auth;
mod stream;

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use tokio::sync::watch;

pub use auth::SCOPE_REVOCATIONS_READ;
use auth::{Readers, Refusal};

use crate::feed::{FeedRevocations, Shared};
use crate::{StalenessPolicy, Verifier};

/// Records per page, and per batch of a stream: the auth service's page size.
pub const PAGE: usize = 500;
/// Heartbeat interval of a stream: the auth service's.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// Why a relay cannot be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The verifier does not follow the revocation feed: there is nothing to re-serve.
    #[error("the verifier does not follow the revocation feed")]
    NoFeed,
    /// The readers' policy could not be built from the verifier's.
    #[error("invalid reader policy")]
    Policy(#[source] wristband_jose::Error),
}

/// Re-serves the revocation feed a [`Verifier`] follows (see the [module](self) docs).
/// Cheap to clone.
#[derive(Clone)]
pub struct Relay(Arc<Inner>);

struct Inner {
    feed: Arc<FeedRevocations>,
    readers: Readers,
    /// Set by [`Relay::stop`]: open streams end.
    stopping: watch::Sender<bool>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("audience", &self.0.readers.audience())
            .field("records", &self.0.feed.shared().log.len())
            .field("subscribers", &self.subscribers())
            .finish()
    }
}

impl Relay {
    /// A relay of the feed `verifier` follows ([`crate::VerifierBuilder::revocation_feed`]
    /// or [`crate::VerifierBuilder::revocation_feed_url`]): relays chain.
    pub fn new(verifier: &Verifier) -> Result<Relay, RelayError> {
        let feed = verifier.0.feed.clone().ok_or(RelayError::NoFeed)?;
        let readers = Readers::new(verifier, &feed).map_err(RelayError::Policy)?;
        feed.shared().relay.serving.store(true, Ordering::Relaxed);
        Ok(Relay(Arc::new(Inner {
            feed,
            readers,
            stopping: watch::Sender::new(false),
        })))
    }

    /// `GET /v1/revocations` and `GET /v1/revocations/stream`, to merge into a service's
    /// router.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/revocations", get(page))
            .route("/v1/revocations/stream", get(stream::stream))
            .with_state(self.clone())
    }

    /// Ends every open stream and every stream opened from now on (at shutdown: a
    /// graceful shutdown waits for open responses, and a stream never ends by itself).
    /// Readers resume elsewhere or later with `Last-Event-ID`.
    pub fn stop(&self) {
        self.0.stopping.send_replace(true);
    }

    /// The audience readers' tokens must name: `<issuer>/v1/revocations`.
    pub fn audience(&self) -> &str {
        self.0.readers.audience()
    }

    /// Open streams.
    pub fn subscribers(&self) -> usize {
        self.shared().relay.subscribers.load(Ordering::Relaxed)
    }

    /// Records sent so far, on pages and streams.
    pub fn records_served(&self) -> u64 {
        self.shared().relay.records.load(Ordering::Relaxed)
    }

    /// The relay's metrics in the Prometheus text format (`wristband_relay_*`), as
    /// [`FeedRevocations::prometheus_text`] includes them.
    pub fn prometheus_text(&self) -> String {
        crate::feed::relay_prometheus_text(self.shared())
    }

    fn shared(&self) -> &Shared {
        self.0.feed.shared()
    }

    /// True while the relay must not vouch for freshness: stale under fail-closed.
    fn withholding(&self) -> bool {
        let shared = self.shared();
        shared.policy == StalenessPolicy::FailClosed && shared.is_stale()
    }

    /// Authorizes a request, then checks that the relay may serve.
    async fn admit(
        &self,
        headers: &HeaderMap,
    ) -> Result<Arc<wristband_jose::Verified<wristband_jose::Claims>>, Refusal> {
        let counters = &self.shared().relay;
        let reader = self.0.readers.authorize(headers).await.inspect_err(|_| {
            counters.refused.fetch_add(1, Ordering::Relaxed);
        })?;
        if self.withholding() {
            counters.unavailable.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::Unavailable);
        }
        Ok(reader)
    }
}

/// `GET /v1/revocations` query.
#[derive(Debug, Deserialize)]
struct PageQuery {
    after: Option<i64>,
}

/// `GET /v1/revocations?after=N`: a page from the relay's log.
async fn page(
    State(relay): State<Relay>,
    headers: HeaderMap,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return Refusal::BadCursor.into_response();
    };
    if let Err(refusal) = relay.admit(&headers).await {
        return refusal.into_response();
    }
    let after = q.after.unwrap_or(0);
    let shared = relay.shared();
    let records = shared.log.after(after, PAGE, relay.0.readers.now());
    let cursor = records.last().map_or(after, |r| r.id);
    let mut body =
        String::with_capacity(64 + records.iter().map(|r| r.json.len() + 1).sum::<usize>());
    body.push_str(r#"{"revocations":["#);
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&r.json);
    }
    let _ = write!(
        body,
        r#"],"cursor":{cursor},"has_more":{}}}"#,
        records.len() == PAGE
    );
    shared.relay.pages.fetch_add(1, Ordering::Relaxed);
    shared
        .relay
        .records
        .fetch_add(records.len() as u64, Ordering::Relaxed);
    (
        StatusCode::OK,
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response()
}
