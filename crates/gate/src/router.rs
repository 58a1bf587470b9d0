//! The axum router: three thin handlers (one per protocol) around [`Gate::handle`], plus
//! `/health` and `/metrics`. No request body is ever read.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::StatusCode;

use crate::decision::{Denial, Verdict};
use crate::original::{read_original, Protocol, EXT_AUTHZ_PREFIX};
use crate::response::answer;
use crate::Gate;

/// The gate's routes: `/authz/auth-request`, `/authz/forward`, `/authz/ext-authz/{path}`
/// (any method each), `/health` and `/metrics`; and `/v1/revocations` with
/// `/v1/revocations/stream` when the gate relays the revocation feed ([`Gate::relay`]).
///
/// The peer address comes from axum's `ConnectInfo<SocketAddr>` (set by
/// `wristband_serve::serve`); without it no proxy is trusted.
pub fn router(gate: Gate) -> Router {
    let relay = gate.relay().map(|r| r.router());
    let router = Router::new()
        .route("/authz/auth-request", any(auth_request))
        .route("/authz/forward", any(forward))
        .route(EXT_AUTHZ_PREFIX, any(ext_authz))
        .route("/authz/ext-authz/", any(ext_authz))
        .route("/authz/ext-authz/{*path}", any(ext_authz))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(gate);
    match relay {
        Some(relay) => router.merge(relay),
        None => router,
    }
}

async fn auth_request(State(gate): State<Gate>, request: Request) -> Response {
    let (parts, _unread_body) = request.into_parts();
    gate.handle(Protocol::AuthRequest, &parts).await
}

async fn forward(State(gate): State<Gate>, request: Request) -> Response {
    let (parts, _unread_body) = request.into_parts();
    gate.handle(Protocol::Forward, &parts).await
}

async fn ext_authz(State(gate): State<Gate>, request: Request) -> Response {
    let (parts, _unread_body) = request.into_parts();
    gate.handle(Protocol::ExtAuthz, &parts).await
}

async fn health() -> Response {
    (
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        r#"{"status":"ok"}"#,
    )
        .into_response()
}

async fn metrics(State(gate): State<Gate>) -> Response {
    let verifier = gate.verifier();
    let text = gate
        .0
        .metrics
        .render(verifier.cached_tokens(), verifier.revocation_staleness());
    (
        StatusCode::OK,
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

/// The proxy's address: the TCP peer, or for a peer on a Unix socket (necessarily on this
/// host) `127.0.0.1`, so that `--trusted-proxy` treats it as loopback.
fn peer(extensions: &http::Extensions) -> Option<SocketAddr> {
    if let Some(ConnectInfo(addr)) = extensions.get::<ConnectInfo<SocketAddr>>() {
        return Some(*addr);
    }
    #[cfg(unix)]
    if extensions
        .get::<ConnectInfo<tokio::net::unix::SocketAddr>>()
        .is_some()
    {
        return Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    }
    None
}

impl Gate {
    /// Answers a gate request of `protocol` (its head: the body is never read): reads the
    /// original request, decides, and maps the decision to the protocol's answer.
    pub async fn handle(&self, protocol: Protocol, request: &http::request::Parts) -> Response {
        let peer = peer(&request.extensions);
        let target = request.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let headers = &request.headers;
        let original = read_original(
            protocol,
            &self.0.options.trusted_proxies,
            peer,
            &request.method,
            target,
            headers,
        );
        let (response, outcome, rule) = match original {
            Ok(original) => {
                let decision = self.decide(&original, headers).await;
                let (response, outcome) = answer(
                    self,
                    protocol,
                    &decision.verdict,
                    decision.policy(),
                    Some(&original),
                    headers,
                );
                (response, outcome, decision.rule_index())
            }
            Err(e) => {
                tracing::info!(
                    target: "wristband::gate",
                    endpoint = protocol.as_str(),
                    peer = ?peer,
                    reason = ?e,
                    "original request refused"
                );
                let policy = self.0.policy.current();
                let (response, outcome) = answer(
                    self,
                    protocol,
                    &Verdict::Deny(Denial::Original(e)),
                    &policy,
                    None,
                    headers,
                );
                (response, outcome, None)
            }
        };
        self.0.metrics.count(protocol, outcome);
        tracing::debug!(
            target: "wristband::gate",
            endpoint = protocol.as_str(),
            outcome = ?outcome,
            rule = ?rule,
            status = response.status().as_u16(),
            "decision"
        );
        response
    }
}
