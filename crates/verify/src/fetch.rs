//! Bounded HTTP GET for key sets and server metadata: one size cap, one deadline, no
//! redirects, no connection reuse. URLs come from configuration only, never from a token.

use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_LENGTH, USER_AGENT};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use url::Url;

/// Default cap on a fetched document (JWKS or metadata).
pub const DEFAULT_MAX_FETCH_BYTES: usize = 256 * 1024;
/// Default deadline for one fetch: connecting, sending and reading the whole body.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a key set or metadata document could not be fetched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The URL's scheme is not `http` (or `https` when the `https` feature is on).
    #[error("unsupported URL scheme `{0}`")]
    UnsupportedScheme(String),
    /// The URL could not be turned into a request.
    #[error("invalid URL")]
    InvalidUrl(#[source] http::Error),
    /// The server answered something other than 200.
    #[error("unexpected status {0}")]
    Status(StatusCode),
    /// The document is larger than the cap.
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
    /// The deadline passed.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// Connecting or sending failed.
    #[error("transport error")]
    Transport(#[source] hyper_util::client::legacy::Error),
    /// Reading the body failed.
    #[error("error reading the response body")]
    Body(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The document is not what was expected (bad JSON, no usable key, wrong issuer, ...).
    #[error("invalid document: {0}")]
    Invalid(String),
    /// A JWKS file could not be read.
    #[error("cannot read key file")]
    Io(#[source] std::io::Error),
    /// The trusted CA certificates given are not usable PEM certificates.
    #[error("invalid CA certificates: {0}")]
    InvalidCa(String),
}

/// Settings of a one-off fetch with [`fetch_document`].
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Deadline: connecting, sending and reading the whole body. Default 5 s.
    pub timeout: Duration,
    /// Largest accepted document. Default 256 KiB.
    pub max_bytes: usize,
    /// PEM certificates of the CAs to trust for `https` instead of the platform's roots
    /// (for a private CA); `None`: the platform's roots.
    pub ca_pem: Option<Vec<u8>>,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            timeout: DEFAULT_FETCH_TIMEOUT,
            max_bytes: DEFAULT_MAX_FETCH_BYTES,
            ca_pem: None,
        }
    }
}

/// Fetches one document (a JWKS, say) with the client of the key sets: `http`, or
/// `https` (with the `https` feature) verified against the platform's roots or the CAs of
/// [`FetchOptions::ca_pem`]; 200 only, no redirects, bounded in size and time.
pub async fn fetch_document(url: &str, options: &FetchOptions) -> Result<Bytes, FetchError> {
    let url = Url::parse(url).map_err(|_| FetchError::UnsupportedScheme(url.to_owned()))?;
    let fetcher = match &options.ca_pem {
        None => Fetcher::new(options.timeout, options.max_bytes),
        Some(pem) => Fetcher::with_ca(options.timeout, options.max_bytes, pem)?,
    };
    fetcher.get(&url).await.map(|f| f.body)
}

/// A fetched document and the freshness its server declared.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub(crate) body: Bytes,
    /// `Cache-Control: max-age`, or zero for `no-cache` / `no-store`.
    pub(crate) max_age: Option<Duration>,
}

#[cfg(feature = "https")]
pub(crate) type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
#[cfg(not(feature = "https"))]
pub(crate) type Connector = HttpConnector;

/// The HTTP client used for JWKS and metadata fetches.
#[derive(Clone)]
pub(crate) struct Fetcher {
    client: Client<Connector, Empty<Bytes>>,
    timeout: Duration,
    max_bytes: usize,
}

impl Fetcher {
    pub(crate) fn new(timeout: Duration, max_bytes: usize) -> Self {
        Self::with_connector(connector(timeout), timeout, max_bytes)
    }

    /// A client that trusts only the CA certificates in `pem` for `https`.
    pub(crate) fn with_ca(
        timeout: Duration,
        max_bytes: usize,
        pem: &[u8],
    ) -> Result<Self, FetchError> {
        Ok(Self::with_connector(
            connector_with_ca(timeout, pem)?,
            timeout,
            max_bytes,
        ))
    }

    /// A client with this connector (from [`connector`] or [`connector_with_ca`]).
    pub(crate) fn with_connector(
        connector: Connector,
        timeout: Duration,
        max_bytes: usize,
    ) -> Self {
        let client = Client::builder(TokioExecutor::new())
            // Fetches are rare: a fresh connection each time means a stopped or moved
            // server is noticed at once, and no idle sockets are held.
            .pool_max_idle_per_host(0)
            .build(connector);
        Fetcher {
            client,
            timeout,
            max_bytes,
        }
    }

    /// True when this client can fetch `url`.
    pub(crate) fn supports(url: &Url) -> bool {
        url.scheme() == "http" || (cfg!(feature = "https") && url.scheme() == "https")
    }

    /// GETs `url`, expecting 200 and at most `max_bytes` of body, within the deadline.
    pub(crate) async fn get(&self, url: &Url) -> Result<Fetched, FetchError> {
        if !Self::supports(url) {
            return Err(FetchError::UnsupportedScheme(url.scheme().to_owned()));
        }
        let request = Request::get(url.as_str())
            .header(ACCEPT, "application/json")
            .header(
                USER_AGENT,
                concat!("wristband-verify/", env!("CARGO_PKG_VERSION")),
            )
            .body(Empty::new())
            .map_err(FetchError::InvalidUrl)?;
        match tokio::time::timeout(self.timeout, self.send(request)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout(self.timeout)),
        }
    }

    async fn send(&self, request: Request<Empty<Bytes>>) -> Result<Fetched, FetchError> {
        let response = self
            .client
            .request(request)
            .await
            .map_err(FetchError::Transport)?;
        if response.status() != StatusCode::OK {
            return Err(FetchError::Status(response.status()));
        }
        let max_age = max_age(response.headers().get_all(CACHE_CONTROL).iter());
        let body = read_bounded(response, self.max_bytes).await?;
        Ok(Fetched { body, max_age })
    }
}

/// Reads a response body of at most `max_bytes`, refusing early when `Content-Length`
/// already says it is larger.
pub(crate) async fn read_bounded(
    response: http::Response<hyper::body::Incoming>,
    max_bytes: usize,
) -> Result<Bytes, FetchError> {
    let declared = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_bytes as u64) {
        return Err(FetchError::TooLarge(max_bytes));
    }
    Limited::new(response.into_body(), max_bytes)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                FetchError::TooLarge(max_bytes)
            } else {
                FetchError::Body(e)
            }
        })
        .map(|c| c.to_bytes())
}

/// The connector of every client of this crate: `http`, and `https` with the feature on.
pub(crate) fn connector(timeout: Duration) -> Connector {
    let http = http_connector(timeout);
    #[cfg(feature = "https")]
    let connector = {
        let mut http = http;
        http.enforce_http(false);
        https_connector(http)
    };
    #[cfg(not(feature = "https"))]
    let connector = http;
    connector
}

/// Like [`connector`], trusting only the CA certificates in `pem` for `https` (a private
/// CA) instead of the platform's roots.
pub(crate) fn connector_with_ca(timeout: Duration, pem: &[u8]) -> Result<Connector, FetchError> {
    #[cfg(feature = "https")]
    let connector = {
        let mut http = http_connector(timeout);
        http.enforce_http(false);
        https_connector_with_roots(http, roots_from_pem(pem)?)?
    };
    #[cfg(not(feature = "https"))]
    let connector = {
        let _ = pem;
        connector(timeout)
    };
    Ok(connector)
}

fn http_connector(timeout: Duration) -> HttpConnector {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(timeout));
    http.set_nodelay(true);
    http
}

/// The certificates of a PEM bundle as trust anchors; at least one.
#[cfg(feature = "https")]
fn roots_from_pem(pem: &[u8]) -> Result<rustls::RootCertStore, FetchError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| FetchError::InvalidCa(e.to_string()))?;
        roots
            .add(cert)
            .map_err(|e| FetchError::InvalidCa(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(FetchError::InvalidCa("no PEM certificate found".into()));
    }
    Ok(roots)
}

#[cfg(feature = "https")]
fn https_connector_with_roots(
    http: HttpConnector,
    roots: rustls::RootCertStore,
) -> Result<Connector, FetchError> {
    use std::sync::Arc;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| FetchError::InvalidCa(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http))
}

#[cfg(feature = "https")]
fn https_connector(http: HttpConnector) -> Connector {
    use std::sync::Arc;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match builder.with_provider_and_native_roots(provider.clone()) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "no usable root certificates: https fetches will fail");
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map(|c| {
                    c.with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth()
                });
            match config {
                Ok(config) => hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config),
                // The aws-lc-rs provider supports the default protocol versions, so this
                // branch is unreachable in practice; fall back to rustls' own defaults.
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

/// Reads `max-age` from `Cache-Control` values; `no-cache` and `no-store` count as zero.
fn max_age<'a>(values: impl Iterator<Item = &'a http::HeaderValue>) -> Option<Duration> {
    let mut found = None;
    for value in values {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let directive = directive.trim();
            let lower = directive.to_ascii_lowercase();
            if lower == "no-cache" || lower == "no-store" {
                return Some(Duration::ZERO);
            }
            if let Some(secs) = lower.strip_prefix("max-age=") {
                let secs = secs.trim_matches('"');
                if let Ok(secs) = secs.parse::<u64>() {
                    found = Some(Duration::from_secs(secs));
                } else if !secs.is_empty() && secs.bytes().all(|b| b.is_ascii_digit()) {
                    // Larger than u64: as good as forever, and clamped later.
                    found = Some(Duration::MAX);
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn parse(values: &[&'static str]) -> Option<Duration> {
        let values: Vec<_> = values.iter().map(|v| HeaderValue::from_static(v)).collect();
        max_age(values.iter())
    }

    #[test]
    fn cache_control_max_age() {
        assert_eq!(
            parse(&["public, max-age=300"]),
            Some(Duration::from_secs(300))
        );
        assert_eq!(parse(&["Max-Age=\"90\""]), Some(Duration::from_secs(90)));
        assert_eq!(
            parse(&["public", "max-age=7"]),
            Some(Duration::from_secs(7))
        );
        assert_eq!(parse(&["max-age=300, no-cache"]), Some(Duration::ZERO));
        assert_eq!(parse(&["no-store"]), Some(Duration::ZERO));
        assert_eq!(
            parse(&["max-age=99999999999999999999999"]),
            Some(Duration::MAX)
        );
        assert_eq!(parse(&["max-age=-1"]), None);
        assert_eq!(parse(&["public"]), None);
        assert_eq!(parse(&[]), None);
    }

    #[test]
    fn only_http_and_https_urls() {
        let url = |s: &str| Url::parse(s).unwrap();
        assert!(Fetcher::supports(&url("http://127.0.0.1/jwks")));
        assert_eq!(
            Fetcher::supports(&url("https://a.example/jwks")),
            cfg!(feature = "https")
        );
        assert!(!Fetcher::supports(&url("file:///etc/passwd")));
        assert!(!Fetcher::supports(&url("ftp://a.example/jwks")));
    }
}
