//! Cookie session endpoints for browsers: `POST /v1/session/refresh` and
//! `POST /v1/session/logout` (the refresh cookie's path covers exactly these).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::cookies;
use super::error::ApiError;
use super::extract::Client;
use super::handlers::no_store;
use super::AppState;
use crate::domain::{DomainError, TokenPair};

/// The JSON answer to a cookie delivery: no token in it, only lifetimes.
pub(super) fn cookie_response(s: &AppState, pair: &TokenPair, login: bool) -> Response {
    let expires_at = s
        .service
        .now()
        .saturating_add(i64::try_from(pair.expires_in).unwrap_or(i64::MAX));
    let body = if login {
        json!({
            "token_type": "Bearer",
            "expires_in": pair.expires_in,
            "delivery": "cookie",
            "expires_at": expires_at,
        })
    } else {
        json!({
            "expires_in": pair.expires_in,
            "expires_at": expires_at,
            "delivery": "cookie",
        })
    };
    let mut r = no_store(Json(body));
    cookies::set(r.headers_mut(), &s.service, pair);
    r
}

/// An error response that also deletes the session cookies.
fn clearing(e: ApiError) -> Response {
    let mut r = e.into_response();
    cookies::clear(r.headers_mut());
    r
}

pub(super) async fn refresh(
    State(s): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    cookies::check_origin(&headers, &s.service)?;
    let Some(rt) = cookies::get(&headers, cookies::REFRESH_COOKIE) else {
        return Ok(clearing(DomainError::InvalidGrant.into()));
    };
    let Some(sid) = s.service.refresh_session_id(&rt).await? else {
        return Ok(clearing(DomainError::InvalidGrant.into()));
    };
    cookies::check_token(&headers, None, &s.service, &sid)?;
    match s.service.refresh(&rt, &client).await {
        Ok(pair) => Ok(cookie_response(&s, &pair, false)),
        Err(DomainError::InvalidGrant) => Ok(clearing(DomainError::InvalidGrant.into())),
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn logout(
    State(s): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    cookies::check_origin(&headers, &s.service)?;
    let at = cookies::get(&headers, cookies::ACCESS_COOKIE);
    let rt = cookies::get(&headers, cookies::REFRESH_COOKIE);
    // The session named by a live access token, else by the refresh token.
    let mut live_access = None;
    let mut sid = None;
    if let Some(at) = &at {
        if let Ok(info) = s.service.authenticate(at).await {
            sid = info.sid;
            live_access = Some(at);
        }
    }
    if sid.is_none() {
        if let Some(rt) = &rt {
            sid = s.service.refresh_session_id(rt).await?;
        }
    }
    if let Some(sid) = &sid {
        cookies::check_token(&headers, None, &s.service, sid)?;
        match live_access {
            Some(at) => s.service.logout(at, rt.as_deref(), &client).await?,
            None => {
                if let Some(rt) = &rt {
                    s.service.logout_refresh(rt, &client).await?;
                }
            }
        }
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    cookies::clear(r.headers_mut());
    Ok(r)
}
