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
        userinfo_endpoint: s.service.userinfo_audience(),
        token_endpoint: format!("{iss}/oauth2/token"),
        revocation_endpoint: format!("{iss}/oauth2/revoke"),
        introspection_endpoint: format!("{iss}/oauth2/introspect"),
        revocation_feed_endpoint: format!("{iss}/v1/revocations"),
        revocation_stream_endpoint: format!("{iss}/v1/revocations/stream"),
        sessions_endpoint: format!("{iss}/v1/sessions"),
        service_documentation: SERVICE_DOCUMENTATION,
        wristband_openapi: format!("{iss}{OPENAPI_PATH}"),
        // What the token endpoint accepts; passwords go to the login endpoint instead.
        grant_types_supported: vec!["refresh_token", "client_credentials", "authorization_code"],
        response_types_supported: vec!["code"],
        authorization_endpoint: format!("{iss}{}", crate::domain::oidc::AUTHORIZE_PATH),
        code_challenge_methods_supported: vec!["S256"],
        scopes_supported: crate::domain::oidc::SCOPES_SUPPORTED.to_vec(),
        authorization_response_iss_parameter_supported: true,
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

#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "discovery",
    summary = "OpenID Provider metadata (OpenID Connect Discovery 1.0)",
    description = "The same issuer and endpoints as the RFC 8414 metadata, with the OpenID Connect ones.",
    responses(
        (status = 200, description = "The metadata", body = OpenIdConfiguration),
    ))]
pub(super) async fn openid_configuration(State(s): State<AppState>) -> Json<OpenIdConfiguration> {
    let iss = s.service.issuer();
    let ring = s.service.keys().ring();
    let algs: Vec<&'static str> = ring.algorithms().iter().map(|a| a.as_str()).collect();
    Json(OpenIdConfiguration {
        issuer: iss.to_owned(),
        authorization_endpoint: format!("{iss}{}", crate::domain::oidc::AUTHORIZE_PATH),
        token_endpoint: format!("{iss}/oauth2/token"),
        userinfo_endpoint: s.service.userinfo_audience(),
        jwks_uri: format!("{iss}/.well-known/jwks.json"),
        end_session_endpoint: format!("{iss}/oauth2/logout"),
        revocation_endpoint: format!("{iss}/oauth2/revoke"),
        introspection_endpoint: format!("{iss}/oauth2/introspect"),
        scopes_supported: crate::domain::oidc::SCOPES_SUPPORTED.to_vec(),
        response_types_supported: vec!["code"],
        response_modes_supported: vec!["query"],
        grant_types_supported: vec!["authorization_code", "refresh_token", "client_credentials"],
        subject_types_supported: vec!["public"],
        id_token_signing_alg_values_supported: algs.clone(),
        access_token_signing_alg_values_supported: algs,
        token_endpoint_auth_methods_supported: vec![
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        code_challenge_methods_supported: vec!["S256"],
        prompt_values_supported: vec!["none", "login", "consent"],
        claims_supported: vec![
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "amr",
            "acr",
            "sid",
            "at_hash",
            "azp",
            "preferred_username",
            "role",
        ],
        acr_values_supported: vec![
            wristband_jose::authn::ACR_PWD,
            wristband_jose::authn::ACR_MFA,
            wristband_jose::authn::ACR_PHR,
        ],
        claims_parameter_supported: false,
        request_parameter_supported: false,
        request_uri_parameter_supported: false,
        authorization_response_iss_parameter_supported: true,
        backchannel_logout_supported: true,
        backchannel_logout_session_supported: true,
        frontchannel_logout_supported: false,
        service_documentation: SERVICE_DOCUMENTATION,
    })
}

/// OpenID Provider metadata (OpenID Connect Discovery 1.0 §3), consistent with the RFC 8414
/// metadata.
#[derive(Serialize, ToSchema)]
pub(super) struct OpenIdConfiguration {
    /// The issuer (`iss` of every token).
    issuer: String,
    /// `GET|POST /oauth2/authorize`.
    authorization_endpoint: String,
    /// `POST /oauth2/token`.
    token_endpoint: String,
    /// `GET|POST /oauth2/userinfo`.
    userinfo_endpoint: String,
    /// The public keys, for ID tokens and access tokens alike.
    jwks_uri: String,
    /// RP-initiated logout.
    end_session_endpoint: String,
    /// `POST /oauth2/revoke`.
    revocation_endpoint: String,
    /// `POST /oauth2/introspect`.
    introspection_endpoint: String,
    /// Scopes a relying party may be registered for.
    scopes_supported: Vec<&'static str>,
    /// `code` only.
    response_types_supported: Vec<&'static str>,
    /// `query` only.
    response_modes_supported: Vec<&'static str>,
    /// Grants of the token endpoint.
    grant_types_supported: Vec<&'static str>,
    /// `public`: the `sub` is the user id for every client.
    subject_types_supported: Vec<&'static str>,
    /// Algorithms of the published keys.
    id_token_signing_alg_values_supported: Vec<&'static str>,
    /// Algorithms of the published keys.
    access_token_signing_alg_values_supported: Vec<&'static str>,
    /// Client authentication at the token endpoint (`none`: public clients).
    token_endpoint_auth_methods_supported: Vec<&'static str>,
    /// `S256` only: PKCE is required.
    code_challenge_methods_supported: Vec<&'static str>,
    /// `prompt` values.
    prompt_values_supported: Vec<&'static str>,
    /// Claims of ID tokens and userinfo.
    claims_supported: Vec<&'static str>,
    /// `acr` values.
    acr_values_supported: Vec<&'static str>,
    /// No `claims` parameter.
    claims_parameter_supported: bool,
    /// No request objects.
    request_parameter_supported: bool,
    /// No `request_uri`.
    request_uri_parameter_supported: bool,
    /// RFC 9207: `iss` in the authorization response.
    authorization_response_iss_parameter_supported: bool,
    /// Back-channel logout 1.0.
    backchannel_logout_supported: bool,
    /// Logout tokens carry `sid`.
    backchannel_logout_session_supported: bool,
    /// No front-channel logout.
    frontchannel_logout_supported: bool,
    /// Human-readable API documentation.
    service_documentation: &'static str,
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
    /// `code` (OpenID Connect).
    response_types_supported: Vec<&'static str>,
    /// `GET|POST /oauth2/authorize`.
    authorization_endpoint: String,
    /// `S256` only: PKCE is required.
    code_challenge_methods_supported: Vec<&'static str>,
    /// Scopes a relying party may be registered for.
    scopes_supported: Vec<&'static str>,
    /// RFC 9207: `iss` in the authorization response.
    authorization_response_iss_parameter_supported: bool,
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
