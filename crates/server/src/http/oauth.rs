//! The OAuth 2.0 endpoints: token (RFC 6749), revocation (RFC 7009) and introspection
//! (RFC 7662). Form-encoded in, JSON out.

use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use wristband_jose::SecretString;

use super::error::{ApiError, ErrorBody};
use super::extract::Client;
use super::AppState;
use crate::domain::oauth::{ClientCredentials, OAuthError};
use crate::domain::oidc::CodeExchange;

/// `POST /oauth2/token` parameters.
#[derive(Deserialize, ToSchema)]
pub(super) struct TokenForm {
    /// `client_credentials`, `refresh_token` or `authorization_code`.
    #[schema(example = "client_credentials")]
    grant_type: Option<String>,
    /// The authorization code (code grant).
    code: Option<String>,
    /// The redirect URI of the authorization request (code grant).
    redirect_uri: Option<String>,
    /// The PKCE verifier (code grant).
    code_verifier: Option<String>,
    /// Space-separated scopes asked for (client credentials).
    scope: Option<String>,
    /// The resource server the token is for (client credentials).
    audience: Option<String>,
    /// The refresh token (refresh grant).
    refresh_token: Option<String>,
    /// The client id (`client_secret_post`, or a public client).
    client_id: Option<String>,
    /// The client secret (`client_secret_post`).
    #[schema(value_type = Option<String>, format = Password)]
    client_secret: Option<SecretString>,
}

/// `POST /oauth2/revoke` and `POST /oauth2/introspect` parameters.
#[derive(Deserialize, ToSchema)]
pub(super) struct TokenParamForm {
    /// The token.
    token: Option<String>,
    /// `access_token` or `refresh_token`.
    token_type_hint: Option<String>,
    /// The client id (`client_secret_post`, or a public client).
    client_id: Option<String>,
    /// The client secret (`client_secret_post`).
    #[schema(value_type = Option<String>, format = Password)]
    client_secret: Option<SecretString>,
}

/// A token endpoint answer (RFC 6749 §5.1).
#[derive(Serialize, ToSchema)]
pub(super) struct OAuthTokenResponse {
    /// The access token (a JWT).
    access_token: String,
    /// Always `Bearer`.
    #[schema(value_type = String, example = "Bearer")]
    token_type: &'static str,
    /// Seconds until the access token expires.
    expires_in: u64,
    /// The granted scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    /// The next refresh token (refresh grant; code grant with `offline_access`).
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    /// The ID token (code grant).
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
}

/// One audience or several (RFC 7662 `aud`).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub(super) enum Audience {
    /// One audience.
    One(String),
    /// Several.
    Many(Vec<String>),
}

/// An introspection answer (RFC 7662 §2.2): only `active: false` for a token that is not
/// active, or unknown.
#[derive(Serialize, ToSchema, Default)]
pub(super) struct Introspection {
    /// Whether the token is active.
    active: bool,
    /// Subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    /// The client the token was issued to.
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    /// Expiry (Unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    /// Issued at (Unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    /// The issue time in milliseconds, for sub-second revocation cut-offs.
    #[serde(skip_serializing_if = "Option::is_none")]
    iat_ms: Option<i64>,
    /// Audience.
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<Audience>,
    /// Issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    /// `Bearer`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    token_type: Option<&'static str>,
    /// Token id.
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
    /// Space-separated scopes.
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    /// The user's role.
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<String>,
    /// Session id.
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
    /// How the user signed in (RFC 8176 method names).
    #[serde(skip_serializing_if = "Option::is_none")]
    amr: Option<Vec<String>>,
    /// The authentication context class the sign-in reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    acr: Option<String>,
    /// When the user signed in (Unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_time: Option<i64>,
}

fn form<T>(f: Result<Form<T>, FormRejection>) -> Result<T, ApiError> {
    // Wrong content type, bad encoding or a repeated parameter (RFC 6749 §3.1).
    f.map(|Form(v)| v).map_err(|r| match r {
        FormRejection::BytesRejection(r) => super::extract::bytes_rejection(&r),
        _ => ApiError::OAuth(OAuthError::InvalidRequest),
    })
}

fn form_decode(s: &str) -> Option<String> {
    url::form_urlencoded::parse(format!("v={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
}

/// Client credentials from HTTP Basic (RFC 6749 §2.3.1) or the form; never both.
fn credentials(
    headers: &HeaderMap,
    id: Option<String>,
    secret: Option<SecretString>,
) -> Result<Option<ClientCredentials>, OAuthError> {
    let basic = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        });
    match (basic, id) {
        // One method only (RFC 6749 §2.3): a form secret next to Basic counts as a second.
        (Some(_), Some(_)) => Err(OAuthError::InvalidRequest),
        (Some(_), None) if secret.is_some() => Err(OAuthError::InvalidRequest),
        (Some(b), None) => {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .map_err(|_| OAuthError::InvalidClient)?;
            let raw = String::from_utf8(raw).map_err(|_| OAuthError::InvalidClient)?;
            let (id, secret) = raw.split_once(':').ok_or(OAuthError::InvalidClient)?;
            let id = form_decode(id).ok_or(OAuthError::InvalidClient)?;
            let secret = form_decode(secret).ok_or(OAuthError::InvalidClient)?;
            Ok(Some(ClientCredentials {
                id,
                secret: (!secret.is_empty()).then(|| SecretString::new(secret)),
            }))
        }
        (None, Some(id)) => Ok(Some(ClientCredentials { id, secret })),
        (None, None) => Ok(None),
    }
}

fn no_store(body: impl IntoResponse) -> Response {
    let mut r = body.into_response();
    r.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    r
}

#[utoipa::path(post, path = "/oauth2/token", tag = "oauth",
    summary = "Token endpoint (RFC 6749): client credentials, refresh and authorization code (with PKCE) grants",
    security((), ("client_basic" = [])),
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Issued", body = OAuthTokenResponse, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 400, description = "`invalid_request`, `invalid_grant`, `invalid_scope`, `unsupported_grant_type` or `unauthorized_client`", body = ErrorBody),
        (status = 401, description = "Client authentication failed (`invalid_client`)", body = ErrorBody, headers(("WWW-Authenticate" = String))),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 503, description = "Temporarily unavailable", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub(super) async fn token(
    State(s): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    body: Result<Form<TokenForm>, FormRejection>,
) -> Result<Response, ApiError> {
    let f = form(body)?;
    let creds = credentials(&headers, f.client_id, f.client_secret)?;
    let issued = match f.grant_type.as_deref() {
        Some("client_credentials") => {
            s.service
                .client_credentials(creds, f.scope.as_deref(), f.audience.as_deref())
                .await?
        }
        Some("refresh_token") => {
            let rt = f
                .refresh_token
                .ok_or(ApiError::OAuth(OAuthError::InvalidRequest))?;
            s.service.refresh_grant(creds, &rt, &client).await?
        }
        Some("authorization_code") => {
            let code = f.code.ok_or(ApiError::OAuth(OAuthError::InvalidRequest))?;
            let exchange = CodeExchange {
                code: &code,
                redirect_uri: f.redirect_uri.as_deref(),
                code_verifier: f.code_verifier.as_deref(),
            };
            s.service.authorization_code_grant(creds, exchange).await?
        }
        Some(_) => return Err(OAuthError::UnsupportedGrantType.into()),
        None => return Err(OAuthError::InvalidRequest.into()),
    };
    Ok(no_store(Json(OAuthTokenResponse {
        access_token: issued.access_token,
        token_type: "Bearer",
        expires_in: issued.expires_in,
        scope: issued.scope,
        refresh_token: issued.refresh_token,
        id_token: issued.id_token,
    })))
}

#[utoipa::path(post, path = "/oauth2/revoke", tag = "oauth",
    summary = "Revocation endpoint (RFC 7009)",
    description = "Answers 200 whether or not the token was known.",
    security((), ("client_basic" = [])),
    request_body(content = TokenParamForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Revoked, or unknown"),
        (status = 400, description = "`invalid_request` or `unauthorized_client`", body = ErrorBody),
        (status = 401, description = "Client authentication failed (`invalid_client`)", body = ErrorBody, headers(("WWW-Authenticate" = String))),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 503, description = "Temporarily unavailable", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub(super) async fn revoke(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Form<TokenParamForm>, FormRejection>,
) -> Result<Response, ApiError> {
    let f = form(body)?;
    let creds = credentials(&headers, f.client_id, f.client_secret)?;
    let token = f.token.ok_or(ApiError::OAuth(OAuthError::InvalidRequest))?;
    s.service
        .revoke_oauth(creds, &token, f.token_type_hint.as_deref())
        .await?;
    // RFC 7009 §2.2: 200 whether or not the token was known.
    Ok(no_store(()))
}

#[utoipa::path(post, path = "/oauth2/introspect", tag = "oauth",
    summary = "Introspection endpoint (RFC 7662), for resource servers",
    security(("client_basic" = [])),
    request_body(content = TokenParamForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "What the token says", body = Introspection),
        (status = 400, description = "`invalid_request` or `unauthorized_client`", body = ErrorBody),
        (status = 401, description = "Client authentication failed (`invalid_client`)", body = ErrorBody, headers(("WWW-Authenticate" = String))),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 503, description = "Temporarily unavailable", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub(super) async fn introspect(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Form<TokenParamForm>, FormRejection>,
) -> Result<Response, ApiError> {
    let f = form(body)?;
    let creds = credentials(&headers, f.client_id, f.client_secret)?;
    let token = f.token.ok_or(ApiError::OAuth(OAuthError::InvalidRequest))?;
    let body = match s.service.introspect(creds, &token).await? {
        None => Introspection::default(),
        Some(info) => Introspection {
            active: true,
            aud: Some(match <[String; 1]>::try_from(info.aud) {
                Ok([one]) => Audience::One(one),
                Err(many) => Audience::Many(many),
            }),
            sub: Some(info.sub),
            client_id: Some(info.client_id),
            exp: Some(info.exp),
            iat: Some(info.iat),
            iat_ms: info.iat_ms,
            iss: Some(s.service.issuer().to_owned()),
            token_type: Some("Bearer"),
            jti: Some(info.jti),
            scope: info.scope,
            role: info.role,
            sid: info.sid,
            amr: info.amr,
            acr: info.acr,
            auth_time: info.auth_time,
        },
    };
    Ok(no_store(Json(body)))
}
