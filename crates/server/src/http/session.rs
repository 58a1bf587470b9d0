//! Cookie session endpoints for browsers: `POST /v1/session/refresh` and
//! `POST /v1/session/logout` (the refresh cookie's path covers exactly these).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::cookies;
use super::error::{ApiError, ErrorBody};
use super::extract::{AccessCookie, Client};
use super::handlers::{cookie_response, CookieSession};
use super::AppState;
use crate::domain::DomainError;

/// An error response that also deletes the session cookies.
fn clearing(e: ApiError) -> Response {
    let mut r = e.into_response();
    cookies::clear(r.headers_mut());
    r
}

#[utoipa::path(post, path = "/v1/session/refresh", tag = "browser sessions",
    summary = "Refresh a cookie session",
    description = "Reads the refresh cookie; needs the CSRF header (the value of the CSRF cookie) and an allowed Origin. Sets new cookies; a dead refresh token clears them.",
    security(("refresh_cookie" = [], "csrf_header" = [])),
    responses(
        (status = 200, description = "New cookies set", body = CookieSession),
        (status = 400, description = "The refresh token is invalid, expired or revoked (the cookies are cleared)", body = ErrorBody),
        (status = 403, description = "The CSRF checks failed", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
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

#[utoipa::path(post, path = "/v1/session/logout", tag = "browser sessions",
    summary = "End a cookie session and clear its cookies",
    security(("access_cookie" = [], "csrf_header" = []), ("refresh_cookie" = [], "csrf_header" = [])),
    responses(
        (status = 204, description = "Logged out; the cookies are cleared"),
        (status = 403, description = "The CSRF checks failed", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub(super) async fn logout(
    State(s): State<AppState>,
    Client(client): Client,
    access: Result<AccessCookie, ApiError>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    cookies::check_origin(&headers, &s.service)?;
    let rt = cookies::get(&headers, cookies::REFRESH_COOKIE);
    // The session named by a live access token, else by the refresh token. An access token
    // that cannot be checked counts as gone: the refresh token still ends the session.
    let live_access = access.ok().and_then(|AccessCookie(caller)| caller);
    let mut sid = live_access
        .as_ref()
        .and_then(|c| c.session_id().map(str::to_owned));
    if sid.is_none() {
        if let Some(rt) = &rt {
            sid = s.service.refresh_session_id(rt).await?;
        }
    }
    if let Some(sid) = &sid {
        cookies::check_token(&headers, None, &s.service, sid)?;
        match &live_access {
            Some(caller) => s.service.logout(caller, rt.as_deref(), &client).await?,
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
