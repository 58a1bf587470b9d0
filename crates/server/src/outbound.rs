//! Outgoing HTTP: the form POSTs of back-channel logout. One deadline per call, no
//! redirects followed (a 3xx is a failed attempt), no connection kept. `https` is checked
//! against the platform's root certificates. A leaf: it imports nothing of the crate.

use std::time::Duration;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, USER_AGENT};
use http::{Request, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Default deadline of one POST: connecting, sending, and the response's status.
pub const POST_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a POST did not succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostError {
    /// The URL is not an absolute `http` or `https` URL.
    #[error("not an http(s) URL")]
    InvalidUrl,
    /// The server answered something other than 2xx (redirects are not followed).
    #[error("status {0}")]
    Status(StatusCode),
    /// The deadline passed.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// Connecting or sending failed.
    #[error("transport error")]
    Transport(#[source] hyper_util::client::legacy::Error),
}

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// An HTTP client for form POSTs.
#[derive(Clone)]
pub struct FormPoster {
    client: Client<Connector, Full<Bytes>>,
    timeout: Duration,
}

impl std::fmt::Debug for FormPoster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FormPoster")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl FormPoster {
    /// A client whose calls end after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(timeout));
        http.set_nodelay(true);
        http.enforce_http(false);
        let client = Client::builder(TokioExecutor::new())
            // Logouts are rare: a fresh connection each time holds no idle sockets.
            .pool_max_idle_per_host(0)
            .build(https_connector(http));
        FormPoster { client, timeout }
    }

    /// POSTs `body` (already `application/x-www-form-urlencoded`) to `url`; `Ok` on 2xx.
    pub async fn post_form(&self, url: &str, body: String) -> Result<StatusCode, PostError> {
        let parsed = url::Url::parse(url).map_err(|_| PostError::InvalidUrl)?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(PostError::InvalidUrl);
        }
        let request = Request::post(url)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(CACHE_CONTROL, "no-store")
            .header(USER_AGENT, concat!("wristband/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| PostError::InvalidUrl)?;
        let response = tokio::time::timeout(self.timeout, self.client.request(request))
            .await
            .map_err(|_| PostError::Timeout(self.timeout))?
            .map_err(PostError::Transport)?;
        let status = response.status();
        // The body is not read: only the status matters, and the connection is not kept.
        drop(response);
        if status.is_success() {
            Ok(status)
        } else {
            Err(PostError::Status(status))
        }
    }
}

fn https_connector(http: HttpConnector) -> Connector {
    use std::sync::Arc;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = match hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(Arc::clone(&provider))
    {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "no usable root certificates: https POSTs will fail");
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map(|c| {
                    c.with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth()
                });
            match config {
                Ok(config) => hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config),
                // The aws-lc-rs provider supports the default versions: not reached.
                Err(_) => hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(
                    rustls::ClientConfig::builder()
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth(),
                ),
            }
        }
    };
    builder.https_or_http().enable_http1().wrap_connector(http)
}
