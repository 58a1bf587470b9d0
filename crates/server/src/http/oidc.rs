//! OpenID Connect endpoints: `GET|POST /oauth2/authorize` (the login hand-off and the
//! consent page), `POST /oauth2/consent`, `GET|POST /oauth2/userinfo`. The token
//! endpoint's `authorization_code` grant is in [`super::oauth`], discovery in
//! [`super::discovery`]. The pages here carry the hosted pages' security headers.
//!
//! The session cookies are `SameSite=Strict`: a browser sent here by another site's link
//! or redirect does not send them. Such a request (`Sec-Fetch-Site: cross-site` or
//! `same-site`) without a session gets a page that reloads the same request from this
//! origin (a `<meta http-equiv="refresh">`), which does carry them.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use minijinja::context;

use super::cookies;
use super::error::{ApiError, PageError};
use super::extract::{AccessCookie, ApiBytes, Bearer};
use super::pages::CONTENT_SECURITY_POLICY;
use super::templates::{base, html, render, see_other};
use super::AppState;
use crate::domain::oidc::{Authorize, AuthorizeParams, ConsentPrompt, UserInfo, AUTHORIZE_PATH};
use crate::domain::{AuthService, Principal};

/// The live browser session of the access cookie, if any.
fn browser(access: Result<AccessCookie, ApiError>) -> Option<Principal> {
    access.ok().and_then(|AccessCookie(c)| c)
}

/// True for a request another site started: its Strict cookies were not sent.
fn cross_site(headers: &HeaderMap) -> bool {
    matches!(
        headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()),
        Some("cross-site" | "same-site")
    )
}

/// A page that navigates to `to` (a URL of this service) from this origin.
pub(super) fn bounce(service: &AuthService, to: &str) -> Result<Response, PageError> {
    let ctx = context! { base => base(service.public_url().prefix()), to => to };
    Ok(html(StatusCode::OK, render("continue.html", ctx)?))
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The response to an authorization outcome.
fn respond(
    s: &AppState,
    outcome: Authorize,
    caller: Option<&Principal>,
) -> Result<Response, PageError> {
    let public = s.service.public_url();
    match outcome {
        Authorize::Redirect(to) => Ok(see_other(&to)),
        Authorize::Login {
            return_to,
            login_hint,
            force,
        } => {
            // Forced (prompt=login, max_age): the login page itself. Otherwise the session
            // resume, which refreshes a live session behind an expired access cookie and
            // otherwise leads to the login page.
            let path = if force {
                "/login"
            } else {
                "/v1/session/resume"
            };
            let mut to = format!("{}?return_to={}", public.path(path), encode(&return_to));
            if let Some(hint) = login_hint {
                to.push_str(&format!("&login_hint={}", encode(&hint)));
            }
            Ok(see_other(&to))
        }
        Authorize::Consent(prompt) => consent_page(s, &prompt, caller),
    }
}

fn consent_page(
    s: &AppState,
    prompt: &ConsentPrompt,
    caller: Option<&Principal>,
) -> Result<Response, PageError> {
    let sid = caller.and_then(Principal::session_id).unwrap_or_default();
    let fields: Vec<(String, String)> = prompt
        .params
        .fields()
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    let ctx = context! {
        base => base(s.service.public_url().prefix()),
        client_name => prompt.client_name,
        scopes => prompt.scopes,
        fields,
        csrf_token => s.service.keys().csrf_token(sid),
    };
    let mut r = html(StatusCode::OK, render("consent.html", ctx)?);
    // The decision's redirect goes to the client: the form's `form-action` must allow it
    // (browsers apply it to the redirects that follow a form submission).
    let csp = CONTENT_SECURITY_POLICY.replace(
        "form-action 'self'",
        &format!("form-action 'self' {}", prompt.redirect_source),
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    Ok(r)
}

/// `GET|POST /oauth2/authorize`: the authorization request (query, or form body).
pub(super) async fn authorize(
    State(s): State<AppState>,
    access: Result<AccessCookie, ApiError>,
    req: Request,
) -> Result<Response, PageError> {
    let (parts, body) = req.into_parts();
    let encoded = if parts.method == Method::POST {
        let req = Request::from_parts(parts.clone(), body);
        let ApiBytes(b) =
            <ApiBytes as axum::extract::FromRequest<AppState>>::from_request(req, &s).await?;
        b.to_vec()
    } else {
        parts.uri.query().unwrap_or_default().as_bytes().to_vec()
    };
    let params = AuthorizeParams::parse(&encoded)?;
    let caller = browser(access);
    if caller.is_none() && cross_site(&parts.headers) {
        let to = format!(
            "{}?{}",
            s.service.public_url().path(AUTHORIZE_PATH),
            params.to_query(false)
        );
        return bounce(&s.service, &to);
    }
    let outcome = s.service.authorize(&params, caller.as_ref()).await?;
    respond(&s, outcome, caller.as_ref())
}

/// `POST /oauth2/consent`: the consent page's answer (`decision=allow` or `deny`), with
/// the request in hidden fields and both CSRF checks.
pub(super) async fn consent(
    State(s): State<AppState>,
    headers: HeaderMap,
    access: Result<AccessCookie, ApiError>,
    ApiBytes(body): ApiBytes,
) -> Result<Response, PageError> {
    cookies::check_origin(&headers, &s.service)?;
    let params = AuthorizeParams::parse(&body)?;
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let Some(caller) = browser(access).filter(|c| c.session_id().is_some()) else {
        return Err(PageError(ApiError::CsrfFailed("no session")));
    };
    let sid = caller.session_id().unwrap_or_default();
    let submitted =
        field(cookies::CSRF_FIELD).ok_or(PageError(ApiError::CsrfFailed("missing CSRF token")))?;
    cookies::check_token(&headers, Some(submitted), &s.service, sid)?;
    let allow = match field("decision") {
        Some("allow") => true,
        Some("deny") => false,
        _ => return Err(PageError(ApiError::InvalidForm("decision"))),
    };
    let outcome = s.service.decide_consent(&params, &caller, allow).await?;
    respond(&s, outcome, Some(&caller))
}

#[utoipa::path(method(get, post), path = "/oauth2/userinfo", tag = "oidc",
    summary = "OpenID Connect userinfo: the claims a relying party's access token allows",
    description = "`sub` always; `preferred_username` and `role` with the `profile` scope. User records hold no e-mail address, so `email` yields no claim. POST is accepted too.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The claims", body = UserInfoView),
        (status = 401, description = "No token, or an invalid one", body = super::error::ErrorBody),
        (status = 403, description = "The token has no `openid` scope", body = super::error::ErrorBody),
        (status = 503, description = "The store is unavailable", body = super::error::ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub(super) async fn userinfo(
    State(s): State<AppState>,
    Bearer(token): Bearer,
) -> Result<Response, ApiError> {
    let info = s.service.userinfo(&token).await?;
    let mut r = Json(UserInfoView::from(info)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// Userinfo claims.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct UserInfoView {
    /// The user id.
    sub: String,
    /// The username (`profile` scope).
    #[serde(skip_serializing_if = "Option::is_none")]
    preferred_username: Option<String>,
    /// The role (`profile` scope).
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<String>,
}

impl From<UserInfo> for UserInfoView {
    fn from(u: UserInfo) -> Self {
        UserInfoView {
            sub: u.sub,
            preferred_username: u.preferred_username,
            role: u.role,
        }
    }
}
