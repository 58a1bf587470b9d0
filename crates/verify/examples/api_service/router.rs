//! The routes of the "API Service" of the project's walkthrough. The example's `main.rs`
//! serves them; the crate's tests include this file (`#[path]`) to call the same routes
//! without a process.
//!
//! - `GET /resource`: 200 with the verified `sub`, `role` and all the claims.
//! - `POST /resource`: a state-changing request (nothing is stored): 200 with the verified
//!   `sub`. With the access cookie it is where the CSRF rule shows.
//! - `GET /admin`: 200 only for the role `admin`, 403 otherwise. With `admin_requires_mfa`
//!   (the binary's `--admin-requires-mfa`) it also needs a multi-factor sign-in: a token
//!   without one gets 401 `insufficient_user_authentication` (RFC 9470 step-up) before
//!   the role is looked at.
//! - `GET /health`: 200 without a token (the unauthenticated baseline).
//! - `GET /metrics`: Prometheus text without a token; with a revocation feed, the gauge
//!   `wristband_verifier_revocation_staleness_seconds`.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use wristband_verify::{AuthnRequirement, Claims, HasRole, RequireTokenLayer, RoleName, Verifier};

/// The `admin` role.
#[derive(Debug)]
pub(crate) struct Admin;

impl RoleName for Admin {
    const NAME: &'static str = "admin";
}

/// The body of `GET /resource`.
#[derive(Debug, Serialize)]
pub(crate) struct ResourceResponse<'a> {
    /// The verified subject.
    pub(crate) sub: &'a str,
    /// The verified role, if any.
    pub(crate) role: Option<&'a str>,
    /// All the verified claims.
    pub(crate) claims: &'a wristband_jose::Claims,
}

/// The body of `POST /resource`.
#[derive(Debug, Serialize)]
pub(crate) struct UpdateResponse<'a> {
    /// The verified subject.
    pub(crate) sub: &'a str,
    /// Always true.
    pub(crate) updated: bool,
}

/// The body of `GET /admin`.
#[derive(Debug, Serialize)]
pub(crate) struct AdminResponse<'a> {
    /// The verified subject.
    pub(crate) sub: &'a str,
    /// Always `admin`.
    pub(crate) role: &'static str,
}

/// The body of `GET /health`.
#[derive(Debug, Serialize)]
pub(crate) struct HealthResponse {
    /// Always `ok`.
    pub(crate) status: &'static str,
}

/// The API service's routes: `/resource` (GET and POST) and `/admin` behind
/// [`RequireTokenLayer`],
/// `/health` and `/metrics` open.
// The binary calls `api_service_router_with`; the crate's tests call both.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) fn api_service_router(verifier: Verifier) -> Router {
    api_service_router_with(verifier, false)
}

/// [`api_service_router`], where `/admin` also requires a multi-factor sign-in when
/// `admin_requires_mfa` is set ([`Verifier::require_authn`] with
/// [`AuthnRequirement::mfa`], on the `/admin` route only).
pub(crate) fn api_service_router_with(verifier: Verifier, admin_requires_mfa: bool) -> Router {
    let mut admin = Router::new().route("/admin", get(admin));
    if admin_requires_mfa {
        admin = admin.route_layer(verifier.require_authn(AuthnRequirement::mfa()));
    }
    let protected = Router::new()
        .route("/resource", get(resource).post(update_resource))
        .merge(admin)
        .layer(RequireTokenLayer::new(verifier.clone()));
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics).with_state(verifier))
        .merge(protected)
}

/// The verifier's metrics in the Prometheus text format (empty without a revocation feed).
pub(crate) fn metrics_text(verifier: &Verifier) -> String {
    let mut text = verifier
        .revocation_feed()
        .map(|f| f.prometheus_text())
        .unwrap_or_default();
    text.push_str(&format!(
        "# HELP wristband_verifier_cached_tokens Verified tokens in the cache.\n\
         # TYPE wristband_verifier_cached_tokens gauge\n\
         wristband_verifier_cached_tokens {}\n",
        verifier.cached_tokens()
    ));
    text
}

async fn metrics(State(verifier): State<Verifier>) -> impl IntoResponse {
    (
        [(
            http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics_text(&verifier),
    )
}

async fn resource(claims: Claims) -> Response {
    json_body(&ResourceResponse {
        sub: &claims.sub,
        role: claims.role.as_deref(),
        claims: &claims,
    })
}

async fn update_resource(claims: Claims) -> Response {
    json_body(&UpdateResponse {
        sub: &claims.sub,
        updated: true,
    })
}

async fn admin(admin: HasRole<Admin>) -> Response {
    json_body(&AdminResponse {
        sub: &admin.sub,
        role: Admin::NAME,
    })
}

async fn health() -> Json<HealthResponse> {
    Json(HealthResponse { status: "ok" })
}

/// Room for the claims of a typical access token, so that a body is written once.
const BODY_CAPACITY: usize = 1024;

/// A JSON body serialized straight from the borrowed claims into one buffer sized up
/// front: no intermediate `serde_json::Value` tree, no copy of the claims, no regrowth.
fn json_body<T: Serialize>(value: &T) -> Response {
    let mut body = Vec::with_capacity(BODY_CAPACITY);
    if serde_json::to_writer(&mut body, value).is_err() {
        // Unreachable: these types hold only strings, numbers and JSON values.
        body.clear();
        body.extend_from_slice(b"null");
    }
    (
        [(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}
