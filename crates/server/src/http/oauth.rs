//! The OAuth 2.0 endpoints: token (RFC 6749), revocation (RFC 7009) and introspection
//! (RFC 7662). Form-encoded in, JSON out.

use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use base64::Engine;
use serde::Deserialize;
use serde_json::json;
use wristband_jose::SecretString;

use super::error::ApiError;
use super::extract::Client;
use super::AppState;
use crate::domain::oauth::{ClientCredentials, OAuthError};

/// `POST /oauth2/token` parameters.
#[derive(Deserialize)]
pub(super) struct TokenForm {
    grant_type: Option<String>,
    scope: Option<String>,
    audience: Option<String>,
    refresh_token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<SecretString>,
}

/// `POST /oauth2/revoke` and `POST /oauth2/introspect` parameters.
#[derive(Deserialize)]
pub(super) struct TokenParamForm {
    token: Option<String>,
    token_type_hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<SecretString>,
}

fn form<T>(f: Result<Form<T>, FormRejection>) -> Result<T, ApiError> {
    // Wrong content type, bad encoding or a repeated parameter (RFC 6749 §3.1).
    f.map(|Form(v)| v)
        .map_err(|_| ApiError::OAuth(OAuthError::InvalidRequest))
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
        Some(_) => return Err(OAuthError::UnsupportedGrantType.into()),
        None => return Err(OAuthError::InvalidRequest.into()),
    };
    let mut body = json!({
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
    });
    if let Some(scope) = issued.scope {
        body["scope"] = json!(scope);
    }
    if let Some(rt) = issued.refresh_token {
        body["refresh_token"] = json!(rt);
    }
    Ok(no_store(Json(body)))
}

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

pub(super) async fn introspect(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Form<TokenParamForm>, FormRejection>,
) -> Result<Response, ApiError> {
    let f = form(body)?;
    let creds = credentials(&headers, f.client_id, f.client_secret)?;
    let token = f.token.ok_or(ApiError::OAuth(OAuthError::InvalidRequest))?;
    let body = match s.service.introspect(creds, &token).await? {
        None => json!({ "active": false }),
        Some(info) => {
            let aud = match info.aud.as_slice() {
                [one] => json!(one),
                many => json!(many),
            };
            let mut body = json!({
                "active": true,
                "sub": info.sub,
                "client_id": info.client_id,
                "exp": info.exp,
                "iat": info.iat,
                "aud": aud,
                "iss": s.service.issuer(),
                "token_type": "Bearer",
                "jti": info.jti,
            });
            if let Some(ms) = info.iat_ms {
                // The issue time in milliseconds, for sub-second revocation cut-offs.
                body["iat_ms"] = json!(ms);
            }
            for (name, value) in [
                ("scope", info.scope),
                ("role", info.role),
                ("sid", info.sid),
            ] {
                if let Some(v) = value {
                    body[name] = json!(v);
                }
            }
            body
        }
    };
    Ok(no_store(Json(body)))
}
