//! Cookie session endpoints for browsers: `POST /v1/session/refresh`,
//! `POST /v1/session/logout` and the navigation `GET /v1/session/resume` (the refresh
//! cookie's path covers exactly these).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::cookies;
use super::error::{ApiError, ErrorBody, PageError};
use super::extract::{AccessCookie, ApiQuery, Client};
use super::handlers::{cookie_response, CookieSession};
use super::templates::see_other;
use super::AppState;
use crate::domain::strength::{StepUp, Strength};
use crate::domain::DomainError;

/// An error response that also deletes the session cookies.
fn clearing(s: &AppState, e: ApiError) -> Response {
    let mut r = e.into_response();
    cookies::clear(r.headers_mut(), &s.service);
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
        return Ok(clearing(&s, DomainError::InvalidGrant.into()));
    };
    let Some(sid) = s.service.refresh_session_id(&rt).await? else {
        return Ok(clearing(&s, DomainError::InvalidGrant.into()));
    };
    cookies::check_token(&headers, None, &s.service, &sid)?;
    match s.service.refresh(&rt, &client).await {
        Ok(pair) => Ok(cookie_response(&s, &pair, false)),
        Err(DomainError::InvalidGrant) => Ok(clearing(&s, DomainError::InvalidGrant.into())),
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
    cookies::clear(r.headers_mut(), &s.service);
    Ok(r)
}

#[derive(Deserialize)]
pub(super) struct ResumeQuery {
    return_to: Option<String>,
    /// A username for the login page to prefill (OpenID Connect `login_hint`).
    login_hint: Option<String>,
    /// Step-up (RFC 9470, as a gate asks): acceptable `acr` values, space-separated.
    acr_values: Option<String>,
    /// Step-up: the sign-in must be at most this many seconds old.
    max_age: Option<String>,
}

/// `GET /v1/session/resume?return_to=URL`, a browser navigation (the login URL a gate sends
/// a browser to when its access cookie has expired): with a live refresh cookie the session
/// is refreshed as by `POST /v1/session/refresh` (rotation and reuse detection included), the
/// new cookies are set and the browser is sent back to `return_to` (303); without one, or
/// with a spent or expired one (the cookies are then cleared), it is sent to the login page
/// with the same `return_to`. A `return_to` that is not an allowed target is a 400 page,
/// never a redirect; without one the target is the account page.
///
/// With `acr_values` or `max_age` (a gate's step-up, RFC 9470) the session must also be
/// strong and recent enough: if not, the browser goes to the login page with them, to sign
/// in again (a user with a second factor then gives it); a user who has no factor that
/// reaches the `acr` asked is sent to the account page, which says so, rather than round
/// in circles.
///
/// No CSRF token is asked: the refresh cookie is `SameSite=Strict`, so a navigation started
/// by another site never carries it, and the only place this sends a browser is an
/// allowed target or the login page.
pub(super) async fn resume(
    State(s): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    query: Result<ApiQuery<ResumeQuery>, ApiError>,
) -> Result<Response, PageError> {
    let ApiQuery(q) = query?;
    let strength = Strength::parse(q.acr_values.as_deref(), q.max_age.as_deref())?;
    let public = s.service.public_url();
    let target = match q.return_to.as_deref() {
        Some(raw) => Some(s.service.return_target(raw).ok_or(PageError(
            ApiError::InvalidRequest("the return_to address is not an allowed return target"),
        ))?),
        None => None,
    };
    let to_login = || {
        let login = public.path("/login");
        let encode =
            |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let mut query = String::new();
        if let Some(t) = &target {
            query.push_str(&format!("&return_to={}", encode(t.as_str())));
        }
        if let Some(h) = q.login_hint.as_deref() {
            query.push_str(&format!("&login_hint={}", encode(h)));
        }
        query.push_str(&strength.to_query());
        match query.strip_prefix('&') {
            Some(query) => see_other(&format!("{login}?{query}")),
            None => see_other(&login),
        }
    };
    let Some(rt) = cookies::get(&headers, cookies::REFRESH_COOKIE) else {
        return Ok(to_login());
    };
    let mut enrol_first = false;
    if !strength.is_empty() {
        if let Some(sid) = s.service.refresh_session_id(&rt).await? {
            match s.service.step_up(&sid, &strength).await? {
                StepUp::Met => {}
                StepUp::SignInAgain => return Ok(to_login()),
                StepUp::EnrolFirst => enrol_first = true,
            }
        }
    }
    match s.service.refresh(&rt, &client).await {
        Ok(pair) => {
            let mut r = match &target {
                _ if enrol_first => see_other(&public.path("/account?need=mfa")),
                Some(t) => see_other(t.as_str()),
                None => see_other(&public.path("/account")),
            };
            cookies::set(r.headers_mut(), &s.service, &pair);
            Ok(r)
        }
        Err(DomainError::InvalidGrant) => {
            let mut r = to_login();
            cookies::clear(r.headers_mut(), &s.service);
            Ok(r)
        }
        Err(e) => Err(e.into()),
    }
}
