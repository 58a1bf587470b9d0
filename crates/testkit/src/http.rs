//! A small HTTP/1 client for black-box tests.

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;

/// A response, fully read.
#[derive(Debug, Clone)]
pub struct TestResponse {
    /// Status code.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body bytes.
    pub body: Bytes,
}

impl TestResponse {
    /// A header as text, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A pooled HTTP/1 client.
#[derive(Clone, Debug)]
pub struct Client {
    inner: HyperClient<HttpConnector, Full<Bytes>>,
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

impl Client {
    /// A new client.
    pub fn new() -> Self {
        Client {
            inner: HyperClient::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// Sends a request with the given headers (names may repeat) and body.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> TestResponse {
        let mut req = Request::builder().method(method).uri(url);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req.body(Full::new(Bytes::copy_from_slice(body))).unwrap();
        let res = self.inner.request(req).await.expect("HTTP request");
        let (parts, body) = res.into_parts();
        let body = body.collect().await.expect("HTTP body").to_bytes();
        TestResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// `GET url` with headers.
    pub async fn get(&self, url: &str, headers: &[(&str, &str)]) -> TestResponse {
        self.send(Method::GET, url, headers, b"").await
    }

    /// `GET url` with `Authorization: Bearer token`.
    pub async fn get_bearer(&self, url: &str, token: &str) -> TestResponse {
        let auth = format!("Bearer {token}");
        self.get(url, &[("authorization", &auth)]).await
    }
}

/// A token source for load tests: refreshes `refresh_token` at `url` (`POST /v1/refresh`)
/// every 200 ms until `stop` is set, pushing each new access token onto `tokens`, so that
/// new tokens follow the auth service's signing key. Panics on a failed refresh.
pub fn spawn_refresher(
    url: String,
    refresh_token: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    tokens: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let http = Client::new();
        let mut rt = refresh_token;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let body = serde_json::json!({ "refresh_token": rt }).to_string();
            let r = http
                .send(
                    Method::POST,
                    &url,
                    &[("content-type", "application/json")],
                    body.as_bytes(),
                )
                .await;
            assert_eq!(r.status, 200, "refresh: {}", r.text());
            let j = r.json();
            rt = j["refresh_token"].as_str().unwrap_or_default().to_owned();
            let access = j["access_token"].as_str().unwrap_or_default().to_owned();
            tokens
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(access);
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    })
}
