//! Router tests of the gate, in process through `tower::ServiceExt::oneshot`, with the
//! peer address given as axum's `ConnectInfo`: each proxy's exact headers, decisions,
//! navigation, spoofing, path confusion, the attack catalog, and policy reload.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod catalog;
mod paths;
mod protocols;
mod relay;
mod reload;
mod spoofing;
mod stepup;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use wristband_gate::{router, Gate, GateOptions, Policy, PolicyHandle};
use wristband_jose::Algorithm;
use wristband_testkit::{keys, Minter};
use wristband_verify::{CookieSource, Verifier};

pub const ISS: &str = "https://auth.example";
pub const AUD: &str = "wristband";
pub const LOGIN: &str = "https://app.example.com/auth/v1/session/resume";
/// What Chromium sends on a navigation.
pub const CHROME_ACCEPT: &str =
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";

/// The policy most tests use.
pub const POLICY: &str = r#"
[[rule]]
name = "public"
path = "/public"
require = "anonymous"

[[rule]]
name = "admin"
path = "/admin"
require = "role:admin"

[[rule]]
name = "orders-read"
path = "/api/orders"
methods = ["GET", "HEAD"]
require = "scope:orders.read"

[[rule]]
name = "mfa"
path = "/vault"
require = "mfa"

[[rule]]
name = "app"
host = "app.example.com"
path = "/"
require = "authenticated"
"#;

pub fn minter() -> Minter {
    Minter::new(keys::fixed(Algorithm::ES256, 0), ISS, AUD)
}

/// A gate trusting only the minter's key, taking cookies, under `policy`.
pub async fn gate(m: &Minter, policy: &str) -> Gate {
    let verifier = Verifier::builder(&m.iss, &m.aud)
        .keys(keys::key_set([m.key()]))
        .access_cookie(CookieSource::default())
        .build()
        .await
        .unwrap();
    let mut options = GateOptions::for_issuer(ISS);
    options.login_url = LOGIN.into();
    Gate::new(
        verifier,
        PolicyHandle::new(Policy::parse(policy).unwrap()),
        options,
    )
}

pub async fn app(m: &Minter) -> Router {
    router(gate(m, POLICY).await)
}

/// nginx on the same machine.
pub fn local() -> SocketAddr {
    "127.0.0.1:41000".parse().unwrap()
}

/// Anyone else.
pub fn stranger() -> SocketAddr {
    "203.0.113.9:41000".parse().unwrap()
}

#[derive(Debug, PartialEq)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// The identity headers of the answer, sorted.
    pub fn identity(&self) -> Vec<(String, String)> {
        let mut out: Vec<_> = self
            .headers
            .iter()
            .filter(|(k, _)| {
                k.as_str().starts_with("x-auth-request-") || k.as_str().starts_with("remote-")
            })
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
            .collect();
        out.sort();
        out
    }
}

/// Sends a request to the gate from `peer`.
pub async fn send(
    app: &Router,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    peer: SocketAddr,
) -> Reply {
    let mut builder = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let mut request = builder.body(Body::empty()).unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    assert!(!status.is_server_error(), "{uri}: {status}");
    Reply {
        status,
        headers,
        body,
    }
}

/// What nginx's `auth_request` sends: a GET subrequest without body, carrying the
/// original request's headers plus `X-Original-URL` and `X-Original-Method`.
pub async fn nginx(app: &Router, method: &str, url: &str, original: &[(&str, &str)]) -> Reply {
    let mut headers = vec![("x-original-url", url), ("x-original-method", method)];
    headers.extend_from_slice(original);
    send(app, Method::GET, "/authz/auth-request", &headers, local()).await
}

/// What Traefik's `forwardAuth` sends: a GET without body (unless
/// `preserveRequestMethod`), the original headers copied, and
/// `X-Forwarded-Method/-Proto/-Host/-Uri/-For`.
pub async fn traefik(
    app: &Router,
    method: &str,
    host: &str,
    uri: &str,
    original: &[(&str, &str)],
) -> Reply {
    let mut headers = vec![
        ("x-forwarded-method", method),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", host),
        ("x-forwarded-uri", uri),
        ("x-forwarded-for", "198.51.100.7"),
    ];
    headers.extend_from_slice(original);
    send(app, Method::GET, "/authz/forward", &headers, local()).await
}

/// What Caddy's `forward_auth` sends: always a GET without body, the original headers
/// copied, `X-Forwarded-Method` and `X-Forwarded-Uri`, and the `X-Forwarded-For/-Proto/
/// -Host` that its reverse proxy sets.
pub async fn caddy(
    app: &Router,
    method: &str,
    host: &str,
    uri: &str,
    original: &[(&str, &str)],
) -> Reply {
    let mut headers = vec![
        ("x-forwarded-method", method),
        ("x-forwarded-uri", uri),
        ("x-forwarded-for", "198.51.100.7"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", host),
    ];
    headers.extend_from_slice(original);
    send(app, Method::GET, "/authz/forward", &headers, local()).await
}

/// What Envoy's HTTP `ext_authz` sends: the original method, the path prefixed, `Host`,
/// `Content-Length: 0`, and the allowed original headers.
pub async fn envoy(
    app: &Router,
    method: &str,
    host: &str,
    path: &str,
    original: &[(&str, &str)],
) -> Reply {
    let mut headers = vec![
        ("host", host),
        ("content-length", "0"),
        ("x-forwarded-proto", "https"),
    ];
    headers.extend_from_slice(original);
    let m = Method::from_bytes(method.as_bytes()).unwrap();
    send(
        app,
        m,
        &format!("/authz/ext-authz{path}"),
        &headers,
        stranger(),
    )
    .await
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Traefik or Caddy: the two ways `/authz/forward` is asked.
#[derive(Debug, Clone, Copy)]
pub enum Via {
    Traefik,
    Caddy,
}

pub async fn forward(
    app: &Router,
    via: Via,
    method: &str,
    host: &str,
    uri: &str,
    original: &[(&str, &str)],
) -> Reply {
    match via {
        Via::Traefik => traefik(app, method, host, uri, original).await,
        Via::Caddy => caddy(app, method, host, uri, original).await,
    }
}
