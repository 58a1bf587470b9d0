//! The serve loop over real loopback sockets: header, idle and body timeouts, eviction at
//! the cap, requests in flight spared, the peer address and the graceful drain.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::routing::{get, post};
use axum::Router;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, Semaphore};
use tokio::time::Instant;
use wristband_serve::{serve, ServeLimits};

const HALF_SENT: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n";
const FULL_GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Permits released one by one to let `/wait` answer.
    gate: Arc<Semaphore>,
    /// A message each time `/wait` is entered.
    entered: tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<()>>,
}

impl Server {
    async fn start(limits: ServeLimits) -> Server {
        let gate = Arc::new(Semaphore::new(0));
        let g = Arc::clone(&gate);
        let (entered_tx, entered) = tokio::sync::mpsc::unbounded_channel();
        let app = Router::new()
            .route("/", get(|| async { "ok" }))
            .route(
                "/peer",
                get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
            )
            .route(
                "/wait",
                get(move || async move {
                    entered_tx.send(()).unwrap();
                    g.acquire().await.unwrap().forget();
                    "released"
                }),
            )
            .route("/echo", post(|body: axum::body::Bytes| async move { body }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let done = tokio::spawn(serve(listener, app, limits, async move {
            let _ = rx.await;
        }));
        Server {
            addr,
            stop: Some(tx),
            done,
            gate,
            entered: tokio::sync::Mutex::new(entered),
        }
    }

    /// Waits until a request has entered `/wait`.
    async fn wait_entered(&self) {
        tokio::time::timeout(Duration::from_secs(2), self.entered.lock().await.recv())
            .await
            .expect("the request reaches its handler")
            .unwrap();
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.unwrap()
    }
}

/// Reads until EOF or a reset, within `limit`; returns what was read. Panics if the
/// connection is still open after `limit`.
async fn read_until_closed(s: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    let result = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(result.is_ok(), "connection still open after {limit:?}");
    out
}

/// Reads one response (headers and a `content-length` body) off a keep-alive connection.
async fn read_response(s: &mut TcpStream, limit: Duration) -> String {
    tokio::time::timeout(limit, async {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before a full response: {out:?}");
            out.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&out).into_owned();
            if let Some(end) = text.find("\r\n\r\n") {
                let len = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if out.len() >= end + 4 + len {
                    return text;
                }
            }
        }
    })
    .await
    .expect("a response in time")
}

fn limits(header: u64, idle: u64, body: u64, max: Option<usize>) -> ServeLimits {
    ServeLimits {
        header_read_timeout: Duration::from_millis(header),
        idle_timeout: Duration::from_millis(idle),
        request_body_timeout: Duration::from_millis(body),
        max_connections: max,
    }
}

#[tokio::test]
async fn a_half_sent_request_is_closed_after_the_header_timeout() {
    let server = Server::start(limits(300, 60_000, 30_000, None)).await;
    let mut s = server.connect().await;
    s.write_all(HALF_SENT).await.unwrap();
    let start = Instant::now();
    read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(
        start.elapsed() >= Duration::from_millis(250),
        "closed too early: {:?}",
        start.elapsed()
    );
    // A silent connection is closed the same way.
    let mut silent = server.connect().await;
    read_until_closed(&mut silent, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout_not_the_header_timeout() {
    let server = Server::start(limits(200, 1_000, 30_000, None)).await;
    let mut s = server.connect().await;
    s.write_all(FULL_GET).await.unwrap();
    let r = read_response(&mut s, Duration::from_secs(5)).await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    let idle_from = Instant::now();
    read_until_closed(&mut s, Duration::from_secs(5)).await;
    let idle = idle_from.elapsed();
    assert!(
        idle >= Duration::from_millis(900),
        "closed after {idle:?}: before the idle timeout"
    );
}

#[tokio::test]
async fn a_keep_alive_connection_serves_several_requests() {
    let server = Server::start(limits(2_000, 2_000, 30_000, None)).await;
    let mut s = server.connect().await;
    for _ in 0..3 {
        s.write_all(FULL_GET).await.unwrap();
        let r = read_response(&mut s, Duration::from_secs(5)).await;
        assert!(r.starts_with("HTTP/1.1 200") && r.ends_with("ok"), "{r}");
    }
}

#[tokio::test]
async fn a_stalled_body_gets_408_with_the_json_error_and_the_connection_closes() {
    let server = Server::start(limits(5_000, 60_000, 300, None)).await;
    let mut s = server.connect().await;
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        .await
        .unwrap();
    let out = read_until_closed(&mut s, Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["error"], "request_timeout", "{text}");
    assert!(json["error_description"].is_string());
    // A body sent in time is served.
    let mut s = server.connect().await;
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        .await
        .unwrap();
    let r = read_response(&mut s, Duration::from_secs(5)).await;
    assert!(r.starts_with("HTTP/1.1 200") && r.ends_with("abc"), "{r}");
}

#[tokio::test]
async fn at_the_cap_the_oldest_waiting_connection_makes_room_for_a_new_client() {
    // Timeouts far beyond the test: only eviction can free a place.
    let server = Server::start(limits(60_000, 60_000, 60_000, Some(4))).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut s = server.connect().await;
        s.write_all(HALF_SENT).await.unwrap();
        held.push(s);
        // Accepted in order, so that the first is the oldest.
        tokio::task::yield_now().await;
    }
    let mut fresh = server.connect().await;
    fresh.write_all(FULL_GET).await.unwrap();
    let r = read_response(&mut fresh, Duration::from_secs(2)).await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    // The oldest half-sent request was closed to make room.
    read_until_closed(&mut held[0], Duration::from_secs(2)).await;
}

#[tokio::test]
async fn a_request_in_flight_is_never_evicted_and_accept_waits_while_all_are_busy() {
    let server = Server::start(limits(60_000, 60_000, 60_000, Some(2))).await;
    let mut busy = server.connect().await;
    busy.write_all(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    server.wait_entered().await;
    // A half-sent request, newer than the busy one.
    let mut waiting = server.connect().await;
    waiting.write_all(HALF_SENT).await.unwrap();
    // A third client: the waiting one makes room, not the busy one.
    let mut third = server.connect().await;
    third
        .write_all(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    read_until_closed(&mut waiting, Duration::from_secs(2)).await;
    server.wait_entered().await;
    // Both busy now: a fourth client is not served until one of them finishes.
    let mut fourth = server.connect().await;
    fourth.write_all(FULL_GET).await.unwrap();
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(300), fourth.read(&mut buf)).await;
    assert!(early.is_err(), "served while every connection was busy");
    server.gate.add_permits(2);
    for s in [&mut busy, &mut third] {
        let r = read_response(s, Duration::from_secs(2)).await;
        assert!(
            r.starts_with("HTTP/1.1 200") && r.ends_with("released"),
            "{r}"
        );
    }
    let r = read_response(&mut fourth, Duration::from_secs(2)).await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
}

#[tokio::test]
async fn handlers_see_the_peer_address() {
    let server = Server::start(ServeLimits::default()).await;
    let mut s = server.connect().await;
    let local = s.local_addr().unwrap();
    s.write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let r = read_response(&mut s, Duration::from_secs(2)).await;
    assert!(r.ends_with(&local.to_string()), "{r}");
}

#[tokio::test]
async fn shutdown_answers_the_request_in_flight_then_returns() {
    let mut server = Server::start(ServeLimits::default()).await;
    let mut busy = server.connect().await;
    busy.write_all(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    server.wait_entered().await;
    let mut idle = server.connect().await;
    idle.write_all(FULL_GET).await.unwrap();
    read_response(&mut idle, Duration::from_secs(2)).await;
    server.stop.take().unwrap().send(()).unwrap();
    // The idle connection closes at once; the busy one is still answered.
    read_until_closed(&mut idle, Duration::from_secs(2)).await;
    assert!(!server.done.is_finished());
    server.gate.add_permits(1);
    let r = read_response(&mut busy, Duration::from_secs(2)).await;
    assert!(r.ends_with("released"), "{r}");
    tokio::time::timeout(Duration::from_secs(2), server.done)
        .await
        .expect("serve returns after the drain")
        .unwrap()
        .unwrap();
}

#[test]
fn the_automatic_cap_keeps_a_reserve_of_file_descriptors() {
    let auto = ServeLimits::default();
    assert_eq!(auto.connection_cap(1024), 1024 - 128);
    assert_eq!(auto.connection_cap(512), 512 - 64);
    assert_eq!(auto.connection_cap(20), 16);
    let set = ServeLimits {
        max_connections: Some(100),
        ..ServeLimits::default()
    };
    assert_eq!(set.connection_cap(1024), 100);
}
