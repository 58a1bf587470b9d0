//! Browser sessions: the three session cookies, and the CSRF rules for every
//! cookie-authenticated request that changes state.
//!
//! - `__Host-wb_at`: the access token (`HttpOnly; Secure; SameSite=Strict; Path=/`).
//! - `__Secure-wb_rt`: the refresh token, sent only to `/v1/session/*` (under the public
//!   URL's prefix: `{prefix}/v1/session`, as the browser sees the path).
//! - `__Host-wb_csrf`: the session's CSRF token, HMAC of its id under a server key; readable
//!   by scripts, which echo it in `X-CSRF-Token` (forms: the `csrf_token` field).
//!
//! And one device cookie, kept across logouts: `__Host-wb_device`, the device token of the
//! last successful login (`HttpOnly; Secure; SameSite=Strict; Path=/`, for
//! `device_cookie_max_age`), which exempts this browser from the account-wide lockout.

use axum::http::{header, HeaderMap, HeaderValue};

use super::error::ApiError;
use crate::config::parse_origin;
use crate::domain::{AuthService, TokenPair};

/// The access-token cookie.
pub const ACCESS_COOKIE: &str = "__Host-wb_at";
/// The refresh-token cookie.
pub const REFRESH_COOKIE: &str = "__Secure-wb_rt";
/// The CSRF cookie (not `HttpOnly`).
pub const CSRF_COOKIE: &str = "__Host-wb_csrf";
/// The device-token cookie: survives logout, so that the next login is a known device's.
pub const DEVICE_COOKIE: &str = "__Host-wb_device";
/// The header carrying the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The form field carrying the CSRF token.
pub const CSRF_FIELD: &str = "csrf_token";
/// The path of the refresh cookie, after the public URL's prefix: exactly the cookie
/// session endpoints.
pub const REFRESH_COOKIE_PATH: &str = "/v1/session";

/// The refresh cookie's `Path` as browsers see it: `{prefix}/v1/session`.
fn refresh_cookie_path(service: &AuthService) -> String {
    service.public_url().path(REFRESH_COOKIE_PATH)
}

/// The value of a request cookie (the first one of that name).
pub fn get(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
}

fn cookie(name: &str, value: &str, path: &str, max_age: u64, http_only: bool) -> String {
    let http_only = if http_only { "; HttpOnly" } else { "" };
    format!("{name}={value}{http_only}; Secure; SameSite=Strict; Path={path}; Max-Age={max_age}")
}

fn append(headers: &mut HeaderMap, text: &str) {
    if let Ok(v) = HeaderValue::from_str(text) {
        headers.append(header::SET_COOKIE, v);
    }
}

/// The three `Set-Cookie` values delivering a token pair.
pub fn session_cookies(service: &AuthService, pair: &TokenPair) -> [String; 3] {
    let refresh_age = service.config().refresh_absolute_ttl.as_secs();
    let csrf = service.keys().csrf_token(&pair.session_id);
    [
        cookie(
            ACCESS_COOKIE,
            &pair.access_token,
            "/",
            pair.expires_in,
            true,
        ),
        cookie(
            REFRESH_COOKIE,
            &pair.refresh_token,
            &refresh_cookie_path(service),
            refresh_age,
            true,
        ),
        cookie(CSRF_COOKIE, &csrf, "/", refresh_age, false),
    ]
}

/// Adds the session cookies of `pair` to a response.
pub fn set(headers: &mut HeaderMap, service: &AuthService, pair: &TokenPair) {
    for c in session_cookies(service, pair) {
        append(headers, &c);
    }
}

/// Adds the device cookie carrying `device_token`.
pub fn set_device(headers: &mut HeaderMap, service: &AuthService, device_token: &str) {
    let max_age = service.config().throttle.device_cookie_max_age.as_secs();
    append(
        headers,
        &cookie(DEVICE_COOKIE, device_token, "/", max_age, true),
    );
}

/// Adds cookies that delete all three session cookies.
pub fn clear(headers: &mut HeaderMap, service: &AuthService) {
    append(headers, &cookie(ACCESS_COOKIE, "", "/", 0, true));
    append(
        headers,
        &cookie(REFRESH_COOKIE, "", &refresh_cookie_path(service), 0, true),
    );
    append(headers, &cookie(CSRF_COOKIE, "", "/", 0, false));
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap_or("\u{0}"))
}

/// CSRF rule 2, for logins and every cookie-authenticated request that changes state:
/// `Origin`, when present, must be the service's own origin (the issuer's, the public
/// URL's, or the one the request was addressed to) or a listed CORS origin;
/// `Sec-Fetch-Site`, when present, must be `same-origin` or `none`, unless the `Origin` is
/// a listed one.
pub fn check_origin(headers: &HeaderMap, service: &AuthService) -> Result<(), ApiError> {
    let config = service.config();
    let listed = |o: &str| {
        config
            .cors_allowed_origins
            .iter()
            .any(|c| parse_origin(c).as_deref() == Some(o))
    };
    let mut origin_listed = false;
    if let Some(origin) = header_str(headers, "origin") {
        let own_issuer = parse_origin(service.issuer()).as_deref() == Some(origin)
            || service.public_url().origin() == origin;
        let scheme = if config.tls() { "https" } else { "http" };
        let own_host = header_str(headers, "host")
            .and_then(|h| parse_origin(&format!("{scheme}://{h}")))
            .is_some_and(|o| o == origin);
        origin_listed = listed(origin);
        if !(own_issuer || own_host || origin_listed) {
            return Err(ApiError::CsrfFailed("cross-origin request refused"));
        }
    }
    if let Some(site) = header_str(headers, "sec-fetch-site") {
        if !(matches!(site, "same-origin" | "none") || origin_listed) {
            return Err(ApiError::CsrfFailed("cross-site request refused"));
        }
    }
    Ok(())
}

/// CSRF rule 1: the submitted token (`submitted`, from a form, or the `X-CSRF-Token`
/// header) must equal the CSRF cookie and be the HMAC of the session `sid`. Both
/// comparisons run in constant time.
pub fn check_token(
    headers: &HeaderMap,
    submitted: Option<&str>,
    service: &AuthService,
    sid: &str,
) -> Result<(), ApiError> {
    let cookie = get(headers, CSRF_COOKIE).ok_or(ApiError::CsrfFailed("missing CSRF cookie"))?;
    let submitted = submitted
        .or_else(|| header_str(headers, CSRF_HEADER))
        .ok_or(ApiError::CsrfFailed("missing CSRF token"))?;
    aws_lc_rs::constant_time::verify_slices_are_equal(cookie.as_bytes(), submitted.as_bytes())
        .map_err(|_| ApiError::CsrfFailed("CSRF token does not match its cookie"))?;
    if !service.keys().csrf_matches(sid, submitted) {
        return Err(ApiError::CsrfFailed(
            "CSRF token does not match the session",
        ));
    }
    Ok(())
}

/// Both CSRF rules.
pub fn check(
    headers: &HeaderMap,
    submitted: Option<&str>,
    service: &AuthService,
    sid: &str,
) -> Result<(), ApiError> {
    check_origin(headers, service)?;
    check_token(headers, submitted, service, sid)
}
