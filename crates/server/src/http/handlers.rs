//! Thin handlers: extract, make one domain call, respond.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use wristband_jose::SecretString;

use super::error::ApiError;
use super::extract::{ApiJson, Bearer, Client};
use super::AppState;
use crate::domain::TokenPair;
use crate::store::UserRecord;

/// `POST /v1/login` and `POST /v1/users` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Credentials {
    username: String,
    password: SecretString,
}

/// How `POST /v1/login` delivers the tokens.
#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(super) enum Delivery {
    /// In the JSON body (the default).
    #[default]
    Body,
    /// In `HttpOnly` cookies, for browsers.
    Cookie,
}

/// `POST /v1/login` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LoginRequest {
    username: String,
    password: SecretString,
    #[serde(default)]
    delivery: Delivery,
    /// The device token of an earlier successful login (else the device cookie is used).
    #[serde(default)]
    device_token: Option<String>,
}

/// `POST /v1/refresh` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RefreshRequest {
    refresh_token: String,
}

/// `POST /v1/logout` optional body.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct LogoutRequest {
    refresh_token: Option<String>,
}

/// A token response (wire type).
#[derive(Serialize)]
pub(super) struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    refresh_token: String,
    /// Only in login answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    device_token: Option<String>,
}

impl From<TokenPair> for TokenResponse {
    fn from(p: TokenPair) -> Self {
        TokenResponse {
            access_token: p.access_token,
            token_type: "Bearer",
            expires_in: p.expires_in,
            refresh_token: p.refresh_token,
            device_token: None,
        }
    }
}

/// A user as clients see it (wire type): never the hash.
#[derive(Serialize)]
pub(super) struct UserView {
    id: String,
    username: String,
    role: String,
}

impl From<UserRecord> for UserView {
    fn from(u: UserRecord) -> Self {
        UserView {
            id: u.id,
            username: u.username,
            role: u.role,
        }
    }
}

/// Token responses must not be cached (RFC 6749 §5.1).
pub(super) fn no_store(body: impl IntoResponse) -> Response {
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

pub(super) async fn login(
    State(s): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    if body.delivery == Delivery::Cookie {
        super::cookies::check_origin(&headers, &s.service)?;
    }
    let device = body
        .device_token
        .or_else(|| super::cookies::get(&headers, super::cookies::DEVICE_COOKIE));
    let done = s
        .service
        .login_device(&body.username, body.password, device.as_deref(), &client)
        .await?;
    // Body delivery sets no cookie: the device token is in the answer instead.
    Ok(match body.delivery {
        Delivery::Body => no_store(Json(TokenResponse {
            device_token: Some(done.device_token),
            ..TokenResponse::from(done.pair)
        })),
        Delivery::Cookie => {
            let mut r = super::session::cookie_response(&s, &done.pair, true);
            super::cookies::set_device(r.headers_mut(), &s.service, &done.device_token);
            r
        }
    })
}

pub(super) async fn refresh(
    State(s): State<AppState>,
    Client(client): Client,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<Response, ApiError> {
    let pair = s.service.refresh(&body.refresh_token, &client).await?;
    Ok(no_store(Json(TokenResponse::from(pair))))
}

pub(super) async fn logout(
    State(s): State<AppState>,
    Client(client): Client,
    Bearer(token): Bearer,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let body = optional_json::<LogoutRequest>(&headers, body)?.unwrap_or_default();
    s.service
        .logout(&token, body.refresh_token.as_deref(), &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn logout_all(
    State(s): State<AppState>,
    Client(client): Client,
    Bearer(token): Bearer,
) -> Result<StatusCode, ApiError> {
    s.service.logout_all(&token, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A session as its owner sees it (wire type).
#[derive(Serialize)]
pub(super) struct SessionView {
    id: String,
    created_at: i64,
    last_used_at: i64,
    expires_at: i64,
    user_agent: Option<String>,
    ip: Option<String>,
}

pub(super) async fn sessions(
    State(s): State<AppState>,
    Bearer(token): Bearer,
) -> Result<Json<serde_json::Value>, ApiError> {
    let list: Vec<SessionView> = s
        .service
        .sessions(&token)
        .await?
        .into_iter()
        .map(|r| SessionView {
            id: r.id,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            expires_at: r.absolute_expires_at,
            user_agent: r.user_agent,
            ip: r.ip,
        })
        .collect();
    Ok(Json(json!({ "sessions": list })))
}

pub(super) async fn delete_session(
    State(s): State<AppState>,
    Bearer(token): Bearer,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<StatusCode, ApiError> {
    s.service.revoke_own_session(&token, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn me(
    State(s): State<AppState>,
    Bearer(token): Bearer,
) -> Result<Json<UserView>, ApiError> {
    Ok(Json(s.service.me(&token).await?.into()))
}

pub(super) async fn register(
    State(s): State<AppState>,
    Client(client): Client,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let user = s
        .service
        .register(&body.username, body.password, &client)
        .await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

pub(super) async fn jwks(State(s): State<AppState>) -> Response {
    let max_age = s.service.config().jwks_max_age.as_secs();
    let mut r = Json(s.service.jwks()).into_response();
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

pub(super) async fn metadata(State(s): State<AppState>) -> Json<serde_json::Value> {
    let iss = s.service.issuer();
    // Every algorithm of a published key: both during an algorithm migration.
    let ring = s.service.keys().ring();
    let algs: Vec<&str> = ring.algorithms().iter().map(|a| a.as_str()).collect();
    Json(json!({
        "issuer": iss,
        "jwks_uri": format!("{iss}/.well-known/jwks.json"),
        "login_endpoint": format!("{iss}/v1/login"),
        "refresh_endpoint": format!("{iss}/v1/refresh"),
        "logout_endpoint": format!("{iss}/v1/logout"),
        "userinfo_endpoint": format!("{iss}/v1/me"),
        "token_endpoint": format!("{iss}/oauth2/token"),
        "revocation_endpoint": format!("{iss}/oauth2/revoke"),
        "introspection_endpoint": format!("{iss}/oauth2/introspect"),
        "revocation_feed_endpoint": format!("{iss}/v1/revocations"),
        "revocation_stream_endpoint": format!("{iss}/v1/revocations/stream"),
        "sessions_endpoint": format!("{iss}/v1/sessions"),
        // What the token endpoint accepts; passwords go to the login endpoint instead.
        "grant_types_supported": ["refresh_token", "client_credentials"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "access_token_signing_alg_values_supported": algs,
        "access_token_type": "at+jwt",
    }))
}

pub(super) async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

pub(super) async fn readyz(State(s): State<AppState>) -> Response {
    if s.service.ready().await {
        Json(json!({ "status": "ready" })).into_response()
    } else {
        ApiError::from(crate::domain::DomainError::Unavailable).into_response()
    }
}

pub(super) async fn metrics(State(s): State<AppState>) -> Response {
    let mut r = s.service.metrics().encode().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    r
}

pub(super) async fn not_found() -> ApiError {
    ApiError::NotFound
}

pub(super) async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// A JSON body that may be absent (no body at all), with the same errors as [`ApiJson`].
fn optional_json<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Option<T>, ApiError> {
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::MalformedBody
        }
    })?;
    if body.is_empty() {
        return Ok(None);
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|_| ApiError::MalformedBody)
}
