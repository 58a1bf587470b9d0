//! The state of each connection (waiting for a header, idle, busy, evicted) and the
//! registry of open connections that the accept loop draws on to make room.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::ServeLimits;

/// Where a connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Accepted, or the first bytes of the next request have come: the head must be
    /// complete within the header timeout.
    Header,
    /// Keep-alive, waiting for the next request.
    Idle,
    /// A request is in flight (head received, response not yet fully sent).
    Busy,
    /// Chosen to make room: to be closed.
    Evicted,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    since: Instant,
}

/// One open connection.
#[derive(Debug)]
pub(crate) struct Conn {
    id: u64,
    state: Mutex<State>,
    wake: Notify,
    /// The registry's signal: a connection closed or stopped being busy.
    registry_changed: Arc<Notify>,
}

impl Conn {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// When the connection must close unless something happens: `None` when evicted (close
    /// now), `Some(None)` while a request is in flight (no deadline).
    pub(crate) fn deadline(&self, limits: &ServeLimits) -> Option<Option<Instant>> {
        let s = self.state();
        match s.phase {
            Phase::Evicted => None,
            Phase::Busy => Some(None),
            Phase::Header => Some(Some(s.since + limits.header_read_timeout)),
            Phase::Idle => Some(Some(s.since + limits.idle_timeout)),
        }
    }

    /// Resolves when the state changed since the last call.
    pub(crate) async fn changed(&self) {
        self.wake.notified().await;
    }

    /// A request head was received: the connection is busy until the guard drops (when
    /// the response has been sent, or abandoned).
    pub(crate) fn request_started(self: &Arc<Self>) -> InFlight {
        {
            let mut s = self.state();
            if s.phase != Phase::Evicted {
                s.phase = Phase::Busy;
                s.since = Instant::now();
            }
        }
        self.wake.notify_one();
        InFlight {
            conn: Arc::clone(self),
        }
    }

    /// Bytes arrived: an idle connection starts its next request head.
    fn bytes_received(&self) {
        let mut s = self.state();
        if s.phase == Phase::Idle {
            s.phase = Phase::Header;
            s.since = Instant::now();
            drop(s);
            self.wake.notify_one();
        }
    }
}

/// A request in flight on a connection; dropping it makes the connection idle.
#[derive(Debug)]
pub(crate) struct InFlight {
    conn: Arc<Conn>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        {
            let mut s = self.conn.state();
            if s.phase == Phase::Busy {
                s.phase = Phase::Idle;
                s.since = Instant::now();
            }
        }
        self.conn.wake.notify_one();
        self.conn.registry_changed.notify_one();
    }
}

/// The open connections.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
    changed: Arc<Notify>,
}

impl Registry {
    fn conns(&self) -> MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Open connections.
    pub(crate) fn len(&self) -> usize {
        self.conns().len()
    }

    /// Registers a newly accepted connection, waiting for its request head.
    pub(crate) fn add(&self) -> Arc<Conn> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            id,
            state: Mutex::new(State {
                phase: Phase::Header,
                since: Instant::now(),
            }),
            wake: Notify::new(),
            registry_changed: Arc::clone(&self.changed),
        });
        self.conns().insert(id, Arc::clone(&conn));
        conn
    }

    /// Forgets a closed connection.
    pub(crate) fn remove(&self, conn: &Conn) {
        self.conns().remove(&conn.id);
        self.changed.notify_one();
    }

    /// Resolves after a connection closed or stopped being busy (or spuriously).
    pub(crate) async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Marks for closing the `n` connections that have waited longest without a request
    /// in flight, unless some are already being closed. Busy connections are never chosen.
    pub(crate) fn evict(&self, n: usize) {
        let conns = self.conns();
        let mut waiting = Vec::new();
        for conn in conns.values() {
            let s = conn.state();
            match s.phase {
                Phase::Evicted => return,
                Phase::Busy => {}
                Phase::Header | Phase::Idle => waiting.push((s.since, conn)),
            }
        }
        waiting.sort_unstable_by_key(|(since, _)| *since);
        for (_, conn) in waiting.into_iter().take(n) {
            let mut s = conn.state();
            // Still waiting: the lock was let go since the scan.
            if s.phase != Phase::Busy {
                s.phase = Phase::Evicted;
                drop(s);
                conn.wake.notify_one();
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// The connection's IO, telling its [`Conn`] when bytes arrive.
    pub(crate) struct TrackedIo<I> {
        #[pin]
        io: I,
        conn: Arc<Conn>,
    }
}

impl<I> TrackedIo<I> {
    pub(crate) fn new(io: I, conn: Arc<Conn>) -> Self {
        TrackedIo { io, conn }
    }
}

impl<I: AsyncRead> AsyncRead for TrackedIo<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let result = this.io.poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.conn.bytes_received();
        }
        result
    }
}

impl<I: AsyncWrite> AsyncWrite for TrackedIo<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.project().io.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.project().io.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.project().io.poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.project().io.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}
