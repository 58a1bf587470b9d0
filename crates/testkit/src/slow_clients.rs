//! Slow clients: many connections that send half a request header and then stop, to test
//! that a server closes them and keeps serving everyone else.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// The start of a request whose header never ends (no blank line).
pub const HALF_SENT_REQUEST: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n";

/// Connections that each sent [`HALF_SENT_REQUEST`], and how many attempts failed.
#[derive(Debug)]
pub struct HalfSent {
    /// The open connections.
    pub streams: Vec<TcpStream>,
    /// Connections that could not be made (or written to) within 3 seconds.
    pub failed: usize,
}

/// Opens `n` connections to `addr` (up to 200 at a time), each sending half a request
/// header and then nothing. The caller's file limit must allow `n` more descriptors.
pub async fn open_half_sent(addr: SocketAddr, n: usize) -> HalfSent {
    let permits = Arc::new(Semaphore::new(200));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let permit = Arc::clone(&permits).acquire_owned().await.unwrap();
        tasks.spawn(async move {
            let _permit = permit;
            tokio::time::timeout(Duration::from_secs(3), async {
                let mut s = TcpStream::connect(addr).await.ok()?;
                s.write_all(HALF_SENT_REQUEST).await.ok()?;
                Some(s)
            })
            .await
            .ok()
            .flatten()
        });
    }
    let mut streams = Vec::with_capacity(n);
    let mut failed = 0;
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            Some(s) => streams.push(s),
            None => failed += 1,
        }
    }
    HalfSent { streams, failed }
}

/// How many of `streams` the server closes (EOF or reset) before `deadline`; each stream
/// is read until it closes, and whatever it says is ignored.
pub async fn count_closed_by(streams: Vec<TcpStream>, deadline: Instant) -> usize {
    let mut tasks = tokio::task::JoinSet::new();
    for mut s in streams {
        tasks.spawn(async move {
            let mut buf = [0u8; 1024];
            tokio::time::timeout_at(deadline, async {
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
            })
            .await
            .is_ok()
        });
    }
    let mut closed = 0;
    while let Some(r) = tasks.join_next().await {
        if r.unwrap() {
            closed += 1;
        }
    }
    closed
}
