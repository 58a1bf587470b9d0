//! The "API Service" of the project's walkthrough, as a library router so that both
//! `examples/api_service.rs` and later tools can serve it.
//!
//! - `GET /resource`: 200 with the verified `sub`, `role` and all the claims.
//! - `GET /admin`: 200 only for the role `admin`, 403 otherwise.
//! - `GET /health`: 200 without a token (the unauthenticated baseline).

use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::extract::{Claims, HasRole, RoleName};
use crate::layer::RequireTokenLayer;
use crate::verifier::Verifier;

/// The `admin` role.
#[derive(Debug)]
pub struct Admin;

impl RoleName for Admin {
    const NAME: &'static str = "admin";
}

/// The body of `GET /resource`.
#[derive(Debug, Serialize)]
pub struct ResourceResponse<'a> {
    /// The verified subject.
    pub sub: &'a str,
    /// The verified role, if any.
    pub role: Option<&'a str>,
    /// All the verified claims.
    pub claims: &'a wristband_jose::Claims,
}

/// The body of `GET /admin`.
#[derive(Debug, Serialize)]
pub struct AdminResponse<'a> {
    /// The verified subject.
    pub sub: &'a str,
    /// Always `admin`.
    pub role: &'static str,
}

/// The body of `GET /health`.
#[derive(Debug, Serialize)]
pub struct HealthResponse {
    /// Always `ok`.
    pub status: &'static str,
}

/// The API service's routes: `/resource` and `/admin` behind [`RequireTokenLayer`],
/// `/health` open.
pub fn api_service_router(verifier: Verifier) -> Router {
    let protected = Router::new()
        .route("/resource", get(resource))
        .route("/admin", get(admin))
        .layer(RequireTokenLayer::new(verifier));
    Router::new().route("/health", get(health)).merge(protected)
}

async fn resource(claims: Claims) -> Json<serde_json::Value> {
    Json(to_json(&ResourceResponse {
        sub: &claims.sub,
        role: claims.role.as_deref(),
        claims: &claims,
    }))
}

async fn admin(admin: HasRole<Admin>) -> Json<serde_json::Value> {
    Json(to_json(&AdminResponse {
        sub: &admin.sub,
        role: Admin::NAME,
    }))
}

async fn health() -> Json<HealthResponse> {
    Json(HealthResponse { status: "ok" })
}

fn to_json<T: Serialize>(value: &T) -> serde_json::Value {
    // These types hold only strings, numbers and JSON values: serializing cannot fail.
    serde_json::to_value(value).unwrap_or_default()
}

/// Resolves on SIGINT (Ctrl-C) or, on Unix, SIGTERM: the graceful-shutdown signal of a
/// service process.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
