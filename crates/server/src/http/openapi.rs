//! The published API contract: an OpenAPI 3.1 document generated from the handlers' own
//! annotations and wire types, served at `GET /openapi.json`. The hosted HTML pages
//! (`/login`, `/account`, their forms and static files) and the browser navigation
//! `GET /v1/session/resume` (redirects and error pages) are not in it.

use std::sync::LazyLock;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::cookies;

/// Where the document is served (announced in the server metadata).
pub use super::discovery::OPENAPI_PATH as PATH;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Wristband",
        description = "Token-based authentication: sessions with rotating refresh tokens, \
            OAuth 2.0 token, revocation and introspection endpoints, a revocation feed for \
            verifiers, and the public keys. Every error is the `ErrorBody` JSON.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        super::handlers::login,
        super::mfa::login,
                super::mfa::login_enrol,
        super::passkeys::second_step_start,
        super::passkeys::sign_in_start,
        super::passkeys::sign_in_finish,
        super::handlers::refresh,
        super::handlers::logout,
        super::handlers::logout_all,
        super::session::refresh,
        super::session::logout,
        super::handlers::me,
        super::handlers::sessions,
        super::handlers::delete_session,
        super::handlers::register,
        super::mfa::status,
        super::mfa::begin_totp,
        super::mfa::confirm_totp,
        super::mfa::remove_totp,
                super::mfa::recovery_codes,
        super::passkeys::register_start,
        super::passkeys::register_finish,
        super::passkeys::list,
        super::passkeys::remove,
        super::feed::page,
        super::feed::stream,
        super::oauth::token,
        super::oauth::revoke,
        super::oauth::introspect,
        super::discovery::jwks,
        super::discovery::metadata,
        super::discovery::openid_configuration,
        super::oidc::userinfo,
        serve_document,
        super::handlers::healthz,
        super::handlers::readyz,
        super::handlers::metrics,
    ),
    components(schemas(super::error::ErrorBody)),
    modifiers(&SecuritySchemes),
)]
struct ApiDoc;

/// The security schemes named by the operations.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let mut add = |name: &str, scheme: SecurityScheme| {
            components.add_security_scheme(name, scheme);
        };
        add(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from login, refresh or the token endpoint",
                    ))
                    .build(),
            ),
        );
        add(
            "access_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                cookies::ACCESS_COOKIE,
                "The access token cookie set by a login with `delivery: cookie`",
            ))),
        );
        add(
            "refresh_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                cookies::REFRESH_COOKIE,
                "The refresh token cookie (sent only to /v1/session)",
            ))),
        );
        add(
            "csrf_header",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                cookies::CSRF_HEADER,
                "The value of the CSRF cookie, on every cookie-authenticated state change",
            ))),
        );
        add(
            "client_basic",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "OAuth client authentication (client_secret_basic); \
                         client_secret_post puts client_id and client_secret in the form instead",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}

static DOCUMENT: LazyLock<String> =
    LazyLock::new(|| serde_json::to_string(&document()).unwrap_or_default());

/// The document as JSON.
pub fn document_json() -> &'static str {
    DOCUMENT.as_str()
}

#[utoipa::path(get, path = "/openapi.json", tag = "discovery",
    summary = "This document (OpenAPI 3.1)",
    responses((status = 200, description = "The OpenAPI document", body = Object)))]
pub(super) async fn serve_document() -> Response {
    let mut r = document_json().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}
