//! HTTP: the router of the auth service, its extractors, the single error-to-response
//! mapping, and request metrics. Handlers extract, make one domain call and respond; the
//! listener and the start-up around it are [`crate::startup`]'s.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::domain::AuthService;
use crate::metrics::Route;

pub mod cookies;
mod discovery;
mod display;
pub mod error;
pub mod extract;
pub mod feed;
mod handlers;
mod logout;
mod mfa;
mod mfa_pages;
mod oauth;
mod oidc;
pub mod openapi;
mod page_headers;
mod pages;
mod passkeys;
mod session;
mod templates;

pub use wristband_serve::TrustedProxies;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Shared state of the handlers.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The domain service.
    pub service: Arc<AuthService>,
}

/// The routes of the auth service.
pub fn router(state: AppState) -> Router {
    let config = state.service.config();
    // Validated at start-up.
    let proxies = TrustedProxies::parse(&config.trusted_proxies).unwrap_or_default();
    let cors = cors_layer(&config.cors_allowed_origins);
    let tls = config.tls();
    let router = Router::new()
        .route("/v1/login", post(handlers::login))
        .route("/v1/login/mfa", post(mfa::login))
        .route("/v1/login/enrol", post(mfa::login_enrol))
        .route("/v1/login/mfa/webauthn", post(passkeys::second_step_start))
        .route("/v1/webauthn/login/start", post(passkeys::sign_in_start))
        .route("/v1/webauthn/login/finish", post(passkeys::sign_in_finish))
        .route(
            "/v1/webauthn/register/start",
            post(passkeys::register_start),
        )
        .route(
            "/v1/webauthn/register/finish",
            post(passkeys::register_finish),
        )
        .route("/v1/webauthn/credentials", get(passkeys::list))
        .route(
            "/v1/webauthn/credentials/{id}",
            axum::routing::delete(passkeys::remove),
        )
        .route("/v1/mfa", get(mfa::status))
        .route(
            "/v1/mfa/totp",
            post(mfa::begin_totp).delete(mfa::remove_totp),
        )
        .route("/v1/mfa/totp/confirm", post(mfa::confirm_totp))
        .route("/v1/mfa/recovery-codes", post(mfa::recovery_codes))
        .route("/v1/session/refresh", post(session::refresh))
        .route("/v1/session/logout", post(session::logout))
        .route("/v1/refresh", post(handlers::refresh))
        .route("/v1/logout", post(handlers::logout))
        .route("/v1/logout-all", post(handlers::logout_all))
        .route("/v1/me", get(handlers::me))
        .route("/v1/sessions", get(handlers::sessions))
        .route(
            "/v1/sessions/{id}",
            axum::routing::delete(handlers::delete_session),
        )
        .route("/v1/revocations", get(feed::page))
        .route("/v1/revocations/stream", get(feed::stream))
        .route("/oauth2/token", post(oauth::token))
        .route("/oauth2/revoke", post(oauth::revoke))
        .route("/oauth2/introspect", post(oauth::introspect))
        .route("/oauth2/userinfo", get(oidc::userinfo).post(oidc::userinfo))
        .route("/v1/users", post(handlers::register))
        .route("/.well-known/jwks.json", get(discovery::jwks))
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::metadata),
        )
        .route(
            "/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .route("/metrics", get(handlers::metrics))
        .route(openapi::PATH, get(openapi::serve_document))
        .merge(page_headers::secured(
            pages::routes()
                .merge(oidc::routes())
                .merge(logout::routes()),
        ))
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), track_latency))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::Extension(Arc::new(proxies)))
        .layer(TraceLayer::new_for_http())
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
        ]));
    let router = match cors {
        Some(cors) => router
            .layer(cors)
            .layer(middleware::map_response(no_credentials_without_origin)),
        None => router,
    };
    let router = if tls {
        router.layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        ))
    } else {
        router
    };
    router
        .layer(middleware::map_response_with_state(
            state.clone(),
            error::error_pages,
        ))
        .layer(middleware::map_response(error::json_errors))
        .with_state(state)
}

/// The CORS layer allows credentials on every preflight; without an allowed origin that
/// grants nothing, and it is not said at all.
async fn no_credentials_without_origin(mut r: Response) -> Response {
    if !r
        .headers()
        .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
    {
        r.headers_mut()
            .remove(header::ACCESS_CONTROL_ALLOW_CREDENTIALS);
    }
    r
}

/// CORS for the listed origins only, with credentials; `None` when none are listed.
fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| crate::config::parse_origin(o))
        .filter_map(|o| HeaderValue::from_str(&o).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_credentials(true)
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                header::HeaderName::from_static(cookies::CSRF_HEADER),
            ])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

/// The label value of anything outside a fixed set.
const OTHER: &str = "other";

/// The metric label of a method: one of the standard methods, else [`OTHER`].
fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => OTHER,
    }
}

async fn track_latency(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    // Label values from fixed sets only: a client must not be able to mint series.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| OTHER.to_owned(), |p| p.as_str().to_owned());
    let method = method_label(req.method());
    let response = next.run(req).await;
    let status = format!("{}xx", response.status().as_u16() / 100);
    s.service
        .metrics()
        .http_latency
        .get_or_create(&Route {
            route,
            method,
            status,
        })
        .observe(start.elapsed().as_secs_f64());
    response
}
