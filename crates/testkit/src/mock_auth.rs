//! A mock auth service for verifier tests: RFC 8414 metadata, JWKS, client credentials,
//! introspection and the revocation feed (snapshot and Server-Sent Events), with
//! controllable records, failures and disconnects, and counters of what it was asked.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use wristband_jose::Jwks;

/// The resource-server client the mock knows.
pub const CLIENT_ID: &str = "rs-test";
/// Its secret (with characters that must be form-encoded in HTTP Basic).
pub const CLIENT_SECRET: &str = "s3cret:with spaces&more";

#[derive(Default)]
struct Counters {
    token: AtomicUsize,
    snapshot: AtomicUsize,
    stream: AtomicUsize,
    introspect: AtomicUsize,
    unauthorized: AtomicUsize,
    jwks: AtomicUsize,
}

struct Shared {
    jwks: Mutex<Jwks>,
    issuer: String,
    records: Mutex<Vec<Value>>,
    /// Bumped on every new record.
    added: watch::Sender<usize>,
    /// Bumped to end every open stream.
    generation: watch::Sender<u64>,
    page_size: Mutex<usize>,
    heartbeat: Mutex<Duration>,
    stream_status: Mutex<Option<u16>>,
    snapshot_status: Mutex<Option<u16>>,
    token_ttl: Mutex<u64>,
    /// Issued bearer tokens and when they stop being accepted.
    tokens: Mutex<HashMap<String, Instant>>,
    feed_bearers: Mutex<Vec<String>>,
    last_event_ids: Mutex<Vec<Option<String>>>,
    introspection: Mutex<HashMap<String, Value>>,
    counters: Counters,
}

struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// The mock auth service, on `127.0.0.1:0`. The issuer is `http://127.0.0.1:PORT`.
pub struct MockAuth {
    shared: Arc<Shared>,
    addr: SocketAddr,
    running: Option<Running>,
}

impl MockAuth {
    /// Starts serving `jwks` with an empty revocation feed.
    pub async fn start(jwks: Jwks) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            jwks: Mutex::new(jwks),
            issuer: format!("http://{addr}"),
            records: Mutex::new(Vec::new()),
            added: watch::channel(0).0,
            generation: watch::channel(0).0,
            page_size: Mutex::new(500),
            heartbeat: Mutex::new(Duration::from_secs(15)),
            stream_status: Mutex::new(None),
            snapshot_status: Mutex::new(None),
            token_ttl: Mutex::new(300),
            tokens: Mutex::new(HashMap::new()),
            feed_bearers: Mutex::new(Vec::new()),
            last_event_ids: Mutex::new(Vec::new()),
            introspection: Mutex::new(HashMap::new()),
            counters: Counters::default(),
        });
        let mut mock = MockAuth {
            shared,
            addr,
            running: None,
        };
        mock.serve(listener);
        mock
    }

    fn serve(&mut self, listener: TcpListener) {
        let app = Router::new()
            .route("/.well-known/oauth-authorization-server", get(metadata))
            .route("/jwks.json", get(jwks))
            .route("/oauth2/token", post(token))
            .route("/oauth2/introspect", post(introspect))
            .route("/v1/revocations", get(snapshot))
            .route("/v1/revocations/stream", get(stream))
            .with_state(Arc::clone(&self.shared));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        self.running = Some(Running { stop, task });
    }

    /// The issuer URL.
    pub fn issuer(&self) -> String {
        self.shared.issuer.clone()
    }

    /// The address listened on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Adds a record; returns its id. `kind` is `jti`, `sid`, `sub` or `kid`.
    pub fn push(&self, kind: &str, value: &str, before: Option<u64>, expires_at: u64) -> i64 {
        let id = {
            let mut records = self.shared.records.lock().unwrap();
            let id = records.len() as i64 + 1;
            let mut r = json!({"id": id, "kind": kind, "value": value, "expires_at": expires_at});
            if let Some(b) = before {
                r["before"] = json!(b);
            }
            records.push(r);
            id
        };
        self.shared.added.send_modify(|n| *n += 1);
        id
    }

    /// Revokes a `jti` until `expires_at`.
    pub fn revoke_jti(&self, jti: &str, expires_at: u64) -> i64 {
        self.push("jti", jti, None, expires_at)
    }

    /// Revokes a signing key by `kid` until `expires_at` (an emergency revocation). The
    /// record is sent as the auth service sends it, with `"before": null`.
    pub fn revoke_kid(&self, kid: &str, expires_at: u64) -> i64 {
        let id = {
            let mut records = self.shared.records.lock().unwrap();
            let id = records.len() as i64 + 1;
            records.push(json!({
                "id": id, "kind": "kid", "value": kid, "before": null, "expires_at": expires_at
            }));
            id
        };
        self.shared.added.send_modify(|n| *n += 1);
        id
    }

    /// Replaces the served key set.
    pub fn set_jwks(&self, jwks: Jwks) {
        *self.shared.jwks.lock().unwrap() = jwks;
    }

    /// JWKS requests so far.
    pub fn jwks_fetches(&self) -> usize {
        self.shared.counters.jwks.load(Ordering::SeqCst)
    }

    /// Ends every open stream now (clients see the connection close).
    pub fn disconnect_streams(&self) {
        self.shared.generation.send_modify(|g| *g += 1);
    }

    /// Answers stream requests with this status (`None`: stream normally). Open streams
    /// are not affected.
    pub fn set_stream_status(&self, status: Option<u16>) {
        *self.shared.stream_status.lock().unwrap() = status;
    }

    /// Answers snapshot requests with this status (`None`: normally).
    pub fn set_snapshot_status(&self, status: Option<u16>) {
        *self.shared.snapshot_status.lock().unwrap() = status;
    }

    /// Records per snapshot page (default 500).
    pub fn set_page_size(&self, n: usize) {
        *self.shared.page_size.lock().unwrap() = n.max(1);
    }

    /// Interval between heartbeat comments on streams opened from now on (default 15 s).
    pub fn set_heartbeat(&self, every: Duration) {
        *self.shared.heartbeat.lock().unwrap() = every;
    }

    /// `expires_in` of tokens issued from now on; the mock refuses them after it.
    pub fn set_token_ttl(&self, secs: u64) {
        *self.shared.token_ttl.lock().unwrap() = secs;
    }

    /// What introspecting `token` answers (`{"active": false}` when never set).
    pub fn set_introspection(&self, token: &str, answer: Value) {
        self.shared
            .introspection
            .lock()
            .unwrap()
            .insert(token.to_owned(), answer);
    }

    /// Token requests so far.
    pub fn token_requests(&self) -> usize {
        self.shared.counters.token.load(Ordering::SeqCst)
    }

    /// Snapshot page requests so far.
    pub fn snapshot_requests(&self) -> usize {
        self.shared.counters.snapshot.load(Ordering::SeqCst)
    }

    /// Stream requests so far (answered or refused).
    pub fn stream_requests(&self) -> usize {
        self.shared.counters.stream.load(Ordering::SeqCst)
    }

    /// Introspection requests so far.
    pub fn introspection_requests(&self) -> usize {
        self.shared.counters.introspect.load(Ordering::SeqCst)
    }

    /// Feed requests refused for a missing, unknown or expired bearer token.
    pub fn unauthorized_requests(&self) -> usize {
        self.shared.counters.unauthorized.load(Ordering::SeqCst)
    }

    /// The distinct bearer tokens feed requests carried, in order of first use.
    pub fn feed_bearers(&self) -> Vec<String> {
        self.shared.feed_bearers.lock().unwrap().clone()
    }

    /// The `Last-Event-ID` of every stream request, in order.
    pub fn last_event_ids(&self) -> Vec<Option<String>> {
        self.shared.last_event_ids.lock().unwrap().clone()
    }

    /// Stops listening; connections are refused until [`MockAuth::restart`].
    pub async fn stop(&mut self) {
        self.disconnect_streams();
        if let Some(running) = self.running.take() {
            let _ = running.stop.send(());
            let abort = running.task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), running.task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }

    /// Listens again on the same port, with the same state.
    pub async fn restart(&mut self) {
        self.stop().await;
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }
}

impl Drop for MockAuth {
    fn drop(&mut self) {
        self.disconnect_streams();
        if let Some(running) = self.running.take() {
            running.task.abort();
        }
    }
}

async fn metadata(State(s): State<Arc<Shared>>) -> Response {
    let i = &s.issuer;
    Json(json!({
        "issuer": i,
        "jwks_uri": format!("{i}/jwks.json"),
        "token_endpoint": format!("{i}/oauth2/token"),
        "introspection_endpoint": format!("{i}/oauth2/introspect"),
        "revocation_feed_endpoint": format!("{i}/v1/revocations"),
        "revocation_stream_endpoint": format!("{i}/v1/revocations/stream"),
    }))
    .into_response()
}

async fn jwks(State(s): State<Arc<Shared>>) -> Response {
    s.counters.jwks.fetch_add(1, Ordering::SeqCst);
    let body = serde_json::to_string(&*s.jwks.lock().unwrap()).unwrap();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn basic_ok(headers: &HeaderMap) -> bool {
    let Some(b64) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    else {
        return false;
    };
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64) else {
        return false;
    };
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let Some((id, secret)) = raw.split_once(':') else {
        return false;
    };
    let dec = |s: &str| {
        url::form_urlencoded::parse(format!("v={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    dec(id).as_deref() == Some(CLIENT_ID) && dec(secret).as_deref() == Some(CLIENT_SECRET)
}

fn invalid_client() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Basic realm=\"wristband\"")],
        Json(json!({"error": "invalid_client"})),
    )
        .into_response()
}

async fn token(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    s.counters.token.fetch_add(1, Ordering::SeqCst);
    if !basic_ok(&headers) {
        return invalid_client();
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    let ttl = *s.token_ttl.lock().unwrap();
    let n = s.counters.token.load(Ordering::SeqCst);
    let token = format!("cc-token-{n}");
    s.tokens
        .lock()
        .unwrap()
        .insert(token.clone(), Instant::now() + Duration::from_secs(ttl));
    Json(json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": "revocations:read",
    }))
    .into_response()
}

async fn introspect(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    s.counters.introspect.fetch_add(1, Ordering::SeqCst);
    if !basic_ok(&headers) {
        return invalid_client();
    }
    let answer = form
        .get("token")
        .and_then(|t| s.introspection.lock().unwrap().get(t).cloned())
        .unwrap_or_else(|| json!({"active": false}));
    Json(answer).into_response()
}

/// Checks the feed's bearer token; records it.
fn feed_auth(s: &Shared, headers: &HeaderMap) -> bool {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let ok = bearer.is_some_and(|b| {
        s.tokens
            .lock()
            .unwrap()
            .get(b)
            .is_some_and(|until| Instant::now() < *until)
    });
    if let (true, Some(b)) = (ok, bearer) {
        let mut seen = s.feed_bearers.lock().unwrap();
        if !seen.iter().any(|x| x == b) {
            seen.push(b.to_owned());
        }
    }
    if !ok {
        s.counters.unauthorized.fetch_add(1, Ordering::SeqCst);
    }
    ok
}

async fn snapshot(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    s.counters.snapshot.fetch_add(1, Ordering::SeqCst);
    if !feed_auth(&s, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if let Some(code) = *s.snapshot_status.lock().unwrap() {
        return StatusCode::from_u16(code).unwrap().into_response();
    }
    let after: i64 = q.get("after").and_then(|a| a.parse().ok()).unwrap_or(0);
    let page = *s.page_size.lock().unwrap();
    let records: Vec<Value> = s
        .records
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r["id"].as_i64().unwrap() > after)
        .take(page)
        .cloned()
        .collect();
    let cursor = records.last().map_or(after, |r| r["id"].as_i64().unwrap());
    Json(json!({
        "revocations": records,
        "cursor": cursor,
        "has_more": records.len() == page,
    }))
    .into_response()
}

struct StreamState {
    shared: Arc<Shared>,
    cursor: i64,
    added: watch::Receiver<usize>,
    generation: watch::Receiver<u64>,
    heartbeat: Duration,
}

async fn stream(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    s.counters.stream.fetch_add(1, Ordering::SeqCst);
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    s.last_event_ids.lock().unwrap().push(last.clone());
    if !feed_auth(&s, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if let Some(code) = *s.stream_status.lock().unwrap() {
        return StatusCode::from_u16(code).unwrap().into_response();
    }
    let mut generation = s.generation.subscribe();
    generation.mark_unchanged();
    let heartbeat = *s.heartbeat.lock().unwrap();
    let state = StreamState {
        cursor: last.and_then(|l| l.parse().ok()).unwrap_or(0),
        added: s.added.subscribe(),
        generation,
        heartbeat,
        shared: s,
    };
    let body = futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if st.generation.has_changed().unwrap_or(true) {
                return None;
            }
            st.added.mark_unchanged();
            let next = st
                .shared
                .records
                .lock()
                .unwrap()
                .iter()
                .find(|r| r["id"].as_i64().unwrap() > st.cursor)
                .cloned();
            if let Some(r) = next {
                let id = r["id"].as_i64().unwrap();
                st.cursor = id;
                let text = format!("event: revocation\nid: {id}\ndata: {r}\n\n");
                return Some((Ok::<_, Infallible>(Bytes::from(text)), st));
            }
            tokio::select! {
                _ = st.added.changed() => {}
                _ = st.generation.changed() => return None,
                () = tokio::time::sleep(st.heartbeat) => {
                    return Some((Ok(Bytes::from_static(b":heartbeat\n\n")), st));
                }
            }
        }
    });
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(body),
    )
        .into_response()
}
