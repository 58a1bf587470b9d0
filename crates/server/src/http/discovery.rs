//! Discovery: the public keys (JWKS) and the authorization server metadata (RFC 8414),
//! which names every endpoint, the OpenAPI document among them.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;

/// Where the OpenAPI document is served.
pub const OPENAPI_PATH: &str = "/openapi.json";

#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "discovery",
    summary = "The public signing keys (RFC 7517)",
    responses(
        (status = 200, description = "The key set", body = JwkSet, headers(("Cache-Control" = String))),
    ))]
pub(super) async fn jwks(State(s): State<AppState>) -> Response {
    let max_age = s.service.config().jwks_max_age.as_secs();
    let mut r = Json(JwkSet::from(&s.service.jwks())).into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        h.insert(header::CACHE_CONTROL, v);
    }
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    r
}

#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "discovery",
    summary = "Authorization server metadata (RFC 8414)",
    responses(
        (status = 200, description = "The metadata", body = ServerMetadata),
    ))]
pub(super) async fn metadata(State(s): State<AppState>) -> Json<ServerMetadata> {
    let iss = s.service.issuer();
    // Every algorithm of a published key: both during an algorithm migration.
    let ring = s.service.keys().ring();
    let algs = ring.algorithms().iter().map(|a| a.as_str()).collect();
    let client_auth = vec!["client_secret_basic", "client_secret_post", "none"];
    Json(ServerMetadata {
        jwks_uri: format!("{iss}/.well-known/jwks.json"),
        login_endpoint: format!("{iss}/v1/login"),
        refresh_endpoint: format!("{iss}/v1/refresh"),
        logout_endpoint: format!("{iss}/v1/logout"),
        userinfo_endpoint: format!("{iss}/v1/me"),
        token_endpoint: format!("{iss}/oauth2/token"),
        revocation_endpoint: format!("{iss}/oauth2/revoke"),
        introspection_endpoint: format!("{iss}/oauth2/introspect"),
        revocation_feed_endpoint: format!("{iss}/v1/revocations"),
        revocation_stream_endpoint: format!("{iss}/v1/revocations/stream"),
        sessions_endpoint: format!("{iss}/v1/sessions"),
        service_documentation: SERVICE_DOCUMENTATION,
        wristband_openapi: format!("{iss}{OPENAPI_PATH}"),
        // What the token endpoint accepts; passwords go to the login endpoint instead.
        grant_types_supported: vec!["refresh_token", "client_credentials"],
        response_types_supported: Vec::new(),
        token_endpoint_auth_methods_supported: client_auth.clone(),
        revocation_endpoint_auth_methods_supported: client_auth,
        introspection_endpoint_auth_methods_supported: vec![
            "client_secret_basic",
            "client_secret_post",
        ],
        access_token_signing_alg_values_supported: algs,
        access_token_type: "at+jwt",
        issuer: iss.to_owned(),
    })
}

/// Where people read about the API: the rendered API document.
pub(super) const SERVICE_DOCUMENTATION: &str =
    concat!(env!("CARGO_PKG_REPOSITORY"), "/blob/main/docs/API.md");

/// Authorization server metadata (RFC 8414), with Wristband's own endpoints.
#[derive(Serialize, ToSchema)]
pub(super) struct ServerMetadata {
    /// The issuer (`iss` of every token).
    issuer: String,
    /// The public keys.
    jwks_uri: String,
    /// `POST /v1/login`.
    login_endpoint: String,
    /// `POST /v1/refresh`.
    refresh_endpoint: String,
    /// `POST /v1/logout`.
    logout_endpoint: String,
    /// `GET /v1/me`.
    userinfo_endpoint: String,
    /// `POST /oauth2/token`.
    token_endpoint: String,
    /// `POST /oauth2/revoke`.
    revocation_endpoint: String,
    /// `POST /oauth2/introspect`.
    introspection_endpoint: String,
    /// `GET /v1/revocations`.
    revocation_feed_endpoint: String,
    /// `GET /v1/revocations/stream`.
    revocation_stream_endpoint: String,
    /// `GET /v1/sessions`.
    sessions_endpoint: String,
    /// Human-readable API documentation.
    service_documentation: &'static str,
    /// The OpenAPI document of this service (absolute URL).
    wristband_openapi: String,
    /// Grants of the token endpoint.
    grant_types_supported: Vec<&'static str>,
    /// None: there is no authorization endpoint.
    response_types_supported: Vec<&'static str>,
    /// Client authentication at the token endpoint.
    token_endpoint_auth_methods_supported: Vec<&'static str>,
    /// Client authentication at the revocation endpoint.
    revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    /// Client authentication at the introspection endpoint.
    introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    /// Algorithms of the published keys.
    access_token_signing_alg_values_supported: Vec<&'static str>,
    /// The `typ` of access tokens.
    access_token_type: &'static str,
}

/// A JSON Web Key Set (RFC 7517) as published: only public members, whatever the key
/// ring holds.
#[derive(Serialize, ToSchema)]
pub(super) struct JwkSet {
    /// The keys.
    keys: Vec<PublicJwk>,
}

/// A public JSON Web Key.
#[derive(Serialize, ToSchema)]
struct PublicJwk {
    /// Key type: `RSA`, `EC`, `OKP` or `oct`.
    kty: String,
    /// Key id (the RFC 7638 thumbprint).
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
    /// The one algorithm this key is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    alg: Option<String>,
    /// `sig`.
    #[serde(rename = "use", skip_serializing_if = "Option::is_none")]
    use_: Option<String>,
    /// Permitted operations.
    #[serde(skip_serializing_if = "Option::is_none")]
    key_ops: Option<Vec<String>>,
    /// RSA modulus.
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<String>,
    /// RSA public exponent.
    #[serde(skip_serializing_if = "Option::is_none")]
    e: Option<String>,
    /// Curve of `EC` and `OKP` keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    crv: Option<String>,
    /// Public x coordinate (`EC`) or public key (`OKP`).
    #[serde(skip_serializing_if = "Option::is_none")]
    x: Option<String>,
    /// Public y coordinate (`EC`).
    #[serde(skip_serializing_if = "Option::is_none")]
    y: Option<String>,
}

impl From<&wristband_jose::Jwks> for JwkSet {
    fn from(set: &wristband_jose::Jwks) -> Self {
        JwkSet {
            keys: set
                .keys
                .iter()
                .map(|k| PublicJwk {
                    kty: k.kty.clone(),
                    kid: k.kid.clone(),
                    alg: k.alg.clone(),
                    use_: k.use_.clone(),
                    key_ops: k.key_ops.clone(),
                    n: k.n.clone(),
                    e: k.e.clone(),
                    crv: k.crv.clone(),
                    x: k.x.clone(),
                    y: k.y.clone(),
                })
                .collect(),
        }
    }
}
