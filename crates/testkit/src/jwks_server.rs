//! A test JWKS server: RFC 8414 metadata plus a mutable JWKS, with failure modes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wristband_jose::Jwks;

/// How the server answers JWKS requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// The current JWKS, 200.
    Normal,
    /// An empty response with this status.
    Status(u16),
    /// 200 with a body that is not JSON.
    Garbage,
    /// 200 with valid JSON that is not a JWKS.
    WrongJson,
    /// The JWKS, after this delay.
    Slow(Duration),
    /// 200 with a JWKS-looking body of this many bytes.
    Huge(usize),
}

struct Shared {
    jwks: Mutex<Jwks>,
    mode: Mutex<Mode>,
    cache_control: Mutex<Option<String>>,
    issuer: Mutex<String>,
    jwks_uri: String,
    jwks_fetches: AtomicUsize,
    metadata_fetches: AtomicUsize,
}

struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// Serves `/.well-known/oauth-authorization-server` and `/jwks.json` on `127.0.0.1`.
///
/// The issuer is `http://127.0.0.1:PORT`. [`JwksServer::stop`] and
/// [`JwksServer::restart`] keep the port.
pub struct JwksServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    running: Option<Running>,
}

impl JwksServer {
    /// Starts serving `jwks` on a free port.
    pub async fn start(jwks: Jwks) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            jwks: Mutex::new(jwks),
            mode: Mutex::new(Mode::Normal),
            cache_control: Mutex::new(None),
            issuer: Mutex::new(format!("http://{addr}")),
            jwks_uri: format!("http://{addr}/jwks.json"),
            jwks_fetches: AtomicUsize::new(0),
            metadata_fetches: AtomicUsize::new(0),
        });
        let mut server = JwksServer {
            shared,
            addr,
            running: None,
        };
        server.serve(listener);
        server
    }

    fn serve(&mut self, listener: TcpListener) {
        let app = Router::new()
            .route("/.well-known/oauth-authorization-server", get(metadata))
            .route("/jwks.json", get(jwks))
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

    /// The issuer URL, `http://127.0.0.1:PORT`.
    pub fn issuer(&self) -> String {
        self.shared.issuer.lock().unwrap().clone()
    }

    /// Makes the metadata name another issuer (to test the RFC 8414 §3.3 check).
    pub fn set_metadata_issuer(&self, issuer: &str) {
        *self.shared.issuer.lock().unwrap() = issuer.to_owned();
    }

    /// The JWKS URL.
    pub fn jwks_url(&self) -> String {
        self.shared.jwks_uri.clone()
    }

    /// The address listened on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the served key set.
    pub fn set_jwks(&self, jwks: Jwks) {
        *self.shared.jwks.lock().unwrap() = jwks;
    }

    /// Changes how JWKS requests are answered.
    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    /// Sets (or removes) the `Cache-Control` header of JWKS responses.
    pub fn set_cache_control(&self, value: Option<&str>) {
        *self.shared.cache_control.lock().unwrap() = value.map(str::to_owned);
    }

    /// JWKS requests received so far, whatever they were answered with.
    pub fn jwks_fetches(&self) -> usize {
        self.shared.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Metadata requests received so far.
    pub fn metadata_fetches(&self) -> usize {
        self.shared.metadata_fetches.load(Ordering::SeqCst)
    }

    /// Stops listening; connections are refused until [`JwksServer::restart`].
    pub async fn stop(&mut self) {
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

    /// Listens again on the same port.
    pub async fn restart(&mut self) {
        self.stop().await;
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.task.abort();
        }
    }
}

async fn metadata(State(shared): State<Arc<Shared>>) -> Response {
    shared.metadata_fetches.fetch_add(1, Ordering::SeqCst);
    let issuer = shared.issuer.lock().unwrap().clone();
    let body = serde_json::json!({ "issuer": issuer, "jwks_uri": shared.jwks_uri });
    axum::Json(body).into_response()
}

async fn jwks(State(shared): State<Arc<Shared>>) -> Response {
    shared.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let mode = shared.mode.lock().unwrap().clone();
    let cache_control = shared.cache_control.lock().unwrap().clone();
    let body = || serde_json::to_string(&*shared.jwks.lock().unwrap()).unwrap();
    let mut response = match mode {
        Mode::Normal => body().into_response(),
        Mode::Status(code) => StatusCode::from_u16(code)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response(),
        Mode::Garbage => "<html>not json".into_response(),
        Mode::WrongJson => r#"{"keys":"nope"}"#.into_response(),
        Mode::Slow(delay) => {
            tokio::time::sleep(delay).await;
            body().into_response()
        }
        Mode::Huge(n) => {
            let mut s = String::from(r#"{"keys":[],"pad":""#);
            s.push_str(&"a".repeat(n));
            s.push_str("\"}");
            s.into_response()
        }
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    if let Some(cc) = cache_control {
        headers.insert(header::CACHE_CONTROL, cc.parse().unwrap());
    }
    response
}
