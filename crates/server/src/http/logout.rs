//! `GET|POST /oauth2/logout`: OpenID Connect RP-initiated logout (the
//! `end_session_endpoint`). The rules are the domain's ([`crate::domain::oidc::logout`]);
//! here the request is read, the browser's session taken from its cookies, and the answer
//! given: a redirect to the registered URI, the "logged out" page, or the confirmation page.
//!
//! The confirmation form is CSRF-protected like the other hosted forms (an allowed
//! `Origin`, and a token that must match a cookie): as a navigation from the RP's site
//! carries no `SameSite=Strict` session cookie, the page sets a cookie of its own
//! (`__Host-wb_logout`, a random value) and the form carries its HMAC under a server key.
//! The page cannot be framed, and its `form-action` allows the redirect's origin, so that
//! the browser follows the redirect that answers the form.

use std::collections::HashMap;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use minijinja::context;

use super::cookies;
use super::error::{ApiError, PageError};
use super::extract::{AccessCookie, ApiBytes, ApiQuery, Client};
use super::page_headers::allow_form_target;
use super::templates::{base, html, render, see_other};
use super::AppState;
use crate::domain::oidc::logout::{Confirmation, EndSession, EndSessionRequest};
use crate::domain::{random_id, AuthService};

/// The confirmation form's cookie.
pub(super) const LOGOUT_COOKIE: &str = "__Host-wb_logout";
/// How long a confirmation page may be answered.
const CONFIRM_MAX_AGE: u64 = 600;

/// The route (the router adds the hosted pages' security headers; a confirmation page
/// widens its `form-action` to its redirect's origin).
pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/oauth2/logout", get(end_session).post(end_session))
}

/// The request's parameters: the query of a GET, the form of a POST; and whether it is the
/// confirmation form coming back (with its CSRF token).
async fn parameters(
    req: Request,
    state: &AppState,
) -> Result<(EndSessionRequest, Option<String>), PageError> {
    if req.method() != Method::POST {
        let (mut parts, _) = req.into_parts();
        let ApiQuery(q) = <ApiQuery<EndSessionRequest> as axum::extract::FromRequestParts<
            AppState,
        >>::from_request_parts(&mut parts, state)
        .await?;
        return Ok((q, None));
    }
    let ApiBytes(body) =
        <ApiBytes as axum::extract::FromRequest<AppState>>::from_request(req, state).await?;
    let mut form: HashMap<String, String> =
        url::form_urlencoded::parse(&body).into_owned().collect();
    let request = EndSessionRequest {
        id_token_hint: form.remove("id_token_hint"),
        post_logout_redirect_uri: form.remove("post_logout_redirect_uri"),
        state: form.remove("state"),
        client_id: form.remove("client_id"),
        ui_locales: form.remove("ui_locales"),
        logout_hint: form.remove("logout_hint"),
    };
    let confirm = form
        .remove("confirm")
        .map(|_| form.remove(cookies::CSRF_FIELD).unwrap_or_default());
    Ok((request, confirm))
}

async fn end_session(
    State(s): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    access: Result<AccessCookie, ApiError>,
    req: Request,
) -> Result<Response, PageError> {
    let (request, confirm) = parameters(req, &s).await?;
    let AccessCookie(browser) = access?;
    let browser = browser.filter(|c| c.session_id().is_some());
    if let Some(submitted) = confirm {
        check_confirmation(&headers, &s.service, &submitted)?;
        let redirect = s
            .service
            .confirm_end_session(&request, browser.as_ref(), &client)
            .await?;
        return logged_out(&s.service, redirect.as_deref());
    }
    let browser_sid = browser.as_ref().and_then(|c| c.session_id());
    match s
        .service
        .end_session(&request, browser_sid, &client)
        .await?
    {
        EndSession::Done { redirect } => logged_out(&s.service, redirect.as_deref()),
        EndSession::Confirm(confirmation) => confirm_page(&s.service, &confirmation),
    }
}

/// Both CSRF rules for the confirmation form: an allowed `Origin`, and a token that is the
/// HMAC of the form's cookie.
fn check_confirmation(
    headers: &HeaderMap,
    service: &AuthService,
    submitted: &str,
) -> Result<(), PageError> {
    cookies::check_origin(headers, service)?;
    let nonce =
        cookies::get(headers, LOGOUT_COOKIE).ok_or(ApiError::CsrfFailed("missing CSRF cookie"))?;
    if !service
        .keys()
        .csrf_matches(&confirm_input(&nonce), submitted)
    {
        return Err(ApiError::CsrfFailed("CSRF token does not match its cookie").into());
    }
    Ok(())
}

fn confirm_input(nonce: &str) -> String {
    format!("logout:{nonce}")
}

/// The session ended: its cookies go, and the browser goes to the checked redirect or sees
/// the "logged out" page.
fn logged_out(service: &AuthService, redirect: Option<&str>) -> Result<Response, PageError> {
    let mut r = match redirect {
        Some(uri) => see_other(uri),
        None => {
            let ctx = context! { base => base(service.public_url().prefix()), done => true };
            html(StatusCode::OK, render("logout.html", ctx)?)
        }
    };
    cookies::clear(r.headers_mut(), service);
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{LOGOUT_COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0"
    )) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(r)
}

/// The confirmation page: a form back to this endpoint with the checked parameters.
fn confirm_page(service: &AuthService, c: &Confirmation) -> Result<Response, PageError> {
    let nonce = random_id("")?;
    let csrf_token = service.keys().csrf_token(&confirm_input(&nonce));
    let ctx = context! {
        base => base(service.public_url().prefix()),
        done => false,
        client_id => c.client_id,
        client_name => c.client_name,
        post_logout_redirect_uri => c.post_logout_redirect_uri,
        state => c.state,
        csrf_token,
    };
    let mut r = html(StatusCode::OK, render("logout.html", ctx)?);
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{LOGOUT_COOKIE}={nonce}; HttpOnly; Secure; SameSite=Strict; Path=/; \
         Max-Age={CONFIRM_MAX_AGE}"
    )) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    if let Some(origin) = &c.redirect_origin {
        allow_form_target(&mut r, origin);
    }
    Ok(r)
}
