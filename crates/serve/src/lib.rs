//! A hardened HTTP/1.1 serve loop for axum routers, shared by every server of the
//! workspace (the auth service, API services built on `wristband-verify`, the gate).
//!
//! `axum::serve` keeps a connection for as long as the client likes: a client that sends
//! half a request header and stops, or an idle keep-alive connection, holds a file
//! descriptor forever, and a few thousand of them lock everyone out. [`serve`] bounds every
//! connection's time and their number ([`ServeLimits`]):
//!
//! - **Header read timeout** (default 10 s): a connection must deliver a complete request
//!   head within this time of its first byte (or of being accepted); otherwise it is
//!   closed.
//! - **Idle timeout** (default 60 s): a keep-alive connection waiting for its next
//!   request is closed after this long. It is longer than the header timeout so that
//!   clients re-using connections in bursts keep them; it is shorter than the usual
//!   proxy/load-balancer idle timeouts, which close first and spare a race.
//! - **Request body timeout** (default 30 s): the body must be received within this time of
//!   the request head. A stalled body ends the request with `408 Request Timeout` and the
//!   JSON body `{"error":"request_timeout","error_description":...}`, and the connection is
//!   closed.
//! - **Connection cap** (default: the soft file limit minus a reserve, see
//!   [`ServeLimits::connection_cap`]). The cap *leaves room to serve*: when it is reached, a
//!   new connection is admitted by closing the connections that have waited longest without
//!   a request in flight (idle keep-alive connections or ones still sending their header;
//!   a sixteenth of the cap at a time, so that accepting keeps pace with a flood).
//!   A connection with a request in flight is never closed to make room; only when every
//!   connection is busy does accepting wait, the new clients queueing in the kernel's
//!   backlog. So a client holding the cap with half-sent requests cannot lock anyone out.
//!
//! [`TrustedProxies`] finds the client's address behind trusted reverse proxies
//! (`X-Forwarded-For`).
//!
//! [`shutdown_signal`] is the SIGINT/SIGTERM future a service process passes to [`serve`].
//!
//! [`raise_fd_limit`] raises the soft file-descriptor limit to the hard one; servers call
//! it at start, before the cap is derived from the limit.
//!
//! Handlers see the peer address as `axum::extract::ConnectInfo<L::Addr>`, as with
//! `into_make_service_with_connect_info`. On shutdown, accepting stops, idle connections
//! close, and requests in flight are answered before [`serve`] returns, as with
//! `axum::serve(..).with_graceful_shutdown(..)`.
//!
//! ```
//! use std::time::Duration;
//!
//! use axum::routing::get;
//! use wristband_serve::{raise_fd_limit, serve, ServeLimits};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let files = raise_fd_limit()?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let app = axum::Router::new().route("/healthz", get(|| async { "ok" }));
//! let limits = ServeLimits {
//!     header_read_timeout: Duration::from_secs(5),
//!     ..ServeLimits::default()
//! };
//! assert!(limits.connection_cap(files) < files as usize);
//! // A real service passes its SIGTERM future; this one stops at once.
//! serve(listener, app, limits, async {}).await?;
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

mod body;
mod conn;
mod forwarded;
mod shutdown;

pub use forwarded::TrustedProxies;
pub use shutdown::shutdown_signal;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::serve::Listener;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tower::ServiceExt;

use crate::body::{GuardedBody, TimedBody};
use crate::conn::{Conn, Registry};

/// Time and number limits on the connections of [`serve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// Longest time from a connection's acceptance, or from the first byte of its next
    /// request, to the end of the request head.
    pub header_read_timeout: Duration,
    /// Longest time a keep-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Longest time from the end of a request head to the end of its body.
    pub request_body_timeout: Duration,
    /// Most connections open at once; `None` derives it from the file limit
    /// ([`ServeLimits::connection_cap`]).
    pub max_connections: Option<usize>,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            request_body_timeout: Duration::from_secs(30),
            max_connections: None,
        }
    }
}

/// The fewest connections an automatic cap allows.
const MIN_AUTOMATIC_CAP: usize = 16;
/// File descriptors always kept out of the automatic cap (database, logs, outgoing
/// connections, the listener itself).
const MIN_RESERVE: u64 = 64;

impl ServeLimits {
    /// The connection cap in force with `file_limit` open files: `max_connections` when set
    /// (and not 0), otherwise the file limit minus a reserve of an eighth (at least 64),
    /// never fewer than 16.
    pub fn connection_cap(&self, file_limit: u64) -> usize {
        match self.max_connections {
            Some(n) if n > 0 => n,
            _ => {
                let reserve = (file_limit / 8).max(MIN_RESERVE);
                usize::try_from(file_limit.saturating_sub(reserve))
                    .unwrap_or(usize::MAX)
                    .max(MIN_AUTOMATIC_CAP)
            }
        }
    }
}

/// Raises the soft limit on open files to the hard limit and returns the soft limit in
/// force afterwards. Where there is no such limit (not Unix), returns 1024.
pub fn raise_fd_limit() -> std::io::Result<u64> {
    #[cfg(unix)]
    {
        rlimit::increase_nofile_limit(rlimit::INFINITY)
    }
    #[cfg(not(unix))]
    {
        Ok(1024)
    }
}

/// The soft limit on open files now in force (1024 where there is none).
pub fn fd_limit() -> u64 {
    #[cfg(unix)]
    {
        rlimit::Resource::NOFILE
            .get_soft()
            .unwrap_or(1024)
            .min(u64::from(u32::MAX))
    }
    #[cfg(not(unix))]
    {
        1024
    }
}

/// Serves `router` on `listener` with `limits` until `shutdown` completes, then stops
/// accepting and returns once every connection has closed (requests in flight are
/// answered first).
///
/// Handlers find the peer address as `ConnectInfo<L::Addr>`. The connection cap, when not
/// set, is derived from the soft file limit at the time of the call.
pub async fn serve<L>(
    mut listener: L,
    router: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: Listener,
    L::Addr: Clone + Send + Sync + 'static,
{
    let cap = limits.connection_cap(fd_limit());
    tracing::debug!(
        max_connections = cap,
        header_read_timeout = ?limits.header_read_timeout,
        idle_timeout = ?limits.idle_timeout,
        request_body_timeout = ?limits.request_body_timeout,
        "serving"
    );
    // Evicting a few at a time keeps accepting fast while a flood of slow clients
    // replaces the waiting connections.
    let evict_batch = (cap / 16).max(1);
    let registry = Arc::new(Registry::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    'accept: loop {
        let (io, addr) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break 'accept,
        };
        // At the cap, make room before serving the new connection: close the
        // longest-waiting connection without a request in flight, or wait for one to
        // finish or close. Meanwhile further clients queue in the kernel's backlog.
        while registry.len() >= cap {
            registry.evict(evict_batch);
            tokio::select! {
                () = registry.changed() => {}
                () = &mut shutdown => break 'accept,
            }
        }
        let conn = registry.add();
        tokio::spawn(serve_connection(
            io,
            addr,
            router.clone(),
            limits,
            conn,
            Arc::clone(&registry),
            stop_rx.clone(),
        ));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    while registry.len() > 0 {
        registry.changed().await;
    }
    Ok(())
}

/// The body of the 408 answer to a stalled request body.
const BODY_TIMEOUT_JSON: &str = r#"{"error":"request_timeout","error_description":"the request body was not received in time"}"#;

/// Serves one connection until it ends, times out, is evicted, or shutdown drains it.
async fn serve_connection<I, A>(
    io: I,
    addr: A,
    router: Router,
    limits: ServeLimits,
    conn: Arc<Conn>,
    registry: Arc<Registry>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    A: Clone + Send + Sync + 'static,
{
    let service = {
        let conn = Arc::clone(&conn);
        hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
            let router = router.clone();
            let addr = addr.clone();
            let conn = Arc::clone(&conn);
            async move {
                let guard = conn.request_started();
                let timed_out = Arc::new(std::sync::atomic::AtomicBool::new(false));
                let mut req = req.map(|b| {
                    axum::body::Body::new(TimedBody::new(
                        b,
                        limits.request_body_timeout,
                        Arc::clone(&timed_out),
                    ))
                });
                req.extensions_mut().insert(ConnectInfo(addr));
                let response = match router.oneshot(req).await {
                    Ok(r) => r,
                    Err(never) => match never {},
                };
                let response = if timed_out.load(std::sync::atomic::Ordering::Acquire) {
                    body_timeout_response()
                } else {
                    response
                };
                Ok::<_, Infallible>(response.map(|b| GuardedBody::new(b, guard)))
            }
        })
    };
    let io = conn::TrackedIo::new(io, Arc::clone(&conn));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // The header and idle timeouts are kept here, per connection state: hyper's own
        // header timeout also runs while a keep-alive connection waits, which would make
        // the idle timeout the header timeout.
        .header_read_timeout(None)
        .keep_alive(true);
    let http = builder.serve_connection(TokioIo::new(io), service);
    let mut http = std::pin::pin!(http);
    let mut draining = *stop.borrow();
    if draining {
        http.as_mut().graceful_shutdown();
    }
    loop {
        let Some(deadline) = conn.deadline(&limits) else {
            tracing::debug!("connection evicted to make room");
            break;
        };
        tokio::select! {
            result = http.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                break;
            }
            () = sleep_until(deadline) => {
                if conn
                    .deadline(&limits)
                    .flatten()
                    .is_some_and(|d| d <= tokio::time::Instant::now())
                {
                    tracing::debug!("connection closed: header or idle timeout");
                    break;
                }
            }
            () = conn.changed() => {}
            _ = stop.changed(), if !draining => {
                draining = true;
                http.as_mut().graceful_shutdown();
            }
        }
    }
    registry.remove(&conn);
}

/// Sleeps until `deadline`, or forever for `None`.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// `408` with the JSON error body, closing the connection.
fn body_timeout_response() -> axum::response::Response {
    let mut r = axum::response::Response::new(axum::body::Body::from(BODY_TIMEOUT_JSON));
    *r.status_mut() = http::StatusCode::REQUEST_TIMEOUT;
    let headers = r.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    r
}
