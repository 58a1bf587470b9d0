//! HTTP to the auth service beyond key fetches: form POSTs, bearer GETs, the event stream,
//! and the verifier's own access token by `client_credentials` (renewed before it runs out).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use url::Url;
use wristband_jose::{Clock, SecretString};

use crate::fetch::{read_bounded, Connector, FetchError, Fetcher};

const AGENT: &str = concat!("wristband-verify/", env!("CARGO_PKG_VERSION"));

/// A bounded HTTP client for the auth service's OAuth and feed endpoints.
#[derive(Clone)]
pub(crate) struct AuthHttp {
    client: Client<Connector, Full<Bytes>>,
    timeout: Duration,
    max_bytes: usize,
}

impl AuthHttp {
    /// A client with this connector (one that trusts a private CA, say).
    pub(crate) fn with_connector(
        connector: Connector,
        timeout: Duration,
        max_bytes: usize,
    ) -> Self {
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        AuthHttp {
            client,
            timeout,
            max_bytes,
        }
    }

    fn request(
        url: &Url,
        auth: Option<&HeaderValue>,
    ) -> Result<http::request::Builder, FetchError> {
        if !Fetcher::supports(url) {
            return Err(FetchError::UnsupportedScheme(url.scheme().to_owned()));
        }
        let mut b = Request::builder()
            .uri(url.as_str())
            .header(USER_AGENT, AGENT);
        if let Some(auth) = auth {
            b = b.header(AUTHORIZATION, auth.clone());
        }
        Ok(b)
    }

    /// POSTs a form; returns the status and the (bounded) body, whatever the status.
    pub(crate) async fn post_form(
        &self,
        url: &Url,
        auth: &HeaderValue,
        form: &[(&str, &str)],
    ) -> Result<(StatusCode, Bytes), FetchError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = Self::request(url, Some(auth))?
            .method(http::Method::POST)
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(body)))
            .map_err(FetchError::InvalidUrl)?;
        self.send(request).await
    }

    /// GETs JSON; returns the status and the (bounded) body.
    pub(crate) async fn get(
        &self,
        url: &Url,
        auth: Option<&HeaderValue>,
    ) -> Result<(StatusCode, Bytes), FetchError> {
        let request = Self::request(url, auth)?
            .header(ACCEPT, "application/json")
            .body(Full::new(Bytes::new()))
            .map_err(FetchError::InvalidUrl)?;
        self.send(request).await
    }

    async fn send(&self, request: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes), FetchError> {
        let work = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(FetchError::Transport)?;
            let status = response.status();
            let body = read_bounded(response, self.max_bytes).await?;
            Ok((status, body))
        };
        match tokio::time::timeout(self.timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout(self.timeout)),
        }
    }

    /// Opens an event stream: the response head must arrive within the deadline; the body
    /// is returned unread.
    pub(crate) async fn open_stream(
        &self,
        url: &Url,
        auth: Option<&HeaderValue>,
        last_event_id: i64,
    ) -> Result<Response<Incoming>, FetchError> {
        let request = Self::request(url, auth)?
            .header(ACCEPT, "text/event-stream")
            .header("last-event-id", last_event_id.to_string())
            .body(Full::new(Bytes::new()))
            .map_err(FetchError::InvalidUrl)?;
        let response = tokio::time::timeout(self.timeout, self.client.request(request))
            .await
            .map_err(|_| FetchError::Timeout(self.timeout))?
            .map_err(FetchError::Transport)?;
        if response.status() != StatusCode::OK {
            return Err(FetchError::Status(response.status()));
        }
        Ok(response)
    }
}

/// The token endpoint's success body.
#[derive(Deserialize)]
struct TokenResponse {
    access_token: SecretString,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

struct Bearer {
    header: HeaderValue,
    /// When to get a new token, in milliseconds of the verifier's clock.
    renew_at: u64,
}

/// A confidential client's credentials, and the access token obtained with them.
pub(crate) struct ClientAuth {
    http: AuthHttp,
    token_url: Url,
    basic: HeaderValue,
    current: tokio::sync::Mutex<Option<Bearer>>,
    clock: Arc<dyn Clock>,
}

impl ClientAuth {
    /// The client `id` with its `secret`, renewing its tokens by `clock`.
    pub(crate) fn new(
        http: AuthHttp,
        token_url: Url,
        id: &str,
        secret: &SecretString,
        clock: Arc<dyn Clock>,
    ) -> Self {
        ClientAuth {
            http,
            token_url,
            basic: basic_auth(id, secret.expose()),
            current: tokio::sync::Mutex::new(None),
            clock,
        }
    }

    /// `Authorization: Basic` with the client's credentials (RFC 6749 §2.3.1).
    pub(crate) fn basic(&self) -> &HeaderValue {
        &self.basic
    }

    /// `Authorization: Bearer` with a current access token: the held one until three
    /// quarters of its lifetime have passed, then a new one.
    pub(crate) async fn bearer(&self) -> Result<HeaderValue, FetchError> {
        let mut current = self.current.lock().await;
        if let Some(b) = current.as_ref() {
            if self.clock.now_millis() < b.renew_at {
                return Ok(b.header.clone());
            }
        }
        let started = self.clock.now_millis();
        let (status, body) = self
            .http
            .post_form(
                &self.token_url,
                &self.basic,
                &[("grant_type", "client_credentials")],
            )
            .await?;
        if status != StatusCode::OK {
            return Err(FetchError::Status(status));
        }
        let token: TokenResponse = serde_json::from_slice(&body)
            .map_err(|_| FetchError::Invalid("not a token response".into()))?;
        if token
            .token_type
            .as_deref()
            .is_some_and(|t| !t.eq_ignore_ascii_case("bearer"))
        {
            return Err(FetchError::Invalid("token_type is not Bearer".into()));
        }
        let mut header = HeaderValue::from_str(&format!("Bearer {}", token.access_token.expose()))
            .map_err(|_| FetchError::Invalid("unusable access token".into()))?;
        header.set_sensitive(true);
        let lifetime = Duration::from_secs(token.expires_in.unwrap_or(300));
        let renew_after = (lifetime * 3 / 4).max(Duration::from_secs(1));
        let renew_at =
            started.saturating_add(u64::try_from(renew_after.as_millis()).unwrap_or(u64::MAX));
        *current = Some(Bearer {
            header: header.clone(),
            renew_at,
        });
        tracing::debug!(
            target: "wristband::revocation",
            expires_in = lifetime.as_secs(),
            "client access token obtained"
        );
        Ok(header)
    }

    /// Forgets the held token (after a 401), so that the next call gets a new one.
    pub(crate) async fn invalidate(&self) {
        *self.current.lock().await = None;
    }
}

/// `Basic base64(urlencode(id):urlencode(secret))`, marked sensitive.
pub(crate) fn basic_auth(id: &str, secret: &str) -> HeaderValue {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let raw = format!("{}:{}", enc(id), enc(secret));
    let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
    let mut v = HeaderValue::from_str(&format!("Basic {b64}"))
        .unwrap_or_else(|_| HeaderValue::from_static("Basic"));
    v.set_sensitive(true);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_form_encodes_first() {
        let v = basic_auth("rs:1", "p@ss word");
        let b64 = v.to_str().unwrap().strip_prefix("Basic ").unwrap();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert_eq!(raw, b"rs%3A1:p%40ss+word");
        assert!(v.is_sensitive());
    }
}
