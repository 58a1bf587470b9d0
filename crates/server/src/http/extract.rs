//! Extractors that turn request parts into domain inputs, with errors from [`ApiError`].

use std::net::SocketAddr;

use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::{cookies, AppState};
use crate::domain::{ClientInfo, DomainError, Principal};

/// A JSON body whose rejections (syntax, shape, size, content type) map to [`ApiError`].
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::UnsupportedMediaType),
            Err(JsonRejection::BytesRejection(r))
                if r.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Err(ApiError::PayloadTooLarge)
            }
            Err(JsonRejection::JsonDataError(e)) => Err(body_field(&e.body_text())
                .map_or(ApiError::MalformedBody, |(problem, field)| {
                    ApiError::BodyField { problem, field }
                })),
            Err(_) => Err(ApiError::MalformedBody),
        }
    }
}

/// The field that serde named in a data error (`unknown field `x``, `missing field `y``),
/// so that the client learns which one; `None` for other shape errors.
fn body_field(text: &str) -> Option<(&'static str, String)> {
    ["unknown", "missing"].into_iter().find_map(|problem| {
        let start = text.find(&format!("{problem} field `"))? + problem.len() + " field `".len();
        let rest = &text[start..];
        let field: String = rest[..rest.find('`')?].chars().take(64).collect();
        Some((problem, field))
    })
}

/// Path parameters whose rejections (not UTF-8, wrong type) map to [`ApiError`].
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(_) => Err(ApiError::MalformedPath),
        }
    }
}

/// A query string whose rejections map to [`ApiError`].
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(_) => Err(ApiError::MalformedQuery),
        }
    }
}

/// The raw body, with its rejections (too large, unreadable) mapped to [`ApiError`].
#[derive(Debug)]
pub struct ApiBytes(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        axum::body::Bytes::from_request(req, state)
            .await
            .map(ApiBytes)
            .map_err(|r| bytes_rejection(&r))
    }
}

/// The error of a body that could not be read.
pub(crate) fn bytes_rejection(r: &BytesRejection) -> ApiError {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else {
        ApiError::MalformedBody
    }
}

/// The bearer token of a request: exactly one `Authorization: Bearer` header.
pub struct Bearer(pub String);

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bearer([redacted])")
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let mut values = parts.headers.get_all(header::AUTHORIZATION).iter();
        let Some(value) = values.next() else {
            return Err(DomainError::MissingToken.into());
        };
        if values.next().is_some() {
            return Err(ApiError::InvalidRequest(
                "more than one Authorization header",
            ));
        }
        let value = value
            .to_str()
            .map_err(|_| ApiError::from(DomainError::InvalidToken { expired: false }))?;
        match value.split_once(' ') {
            Some((scheme, token))
                if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
            {
                Ok(Bearer(token.trim().to_owned()))
            }
            _ => Err(DomainError::MissingToken.into()),
        }
    }
}

/// Who is calling: the client's address (the peer, or behind a trusted proxy the address it
/// forwards) and user agent.
#[derive(Debug, Clone)]
pub struct Client(pub ClientInfo);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let ip = peer.map(|peer| {
            match parts
                .extensions
                .get::<std::sync::Arc<super::TrustedProxies>>()
            {
                Some(proxies) if !proxies.is_empty() => proxies.client_ip(peer, &parts.headers),
                _ => peer,
            }
            .to_string()
        });
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Client(ClientInfo { ip, user_agent }))
    }
}

/// The verified caller of a request with a bearer token: the token is checked once
/// (signature or lookup, expiry, revocation records, session) by
/// [`AuthService::verify_access`](crate::domain::AuthService::verify_access), and the
/// handler hands the [`Principal`] to the domain.
impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        let Bearer(token) = Bearer::from_request_parts(parts, s).await?;
        Ok(s.service.verify_access(&token).await?)
    }
}

/// The caller of a browser request, from the access-token cookie
/// ([`cookies::ACCESS_COOKIE`]): `None` without a cookie or with a token that is no longer
/// live. Only a failure to check it (the store) is an error.
#[derive(Debug)]
pub struct AccessCookie(pub Option<Principal>);

impl FromRequestParts<AppState> for AccessCookie {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        let Some(token) = cookies::get(&parts.headers, cookies::ACCESS_COOKIE) else {
            return Ok(AccessCookie(None));
        };
        match s.service.verify_access(&token).await {
            Ok(caller) => Ok(AccessCookie(Some(caller))),
            Err(DomainError::InvalidToken { .. } | DomainError::MissingToken) => {
                Ok(AccessCookie(None))
            }
            Err(e) => Err(e.into()),
        }
    }
}
