//! Hosted pages for browsers: `/login` and `/account`, their forms, the static files, and
//! the session resume navigation. Templates and files are embedded in the binary; pages
//! carry no inline script or style, and every response here carries the security headers.
//!
//! Every link, form action, script, stylesheet and redirect carries the public URL's path
//! prefix (`base` in the templates), so that the pages work when a proxy mounts the service
//! under a path and strips it.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::context;
use serde::Serialize;
use wristband_jose::SecretString;

use super::cookies;
use super::display::{device_name, time_ago};
use super::error::{ApiError, PageError};
use super::extract::{AccessCookie, ApiBytes, ApiPath, ApiQuery, Client};
use super::templates::{base, html, render, see_other};
use super::AppState;
use crate::domain::strength::{StepUp, Strength};
use crate::domain::{AuthService, DeviceLogin, DomainError, Principal, ReturnTarget};

const SESSION_JS: &str = include_str!("../../static/session.js");
const STYLE_CSS: &str = include_str!("../../static/style.css");
const PASSKEYS_JS: &str = include_str!("../../static/passkeys.js");

/// A 303 to a page of this service: `path` under the public URL's prefix.
pub(super) fn see_page(service: &AuthService, path: &str) -> Response {
    see_other(&service.public_url().path(path))
}

/// The routes of the hosted pages (the router adds the security headers of
/// [`super::page_headers`]).
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login_form))
        .route("/account", get(account))
        .route("/account/sessions/{sid}/revoke", post(revoke_session))
        .route("/account/logout-all", post(logout_all))
        .route("/account/logout", post(logout))
        .route("/account/password", post(change_password))
        .route("/account/apps/{client_id}/withdraw", post(withdraw_consent))
        .merge(super::mfa_pages::routes())
        // A navigation, answered with redirects and error pages like the pages are.
        .route("/v1/session/resume", get(super::session::resume))
        .route("/static/session.js", get(session_js))
        .route("/static/style.css", get(style_css))
        .route("/static/passkeys.js", get(passkeys_js))
        // Browsers ask for it on their own; a 404 would be a console error on every page.
        .route(
            "/favicon.ico",
            get(|| async { http::StatusCode::NO_CONTENT }),
        )
}

async fn session_js() -> Response {
    let mut r = SESSION_JS.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    r
}

async fn passkeys_js() -> Response {
    let mut r = PASSKEYS_JS.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    r
}

async fn style_css() -> Response {
    let mut r = STYLE_CSS.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    r
}

/// The fields of a form post.
pub(super) struct Form(HashMap<String, String>);

impl Form {
    pub(super) fn parse(body: &Bytes) -> Self {
        Form(url::form_urlencoded::parse(body).into_owned().collect())
    }

    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub(super) fn required(&self, name: &'static str) -> Result<&str, PageError> {
        self.get(name).ok_or(PageError(ApiError::InvalidForm(name)))
    }

    /// The strength a login form carries on (hidden `acr_values` and `max_age`).
    pub(super) fn strength(&self) -> Result<Strength, PageError> {
        Ok(Strength::parse(
            self.get("acr_values"),
            self.get("max_age"),
        )?)
    }
}

/// A form post's body; a body that cannot be read is an error page.
pub(super) struct PageBody(pub(super) Bytes);

impl<S: Send + Sync> FromRequest<S> for PageBody {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, PageError> {
        Ok(PageBody(ApiBytes::from_request(req, state).await?.0))
    }
}

#[derive(serde::Deserialize)]
struct LoginQuery {
    done: Option<String>,
    return_to: Option<String>,
    /// A username to prefill (OpenID Connect `login_hint`).
    login_hint: Option<String>,
    /// How strongly the user must sign in (a gate's step-up, RFC 9470).
    acr_values: Option<String>,
    /// How recent the sign-in must be, in seconds.
    max_age: Option<String>,
}

/// What the login page shows besides the form.
#[derive(Default)]
pub(super) struct LoginView<'a> {
    pub(super) username: &'a str,
    pub(super) error: Option<&'a str>,
    pub(super) notice: Option<&'a str>,
    /// Kept in a hidden field, and checked again when the form comes back.
    pub(super) return_to: Option<&'a ReturnTarget>,
    /// Kept in hidden fields: the strength the sign-in must reach.
    pub(super) strength: Option<&'a Strength>,
}

/// The strength's fields for a template: `acr_values` (space-separated) and `max_age`.
pub(super) fn strength_context(strength: Option<&Strength>) -> minijinja::Value {
    let strength = strength.filter(|s| !s.is_empty());
    context! {
        acr_values => strength.map(|s| s.acr_values.join(" ")).filter(|v| !v.is_empty()),
        max_age => strength.and_then(|s| s.max_age),
    }
}

pub(super) fn login_html(
    service: &AuthService,
    status: StatusCode,
    view: LoginView<'_>,
) -> Result<Response, PageError> {
    let ctx = context! {
        base => base(service.public_url().prefix()),
        username => view.username,
        error => view.error,
        notice => view.notice,
                return_to => view.return_to.map(ReturnTarget::as_str),
        strength => strength_context(view.strength),
        passkeys => service.passkeys_enabled(),
    };
    Ok(html(status, render("login.html", ctx)?))
}

/// Where a finished sign-in goes, with its cookies set: back to the return target, or to
/// the account page, which says why, when the sign-in is still too weak for the strength
/// asked (the user has no factor that reaches it).
pub(super) async fn signed_in(
    s: &AppState,
    done: &DeviceLogin,
    return_to: Option<&ReturnTarget>,
    strength: &Strength,
) -> Result<Response, PageError> {
    let weak = !strength.is_empty()
        && s.service.step_up(&done.pair.session_id, strength).await? != StepUp::Met;
    let mut r = match return_to {
        _ if weak => see_page(&s.service, "/account?need=mfa"),
        // Back to an authorization request: from a page of this origin rather than by a
        // redirect, so that the redirect to the client that follows is not part of the
        // form submission (`form-action 'self'` would block it).
        Some(target) if is_authorize(&s.service, target) => {
            super::oidc::bounce(&s.service, target.as_str())?
        }
        Some(target) => see_other(target.as_str()),
        None => see_page(&s.service, "/account"),
    };
    cookies::set(r.headers_mut(), &s.service, &done.pair);
    cookies::set_device(r.headers_mut(), &s.service, &done.device_token);
    Ok(r)
}

async fn login_page(
    State(s): State<AppState>,
    query: Result<ApiQuery<LoginQuery>, ApiError>,
) -> Result<Response, PageError> {
    let ApiQuery(q) = query?;
    let notice = match q.done.as_deref() {
        Some("logout") => Some("You are logged out."),
        Some("password") => Some("Your password was changed. Log in with the new one."),
        Some("revoked") => Some("This session was ended."),
        _ => None,
    };
    // A target that is not allowed is dropped: the login then leads to the account page.
    let return_to = q.return_to.and_then(|raw| s.service.return_target(&raw));
    let hint = q.login_hint.filter(|h| h.len() <= 64);
    let strength = Strength::parse(q.acr_values.as_deref(), q.max_age.as_deref())?;
    let notice = notice.or_else(|| {
        (!strength.is_empty())
            .then_some("The page you asked for needs a stronger or more recent sign-in.")
    });
    let view = LoginView {
        notice,
        return_to: return_to.as_ref(),
        username: hint.as_deref().unwrap_or_default(),
        strength: Some(&strength),
        ..LoginView::default()
    };
    login_html(&s.service, StatusCode::OK, view)
}

async fn login_form(
    State(s): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    PageBody(body): PageBody,
) -> Result<Response, PageError> {
    cookies::check_origin(&headers, &s.service)?;
    let form = Form::parse(&body);
    let username = form.required("username")?;
    let password = SecretString::new(form.required("password")?.to_owned());
    // Checked again: the hidden field came back from the browser.
    let return_to = form
        .get("return_to")
        .and_then(|raw| s.service.return_target(raw));
    let strength = form.strength()?;
    let device = cookies::get(&headers, cookies::DEVICE_COOKIE);
    let again = |username, error| LoginView {
        username,
        error: Some(error),
        notice: None,
        return_to: return_to.as_ref(),
        strength: Some(&strength),
    };
    match s
        .service
        .login_device(username, password, device.as_deref(), &client)
        .await
    {
        Ok(done) => signed_in(&s, &done, return_to.as_ref(), &strength).await,
        Err(DomainError::MfaRequired(challenge)) => {
            let enrolment = match challenge.enrol {
                true => Some(s.service.begin_totp_for_login(&challenge.mfa_token).await?),
                false => None,
            };
            super::mfa_pages::second_step_html(
                &s.service,
                StatusCode::OK,
                &challenge,
                enrolment.as_ref(),
                return_to.as_ref(),
                &strength,
                None,
            )
        }
        Err(DomainError::InvalidRequest { .. }) => login_html(
            &s.service,
            StatusCode::BAD_REQUEST,
            again("", "Usernames are 1 to 64 letters, digits and . _ @ + -"),
        ),
        Err(DomainError::InvalidCredentials) => login_html(
            &s.service,
            StatusCode::UNAUTHORIZED,
            again(username, "Invalid username or password."),
        ),
        Err(DomainError::Throttled { retry_after }) => {
            let mut r = login_html(
                &s.service,
                StatusCode::TOO_MANY_REQUESTS,
                again(
                    username,
                    "Too many failed attempts. Wait a little and try again.",
                ),
            )?;
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
            Ok(r)
        }
        Err(e) => Err(e.into()),
    }
}

/// True when `target` is this service's authorization endpoint.
fn is_authorize(service: &AuthService, target: &ReturnTarget) -> bool {
    let endpoint = format!(
        "{}{}?",
        service.public_url().origin(),
        service
            .public_url()
            .path(crate::domain::oidc::AUTHORIZE_PATH)
    );
    target.as_str().starts_with(&endpoint)
}

/// The logged-in browser: the caller of its access cookie, when that is a user's live
/// token. `None` when there is no cookie or the token is no longer valid.
pub(super) fn page_session(
    access: Result<AccessCookie, ApiError>,
) -> Result<Option<Principal>, PageError> {
    let AccessCookie(caller) = access?;
    Ok(caller.filter(|c| c.session_id().is_some()))
}

/// The session id of a page session (checked to exist in [`page_session`]).
fn sid(caller: &Principal) -> &str {
    caller.session_id().unwrap_or_default()
}

/// A session row of the account page: named as a person knows it ("Chrome on Linux",
/// "last used 5 minutes ago"), with the raw values kept for its details.
#[derive(Serialize)]
struct SessionRow {
    id: String,
    device: String,
    created: String,
    created_ago: String,
    last_used: String,
    last_used_ago: String,
    user_agent: String,
    ip: String,
    current: bool,
}

/// An authorized app (a consent) on the account page.
#[derive(Serialize)]
struct AppRow {
    client_id: String,
    name: String,
    scope: String,
    since: String,
}

/// What the account page says besides its content.
#[derive(Default, Clone, Copy)]
pub(super) struct Said<'a> {
    /// Something went wrong (an alert).
    pub(super) error: Option<&'a str>,
    /// Something to know (a status).
    pub(super) notice: Option<&'a str>,
}

impl<'a> Said<'a> {
    pub(super) fn error(text: &'a str) -> Self {
        Said {
            error: Some(text),
            notice: None,
        }
    }

    pub(super) fn notice(text: &'a str) -> Self {
        Said {
            error: None,
            notice: Some(text),
        }
    }
}

pub(super) async fn account_html(
    s: &AppState,
    caller: &Principal,
    status: StatusCode,
    said: Said<'_>,
) -> Result<Response, PageError> {
    let user = s.service.me(caller).await?;
    let mfa = s.service.mfa_status(&user.id).await?;
    let now = s.service.now();
    let passkeys: Vec<_> = s
        .service
        .passkeys(caller)
        .await?
        .into_iter()
        .map(|p| {
            context! {
                id => p.id,
                name => p.name,
                created => utc(p.created_at),
                created_ago => time_ago(p.created_at, now),
                last_used => p.last_used_at.map(utc),
                last_used_ago => p.last_used_at.map(|t| time_ago(t, now)),
            }
        })
        .collect();
    let current = sid(caller);
    let sessions: Vec<SessionRow> = s
        .service
        .sessions(caller)
        .await?
        .into_iter()
        .map(|r| SessionRow {
            current: r.id == current,
            id: r.id,
            device: device_name(r.user_agent.as_deref().unwrap_or_default()),
            created: utc(r.created_at),
            created_ago: time_ago(r.created_at, now),
            last_used: utc(r.last_used_at),
            last_used_ago: time_ago(r.last_used_at, now),
            user_agent: r.user_agent.unwrap_or_default(),
            ip: r.ip.unwrap_or_default(),
        })
        .collect();
    let apps: Vec<AppRow> = s
        .service
        .consents(caller)
        .await?
        .into_iter()
        .map(|(c, name)| AppRow {
            name: name.unwrap_or_else(|| c.client_id.clone()),
            client_id: c.client_id,
            scope: c.scope,
            since: utc(c.created_at),
        })
        .collect();
    let ctx = context! {
        base => base(s.service.public_url().prefix()),
        user => context! { id => user.id, username => user.username, role => user.role },
        sessions,
        apps,
        csrf_token => s.service.keys().csrf_token(current),
        csrf_cookie => cookies::CSRF_COOKIE,
        expires_at => caller.expires_at(),
        server_time => now,
        mfa => context! {
            totp => mfa.totp,
            since => mfa.totp_confirmed_at.map(utc),
            recovery_left => mfa.recovery_codes_left,
        },
                passkeys,
        webauthn => s.service.passkeys_enabled(),
        error => said.error,
        notice => said.notice,
    };
    Ok(html(status, render("account.html", ctx)?))
}

#[derive(serde::Deserialize)]
struct AccountQuery {
    /// `mfa`: the page the user wanted needs a second factor they do not have.
    need: Option<String>,
}

async fn account(
    State(s): State<AppState>,
    query: Result<ApiQuery<AccountQuery>, ApiError>,
    access: Result<AccessCookie, ApiError>,
) -> Result<Response, PageError> {
    let ApiQuery(q) = query?;
    let said = match q.need.as_deref() {
        Some("mfa") => Said::notice(
            "The page you asked for needs a second factor. Set up an authenticator app \
             below, then go back to it.",
        ),
        _ => Said::default(),
    };
    match page_session(access)? {
        Some(caller) => account_html(&s, &caller, StatusCode::OK, said).await,
        None => Ok(see_page(&s.service, "/login")),
    }
}

/// The session of a form post, after both CSRF checks; `None`: not logged in.
pub(super) async fn form_session(
    s: &AppState,
    headers: &HeaderMap,
    access: Result<AccessCookie, ApiError>,
    form: &Form,
) -> Result<Option<Principal>, PageError> {
    cookies::check_origin(headers, &s.service)?;
    let Some(caller) = page_session(access)? else {
        return Ok(None);
    };
    let submitted = form
        .get(cookies::CSRF_FIELD)
        .ok_or(PageError(ApiError::CsrfFailed("missing CSRF token")))?;
    cookies::check_token(headers, Some(submitted), &s.service, sid(&caller))?;
    Ok(Some(caller))
}

/// A 303 to a page of this service that also deletes the session cookies.
fn ended(service: &AuthService, path: &str) -> Response {
    let mut r = see_page(service, path);
    cookies::clear(r.headers_mut(), service);
    r
}

async fn revoke_session(
    State(s): State<AppState>,
    headers: HeaderMap,
    target: Result<ApiPath<String>, ApiError>,
    access: Result<AccessCookie, ApiError>,
    PageBody(body): PageBody,
) -> Result<Response, PageError> {
    let ApiPath(target) = target?;
    let form = Form::parse(&body);
    let Some(caller) = form_session(&s, &headers, access, &form).await? else {
        return Ok(see_page(&s.service, "/login"));
    };
    s.service.revoke_own_session(&caller, &target).await?;
    if target == sid(&caller) {
        return Ok(ended(&s.service, "/login?done=revoked"));
    }
    Ok(see_page(&s.service, "/account"))
}

async fn withdraw_consent(
    State(s): State<AppState>,
    headers: HeaderMap,
    target: Result<ApiPath<String>, ApiError>,
    access: Result<AccessCookie, ApiError>,
    PageBody(body): PageBody,
) -> Result<Response, PageError> {
    let ApiPath(client_id) = target?;
    let form = Form::parse(&body);
    let Some(caller) = form_session(&s, &headers, access, &form).await? else {
        return Ok(see_page(&s.service, "/login"));
    };
    s.service.withdraw_consent(&caller, &client_id).await?;
    Ok(see_page(&s.service, "/account"))
}

async fn logout_all(
    State(s): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    access: Result<AccessCookie, ApiError>,
    PageBody(body): PageBody,
) -> Result<Response, PageError> {
    let form = Form::parse(&body);
    let Some(caller) = form_session(&s, &headers, access, &form).await? else {
        return Ok(see_page(&s.service, "/login"));
    };
    s.service.logout_all(&caller, &client).await?;
    Ok(ended(&s.service, "/login?done=logout"))
}

async fn logout(
    State(s): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    access: Result<AccessCookie, ApiError>,
    PageBody(body): PageBody,
) -> Result<Response, PageError> {
    let form = Form::parse(&body);
    let Some(caller) = form_session(&s, &headers, access, &form).await? else {
        return Ok(ended(&s.service, "/login"));
    };
    s.service.logout(&caller, None, &client).await?;
    Ok(ended(&s.service, "/login?done=logout"))
}

async fn change_password(
    State(s): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    access: Result<AccessCookie, ApiError>,
    PageBody(body): PageBody,
) -> Result<Response, PageError> {
    let form = Form::parse(&body);
    let Some(caller) = form_session(&s, &headers, access, &form).await? else {
        return Ok(see_page(&s.service, "/login"));
    };
    let current = SecretString::new(form.required("current_password")?.to_owned());
    let new = SecretString::new(form.required("new_password")?.to_owned());
    match s
        .service
        .change_password(&caller, current, new, &client)
        .await
    {
        Ok(()) => Ok(ended(&s.service, "/login?done=password")),
        Err(DomainError::InvalidCredentials) => {
            account_html(
                &s,
                &caller,
                StatusCode::FORBIDDEN,
                Said::error("The current password is wrong; the password was not changed."),
            )
            .await
        }
        Err(DomainError::InvalidRequest { message, .. }) => {
            let text = format!("The new password was refused: {message}.");
            account_html(&s, &caller, StatusCode::BAD_REQUEST, Said::error(&text)).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `YYYY-MM-DD HH:MM UTC` of Unix seconds.
pub(super) fn utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(1_800_000_000), "2027-01-15 08:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
    }
}
