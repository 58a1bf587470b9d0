//! `GET /v1/revocations/stream`: Server-Sent Events read incrementally over a raw socket.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::net::TcpStream;

use crate::helpers::{claims, TestApp};

/// One SSE event.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Event {
    pub(crate) id: i64,
    pub(crate) event: String,
    pub(crate) data: Value,
}

/// A streaming response read a little at a time. HTTP/1.0 is used so that the body is
/// delimited by the connection's end rather than chunked.
pub(crate) struct SseReader {
    stream: TcpStream,
    buf: Vec<u8>,
    pub(crate) status: u16,
    pub(crate) headers: String,
}

impl SseReader {
    pub(crate) async fn open(t: &TestApp, token: Option<&str>, last_event_id: Option<i64>) -> Self {
        let addr = t.base.trim_start_matches("http://").to_owned();
        let stream = TcpStream::connect(&addr).await.unwrap();
        Self::open_on(stream, &addr, token, last_event_id).await
    }

    /// Sends the request on `stream` (connected to `addr`) and reads the response head.
    pub(crate) async fn open_on(
        stream: TcpStream,
        addr: &str,
        token: Option<&str>,
        last_event_id: Option<i64>,
    ) -> Self {
        let mut req = format!(
            "GET /v1/revocations/stream HTTP/1.0\r\nHost: {addr}\r\nAccept: text/event-stream\r\n"
        );
        if let Some(tok) = token {
            req.push_str(&format!("Authorization: Bearer {tok}\r\n"));
        }
        if let Some(id) = last_event_id {
            req.push_str(&format!("Last-Event-ID: {id}\r\n"));
        }
        req.push_str("\r\n");
        let mut written = 0;
        while written < req.len() {
            stream.writable().await.unwrap();
            match stream.try_write(&req.as_bytes()[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("write: {e}"),
            }
        }
        let mut r = SseReader {
            stream,
            buf: Vec::new(),
            status: 0,
            headers: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        let end = loop {
            if let Some(i) = find(&r.buf, b"\r\n\r\n") {
                break i;
            }
            assert!(r.fill(deadline).await, "no response head");
        };
        r.headers = String::from_utf8(r.buf[..end].to_vec()).unwrap();
        r.buf.drain(..end + 4);
        r.status = r.headers[9..12].parse().unwrap();
        r
    }

    /// Reads more bytes; false on end of stream or when `deadline` passes.
    async fn fill(&mut self, deadline: Instant) -> bool {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match tokio::time::timeout(left, self.stream.readable()).await {
                Err(_) => return false,
                Ok(r) => r.unwrap(),
            }
            let mut chunk = [0u8; 4096];
            match self.stream.try_read(&mut chunk) {
                Ok(0) => return false,
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return true;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// The next event (heartbeat comments skipped), or `None` if none comes within `wait`.
    pub(crate) async fn next(&mut self, wait: Duration) -> Option<Event> {
        let deadline = Instant::now() + wait;
        loop {
            while let Some(i) = find(&self.buf, b"\n\n") {
                let block = String::from_utf8(self.buf[..i].to_vec()).unwrap();
                self.buf.drain(..i + 2);
                let (mut id, mut event, mut data) = (None, String::new(), None);
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().parse().unwrap());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data = Some(serde_json::from_str(v.trim()).unwrap());
                    }
                }
                if let (Some(id), Some(data)) = (id, data) {
                    return Some(Event { id, event, data });
                }
            }
            if !self.fill(deadline).await {
                return None;
            }
        }
    }
}

impl SseReader {
    /// True when a heartbeat comment arrives within `wait` (anything before it is dropped).
    pub(crate) async fn heartbeat_within(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(i) = find(&self.buf, b": heartbeat\n\n") {
                self.buf.drain(..i + 13);
                return true;
            }
            if !self.fill(deadline).await {
                return false;
            }
        }
    }
}

#[tokio::test]
async fn every_open_stream_gets_the_feeds_heartbeat() {
    let t = TestApp::spawn().await;
    let token = reader_token(&t).await;
    let mut streams = Vec::new();
    for _ in 0..3 {
        streams.push(SseReader::open(&t, Some(&token), None).await);
    }
    // The default interval (15 s) sends nothing in the first second.
    assert!(
        !streams[0]
            .heartbeat_within(Duration::from_millis(1200))
            .await
    );
    t.app.feed_hub().set_heartbeat(Duration::from_millis(200));
    for s in &mut streams {
        assert!(
            s.heartbeat_within(Duration::from_secs(5)).await,
            "a heartbeat"
        );
        assert!(
            s.heartbeat_within(Duration::from_secs(5)).await,
            "and another"
        );
    }
    // Records still come between heartbeats.
    t.add_user("alice", "user").await;
    revoke_tokens_as_the_cli_does(&t, "alice").await;
    for s in &mut streams {
        let e = s.next(Duration::from_secs(5)).await.expect("the record");
        assert_eq!(e.data["kind"], "sub");
    }
}

/// Revokes every token of `user` as the CLI does: straight to the store, the server not told
/// (the feed's tail finds the record by its poll).
async fn revoke_tokens_as_the_cli_does(t: &TestApp, user: &str) {
    wristband_server::domain::users::revoke_tokens(
        &*t.store,
        t.app.record_lifetime(),
        user,
        t.now_ms(),
    )
    .await
    .unwrap();
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub(crate) async fn reader_token(t: &TestApp) -> String {
    let rs = t.resource_server("stream-reader").await;
    t.client_token(&rs).await
}

#[tokio::test]
async fn the_stream_replays_records_then_pushes_new_ones_within_a_second() {
    let t = TestApp::spawn().await;
    let token = reader_token(&t).await;
    t.add_user("alice", "user").await;
    let (at1, _) = t.tokens("alice").await;
    let (at2, _) = t.tokens("alice").await;
    assert_eq!(t.logout(&at1, None).await.status, 204);

    let mut sse = SseReader::open(&t, Some(&token), None).await;
    assert_eq!(sse.status, 200, "{}", sse.headers);
    assert!(
        sse.headers
            .to_ascii_lowercase()
            .contains("content-type: text/event-stream"),
        "{}",
        sse.headers
    );
    let c1 = claims(&at1);
    let e1 = sse
        .next(Duration::from_secs(5))
        .await
        .expect("replayed sid");
    let e2 = sse
        .next(Duration::from_secs(5))
        .await
        .expect("replayed jti");
    assert_eq!(e1.event, "revocation");
    assert_eq!(e1.data["kind"], "sid");
    assert_eq!(e1.data["value"], c1["sid"]);
    assert_eq!(e1.data["id"], e1.id);
    assert_eq!(e2.data["kind"], "jti");
    assert_eq!(e2.data["value"], c1["jti"]);
    assert!(e2.id > e1.id);
    assert_eq!(sse.next(Duration::from_millis(300)).await, None);

    // A revocation made while connected arrives promptly.
    let started = Instant::now();
    assert_eq!(t.logout(&at2, None).await.status, 204);
    let e3 = sse.next(Duration::from_secs(3)).await.expect("pushed sid");
    let e4 = sse.next(Duration::from_secs(3)).await.expect("pushed jti");
    let took = started.elapsed();
    let c2 = claims(&at2);
    assert_eq!(e3.data["value"], c2["sid"]);
    assert_eq!(e4.data["value"], c2["jti"]);
    assert!(e3.id > e2.id && e4.id > e3.id);
    assert!(took < Duration::from_secs(1), "took {took:?}");
    eprintln!("revocation reached the stream in {took:?}");
}

#[tokio::test]
async fn last_event_id_resumes_with_nothing_missed_and_nothing_repeated() {
    let t = TestApp::spawn().await;
    let token = reader_token(&t).await;
    t.add_user("alice", "user").await;
    let mut ats = Vec::new();
    for _ in 0..3 {
        ats.push(t.tokens("alice").await.0);
    }
    // Three sessions revoked by hand: three sid records.
    for at in &ats {
        let sid = claims(at)["sid"].as_str().unwrap().to_owned();
        let auth = format!("Bearer {at}");
        let r = t
            .client
            .send(
                http::Method::DELETE,
                &t.url(&format!("/v1/sessions/{sid}")),
                &[("authorization", &auth)],
                b"",
            )
            .await;
        assert_eq!(r.status, 204);
    }
    let mut first = SseReader::open(&t, Some(&token), None).await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(first.next(Duration::from_secs(5)).await.unwrap());
    }
    drop(first);

    // Reconnect after the second one: only the third, then whatever comes next.
    let mut resumed = SseReader::open(&t, Some(&token), Some(seen[1].id)).await;
    assert_eq!(resumed.status, 200);
    let third = resumed.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(third, seen[2]);
    assert_eq!(resumed.next(Duration::from_millis(300)).await, None);

    let (at, _) = t.tokens("alice").await;
    assert_eq!(t.logout(&at, None).await.status, 204);
    let next = resumed.next(Duration::from_secs(3)).await.unwrap();
    assert_eq!(next.data["value"], claims(&at)["sid"]);
    let last = resumed.next(Duration::from_secs(3)).await.unwrap();
    assert_eq!(last.data["value"], claims(&at)["jti"]);
    // Nothing is repeated, even across the stream's periodic poll.
    assert_eq!(resumed.next(Duration::from_millis(2500)).await, None);

    // Resuming from the last id gives nothing old.
    let mut tail = SseReader::open(&t, Some(&token), Some(last.id)).await;
    assert_eq!(tail.next(Duration::from_millis(500)).await, None);
}

#[tokio::test]
async fn records_written_by_another_process_reach_the_stream_by_polling() {
    let t = TestApp::spawn().await;
    let token = reader_token(&t).await;
    let id = t.add_user("alice", "user").await;
    let mut sse = SseReader::open(&t, Some(&token), None).await;
    assert_eq!(sse.next(Duration::from_millis(200)).await, None);
    // The CLI writes to the store directly; the server is not told.
    let started = Instant::now();
    revoke_tokens_as_the_cli_does(&t, "alice").await;
    let e = sse.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(e.data["kind"], "sub");
    assert_eq!(e.data["value"], id.as_str());
    assert_eq!(e.data["before"], t.now());
    assert!(started.elapsed() < Duration::from_millis(2500));
}

#[tokio::test]
async fn the_stream_needs_the_same_authorization_as_the_feed() {
    let t = TestApp::spawn().await;
    let sse = SseReader::open(&t, None, None).await;
    assert_eq!(sse.status, 401, "{}", sse.headers);
    let svc = t
        .add_client(
            "svc",
            "service",
            &[],
            &["wristband"],
            wristband_server::domain::TokenFormat::Jwt,
        )
        .await;
    let svc_at = t.client_token(&svc).await;
    let sse = SseReader::open(&t, Some(&svc_at), None).await;
    assert_eq!(sse.status, 403, "{}", sse.headers);

    let t = TestApp::spawn_with(|c| c.revocation_feed_public = true).await;
    t.add_user("alice", "user").await;
    let (at, _) = t.tokens("alice").await;
    assert_eq!(t.logout(&at, None).await.status, 204);
    let mut sse = SseReader::open(&t, None, None).await;
    assert_eq!(sse.status, 200, "{}", sse.headers);
    assert_eq!(
        sse.next(Duration::from_secs(5)).await.unwrap().data["kind"],
        "sid"
    );
}

impl SseReader {
    /// True when the server closes the stream within `wait` (events before the end are
    /// skipped); false when it is still open at the deadline.
    pub(crate) async fn ends_within(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match tokio::time::timeout(left, self.stream.readable()).await {
                Err(_) => return false,
                Ok(r) => r.unwrap(),
            }
            let mut chunk = [0u8; 4096];
            match self.stream.try_read(&mut chunk) {
                Ok(0) => return true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return true,
            }
        }
    }
}

/// The reader's state is checked at least every 5 s: allow one period and a margin.
const RECHECK_BOUND: Duration = Duration::from_secs(7);

/// Two resource servers, each with an open stream: the one under test, and a bystander
/// whose stream must stay open.
async fn two_readers(t: &TestApp) -> (crate::helpers::TestClient, String, SseReader, SseReader) {
    let rs = t.resource_server("watched").await;
    let at = t.client_token(&rs).await;
    let other = t.resource_server("bystander").await;
    let other_at = t.client_token(&other).await;
    let sse = SseReader::open(t, Some(&at), None).await;
    assert_eq!(sse.status, 200, "{}", sse.headers);
    let bystander = SseReader::open(t, Some(&other_at), None).await;
    assert_eq!(bystander.status, 200, "{}", bystander.headers);
    (rs, at, sse, bystander)
}

/// Issue 11, item 8: a removed client's open stream ends.
#[tokio::test]
async fn a_stream_ends_when_its_client_is_removed() {
    let t = TestApp::spawn().await;
    let (_, _, mut sse, mut bystander) = two_readers(&t).await;
    wristband_server::domain::oauth::remove_client(
        &*t.store,
        t.app.record_lifetime(),
        "watched",
        t.now_ms(),
    )
    .await
    .unwrap();
    assert!(sse.ends_within(RECHECK_BOUND).await, "the stream ended");
    assert!(
        !bystander.ends_within(Duration::from_millis(300)).await,
        "another reader's stream stays open"
    );
}

/// Issue 11, item 8: rotating a client's secret ends its open streams.
#[tokio::test]
async fn a_stream_ends_when_its_clients_secret_is_rotated() {
    let t = TestApp::spawn().await;
    let (_, _, mut sse, mut bystander) = two_readers(&t).await;
    wristband_server::domain::oauth::rotate_client_secret(
        &*t.store,
        t.app.record_lifetime(),
        "watched",
        t.now_ms(),
    )
    .await
    .unwrap();
    assert!(sse.ends_within(RECHECK_BOUND).await, "the stream ended");
    assert!(!bystander.ends_within(Duration::from_millis(300)).await);
}

/// Issue 11, item 8: revoking the reader's token (RFC 7009) ends its stream.
#[tokio::test]
async fn a_stream_ends_when_its_token_is_revoked() {
    let t = TestApp::spawn().await;
    let (rs, at, mut sse, mut bystander) = two_readers(&t).await;
    let r = t.revoke(&rs, &at, Some("access_token")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(sse.ends_within(RECHECK_BOUND).await, "the stream ended");
    assert!(!bystander.ends_within(Duration::from_millis(300)).await);
}

/// Issue 11, item 8: a stream does not outlive its token.
#[tokio::test]
async fn a_stream_ends_when_its_token_expires() {
    let t = TestApp::spawn().await;
    let rs = t.resource_server("watched").await;
    let at = t.client_token(&rs).await;
    let exp = claims(&at)["exp"].as_i64().unwrap();
    let mut sse = SseReader::open(&t, Some(&at), None).await;
    assert_eq!(sse.status, 200, "{}", sse.headers);
    t.advance(u64::try_from(exp - t.now() - 1).unwrap());
    assert!(
        !sse.ends_within(Duration::from_millis(1500)).await,
        "open until the token's exp"
    );
    t.advance(1);
    assert!(sse.ends_within(RECHECK_BOUND).await, "ended at exp");
}

/// Issue 11, item 8: when the stream ends at its token's expiry, a `wristband-verify`
/// follower reconnects with a fresh token and keeps receiving records.
#[tokio::test]
async fn a_follower_heals_after_its_stream_ends_at_expiry() {
    let t = TestApp::spawn().await;
    let rs = t.resource_server("follower").await;
    let v = wristband_verify::Verifier::builder(t.base.clone(), "wristband")
        .client_credentials(rs.id, rs.secret)
        .revocation_feed()
        .clock(t.clock.clone())
        .build()
        .await
        .unwrap();
    let feed = v.revocation_feed().unwrap();
    // Bounded real-time polling of the background follower.
    async fn until(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting: {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    until("the stream is open", || feed.stream_connects() >= 1).await;
    let connects = feed.stream_connects();
    t.advance(901);
    until("the follower reconnected", || {
        feed.stream_connects() > connects
    })
    .await;
    t.add_user("alice", "user").await;
    let (at, _) = t.tokens("alice").await;
    assert_eq!(t.logout(&at, None).await.status, 204);
    until("the new record arrived", || !feed.records().is_empty()).await;
}
