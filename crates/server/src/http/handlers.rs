//! Thin handlers: extract, make one domain call, respond.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use wristband_jose::SecretString;

use super::cookies;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, Bearer, Client};
use super::AppState;
use crate::domain::{DeviceLogin, Principal, TokenPair};
use crate::store::UserRecord;

/// `POST /v1/login` and `POST /v1/users` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Credentials {
    /// The user name.
    username: String,
    /// The password.
    #[schema(value_type = String, format = Password)]
    password: SecretString,
}

/// How `POST /v1/login` delivers the tokens.
#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum Delivery {
    /// In the JSON body (the default).
    #[default]
    Body,
    /// In `HttpOnly` cookies, for browsers.
    Cookie,
}

/// `POST /v1/login` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct LoginRequest {
    /// The user name.
    username: String,
    /// The password.
    #[schema(value_type = String, format = Password)]
    password: SecretString,
    /// Where the tokens go: the JSON body (default) or `HttpOnly` cookies.
    #[serde(default)]
    delivery: Delivery,
    /// The device token of an earlier successful login (else the device cookie is used).
    #[serde(default)]
    device_token: Option<String>,
}

/// `POST /v1/refresh` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RefreshRequest {
    /// The refresh token of the session.
    refresh_token: String,
}

/// `POST /v1/logout` optional body.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct LogoutRequest {
    /// The session's refresh token, revoked with it.
    refresh_token: Option<String>,
}

/// A token response (wire type).
#[derive(Serialize, ToSchema)]
pub(super) struct TokenResponse {
    /// The access token (a JWT).
    access_token: String,
    /// Always `Bearer`.
    #[schema(value_type = String, example = "Bearer")]
    token_type: &'static str,
    /// Seconds until the access token expires.
    expires_in: u64,
    /// The refresh token (single use; rotated on every refresh).
    refresh_token: String,
    /// Only in login answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    device_token: Option<String>,
    /// Only after a sign-in with a recovery code: how many unused codes are left.
    #[serde(skip_serializing_if = "Option::is_none")]
    recovery_codes_left: Option<i64>,
}

/// The answer of `POST /v1/login`: tokens in the body, or (with `delivery: cookie`) only
/// their lifetimes, the tokens being in cookies.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub(super) enum LoginResponse {
    /// Tokens in the body.
    Body(TokenResponse),
    /// Tokens in cookies.
    Cookie(CookieSession),
}

impl From<TokenPair> for TokenResponse {
    fn from(p: TokenPair) -> Self {
        TokenResponse {
            access_token: p.access_token,
            token_type: "Bearer",
            expires_in: p.expires_in,
            refresh_token: p.refresh_token,
            device_token: None,
            recovery_codes_left: None,
        }
    }
}

/// A user as clients see it (wire type): never the hash.
#[derive(Serialize, ToSchema)]
pub(super) struct UserView {
    /// User id.
    id: String,
    /// User name.
    username: String,
    /// Role (`user` or `admin`).
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

/// The JSON answer to a cookie delivery: no token in it, only lifetimes.
#[derive(Serialize, ToSchema)]
pub(super) struct CookieSession {
    /// `Bearer` (on login only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "Bearer")]
    token_type: Option<&'static str>,
    /// Seconds until the access token expires.
    expires_in: u64,
    /// Unix seconds when the access token expires.
    expires_at: i64,
    /// Always `cookie`.
    #[schema(value_type = String, example = "cookie")]
    delivery: &'static str,
}

/// The JSON answer to a cookie delivery, with the cookies set.
pub(super) fn cookie_response(s: &AppState, pair: &TokenPair, login: bool) -> Response {
    let expires_at = s
        .service
        .now()
        .saturating_add(wristband_jose::millis_i64(pair.expires_in));
    let body = CookieSession {
        token_type: login.then_some("Bearer"),
        expires_in: pair.expires_in,
        expires_at,
        delivery: "cookie",
    };
    let mut r = if login {
        no_store(Json(LoginResponse::Cookie(body)))
    } else {
        no_store(Json(body))
    };
    cookies::set(r.headers_mut(), &s.service, pair);
    r
}

/// Token responses must not be cached (RFC 6749 §5.1).
pub(super) fn no_store(body: impl IntoResponse) -> Response {
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[utoipa::path(post, path = "/v1/login", tag = "sessions",
    summary = "Log in with a user name and password",
    description = "Starts a session. With `delivery: cookie` the tokens are set as `HttpOnly` cookies (and the request must come from an allowed origin); otherwise they are in the body.",
    request_body(content = LoginRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Logged in", body = LoginResponse),
        (status = 400, description = "The body is not valid JSON of this shape, or the user name is malformed", body = ErrorBody),
        (status = 401, description = "Invalid user name or password (`invalid_credentials`), or a right password of a user with a second factor (`mfa_required`, with `mfa_token` and `methods`: finish with `POST /v1/login/mfa`)", body = ErrorBody),
        (status = 403, description = "Cookie delivery from an origin that is not allowed", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not application/json", body = ErrorBody),
        (status = 429, description = "Too many failed attempts", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "The store is unavailable", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
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
    Ok(login_answer(&s, body.delivery, done, None))
}

/// The answer to a finished sign-in (password, or password and second factor). Body
/// delivery sets no cookie: the device token is in the answer instead.
pub(super) fn login_answer(
    s: &AppState,
    delivery: Delivery,
    done: DeviceLogin,
    recovery_codes_left: Option<i64>,
) -> Response {
    match delivery {
        Delivery::Body => no_store(Json(LoginResponse::Body(TokenResponse {
            device_token: Some(done.device_token),
            recovery_codes_left,
            ..TokenResponse::from(done.pair)
        }))),
        Delivery::Cookie => {
            let mut r = cookie_response(s, &done.pair, true);
            super::cookies::set_device(r.headers_mut(), &s.service, &done.device_token);
            r
        }
    }
}

#[utoipa::path(post, path = "/v1/refresh", tag = "sessions",
    summary = "Trade a refresh token for a new token pair",
    description = "The refresh token is single use: the answer carries its successor. Using a spent one again ends the session.",
    request_body(content = RefreshRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "New tokens", body = TokenResponse),
        (status = 400, description = "Invalid, expired or revoked refresh token, or a malformed body", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not application/json", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub(super) async fn refresh(
    State(s): State<AppState>,
    Client(client): Client,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<Response, ApiError> {
    let pair = s.service.refresh(&body.refresh_token, &client).await?;
    Ok(no_store(Json(TokenResponse::from(pair))))
}

#[utoipa::path(post, path = "/v1/logout", tag = "sessions",
    summary = "End the session of the access token",
    security(("bearer" = [])),
    request_body(content = Option<LogoutRequest>, content_type = "application/json", description = "Optional"),
    responses(
        (status = 204, description = "Logged out"),
        (status = 400, description = "A malformed body, or more than one Authorization header", body = ErrorBody),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "The token does not allow this", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not application/json", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub(super) async fn logout(
    State(s): State<AppState>,
    Client(client): Client,
    // A missing or malformed header is refused before the body, a dead token after it.
    _: Bearer,
    caller: Result<Principal, ApiError>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let body = optional_json::<LogoutRequest>(&headers, body)?.unwrap_or_default();
    s.service
        .logout(&caller?, body.refresh_token.as_deref(), &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/logout-all", tag = "sessions",
    summary = "End every session of the token's user",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Logged out everywhere"),
        (status = 400, description = "More than one Authorization header", body = ErrorBody),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "The token does not allow this", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub(super) async fn logout_all(
    State(s): State<AppState>,
    Client(client): Client,
    caller: Principal,
) -> Result<StatusCode, ApiError> {
    s.service.logout_all(&caller, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A session as its owner sees it (wire type).
#[derive(Serialize, ToSchema)]
pub(super) struct SessionView {
    /// Session id.
    id: String,
    /// Unix seconds.
    created_at: i64,
    /// Unix seconds.
    last_used_at: i64,
    /// Unix seconds: the session ends then whatever happens.
    expires_at: i64,
    /// The user agent that started it.
    user_agent: Option<String>,
    /// The client address that started it.
    ip: Option<String>,
}

/// `GET /v1/sessions` answer.
#[derive(Serialize, ToSchema)]
pub(super) struct SessionList {
    /// The caller's live sessions.
    sessions: Vec<SessionView>,
}

#[utoipa::path(get, path = "/v1/sessions", tag = "sessions",
    summary = "The caller's live sessions",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The sessions", body = SessionList),
        (status = 400, description = "More than one Authorization header", body = ErrorBody),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "The token does not allow this", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds"))),
    ))]
pub(super) async fn sessions(
    State(s): State<AppState>,
    caller: Principal,
) -> Result<Json<SessionList>, ApiError> {
    let list: Vec<SessionView> = s
        .service
        .sessions(&caller)
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
    Ok(Json(SessionList { sessions: list }))
}

#[utoipa::path(delete, path = "/v1/sessions/{id}", tag = "sessions",
    summary = "End one of the caller's sessions",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Session id")),
    responses(
        (status = 204, description = "Ended"),
        (status = 400, description = "A malformed id, or more than one Authorization header", body = ErrorBody),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "The token does not allow this", body = ErrorBody),
        (status = 404, description = "No such session of the caller", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub(super) async fn delete_session(
    State(s): State<AppState>,
    // A missing or malformed header is refused before the path, a dead token after it.
    _: Bearer,
    ApiPath(id): ApiPath<String>,
    caller: Principal,
) -> Result<StatusCode, ApiError> {
    s.service.revoke_own_session(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/me", tag = "users",
    summary = "The token's user",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user", body = UserView),
        (status = 400, description = "More than one Authorization header", body = ErrorBody),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "The token does not allow this", body = ErrorBody),
        (status = 404, description = "The user no longer exists", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub(super) async fn me(
    State(s): State<AppState>,
    caller: Principal,
) -> Result<Json<UserView>, ApiError> {
    Ok(Json(s.service.me(&caller).await?.into()))
}

#[utoipa::path(post, path = "/v1/users", tag = "users",
    summary = "Register a user (only when registration is allowed)",
    request_body(content = Credentials, content_type = "application/json"),
    responses(
        (status = 201, description = "Registered", body = UserView),
        (status = 400, description = "A malformed body, or a password that is too weak", body = ErrorBody),
        (status = 404, description = "Registration is not allowed", body = ErrorBody),
        (status = 409, description = "The user name is taken", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 429, description = "Too many registrations from this address", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 415, description = "The body is not application/json", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
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

/// A health answer.
#[derive(Serialize, ToSchema)]
pub(super) struct Health {
    /// `ok` or `ready`.
    status: &'static str,
}

#[utoipa::path(get, path = "/healthz", tag = "operations",
    summary = "Liveness",
    responses((status = 200, description = "The process answers", body = Health)))]
pub(super) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[utoipa::path(get, path = "/readyz", tag = "operations",
    summary = "Readiness: the store answers",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "The store is unavailable", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub(super) async fn readyz(State(s): State<AppState>) -> Response {
    if s.service.ready().await {
        Json(Health { status: "ready" }).into_response()
    } else {
        ApiError::from(crate::domain::DomainError::unavailable()).into_response()
    }
}

#[utoipa::path(get, path = "/metrics", tag = "operations",
    summary = "Prometheus metrics (OpenMetrics text)",
    responses((status = 200, description = "The metrics", body = String, content_type = "application/openmetrics-text")))]
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
    let body = body.map_err(|r| super::extract::bytes_rejection(&r))?;
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
