//! The hosted pages of second factors: the second step of a sign-in, and on the account
//! page the authenticator's enrolment (a QR code drawn here, as SVG), its removal and the
//! recovery codes.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use minijinja::context;
use zeroize::Zeroizing;

use super::cookies;
use super::error::{ApiError, PageError};
use super::extract::{AccessCookie, Client};
use super::pages::{
    account_html, form_session, login_html, page_session, see_page, signed_in, strength_context,
    Form, LoginView, PageBody, Said,
};
use super::templates::{base, html, render};
use super::AppState;
use crate::domain::mfa::{
    MfaChallenge, SecondFactor, TotpEnrolment, METHOD_RECOVERY, METHOD_TOTP, METHOD_WEBAUTHN,
};
use crate::domain::strength::Strength;
use crate::domain::{AuthService, DomainError, Principal, ReturnTarget};

/// The routes of these pages (merged into [`super::pages::routes`]).
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/login/mfa", post(second_step_form))
        .route("/account/mfa/totp", get(enrol_page).post(begin_enrolment))
        .route("/account/mfa/totp/confirm", post(confirm))
        .route("/account/mfa/totp/remove", post(remove))
        .route("/account/mfa/recovery-codes", post(new_recovery_codes))
        .route("/account/passkeys/remove", post(remove_passkey))
        // The account page's script registers passkeys here, with its cookies: JSON in
        // and out, both CSRF checks, the same domain calls as /v1/webauthn/register/*.
        .route(
            "/account/passkeys/register/start",
            post(super::passkeys::page_register_start),
        )
        .route(
            "/account/passkeys/register/finish",
            post(super::passkeys::page_register_finish),
        )
}

/// The second step of a sign-in: a form for the app's code, and one for a recovery code.
/// A page that shows a secret (a key, recovery codes, a second step's token): never kept
/// by a cache.
fn secret_page(
    status: StatusCode,
    template: &str,
    ctx: minijinja::Value,
) -> Result<Response, PageError> {
    let mut r = html(status, render(template, ctx)?);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// With `enrolment`, the sign-in enrols an authenticator first (the user's role needs one):
/// the page shows its QR code and key above the code form.
pub(super) fn second_step_html(
    service: &AuthService,
    status: StatusCode,
    challenge: &MfaChallenge,
    enrolment: Option<&TotpEnrolment>,
    return_to: Option<&ReturnTarget>,
    strength: &Strength,
    error: Option<&str>,
) -> Result<Response, PageError> {
    let enrol = match enrolment {
        Some(e) => Some(context! {
            qr_svg => minijinja::Value::from_safe_string(qr_svg(&e.otpauth_uri)?),
            secret => &*e.secret,
        }),
        None => None,
    };
    let ctx = context! {
        base => base(service.public_url().prefix()),
        mfa_token => challenge.mfa_token,
        enrol,
                recovery => enrolment.is_none() && challenge.methods.contains(&METHOD_RECOVERY),
        totp => enrolment.is_some() || challenge.methods.contains(&METHOD_TOTP),
        webauthn => enrolment.is_none()
            && service.passkeys_enabled()
            && challenge.methods.contains(&METHOD_WEBAUTHN),
        return_to => return_to.map(ReturnTarget::as_str),
        strength => strength_context(Some(strength)),
        error,
    };
    // The page holds the mfa_token.
    secret_page(status, "login_mfa.html", ctx)
}

async fn second_step_form(
    State(s): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    PageBody(body): PageBody,
) -> Result<Response, PageError> {
    cookies::check_origin(&headers, &s.service)?;
    let form = Form::parse(&body);
    let mfa_token = form.required("mfa_token")?.to_owned();
    let method = form.required("method")?;
    let code = form.required("code")?.to_owned();
    let return_to = form
        .get("return_to")
        .and_then(|raw| s.service.return_target(raw));
    let strength = form.strength()?;
    let factor =
        SecondFactor::parse(method, code).ok_or(PageError(ApiError::InvalidForm("method")))?;
    // An enrolling sign-in shows its key again after a wrong code.
    let enrolment = match form.get("enrol") {
        Some(_) => match s.service.pending_totp_for_login(&mfa_token).await {
            Ok(e) => Some(e),
            Err(DomainError::InvalidMfaToken | DomainError::NotFound) => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    // A second try shows the code forms: the methods are not known again here.
    let again = |status, error| {
        let challenge = MfaChallenge {
            mfa_token: mfa_token.clone(),
            methods: vec![METHOD_TOTP, METHOD_RECOVERY],
            expires_in: 0,
            enrol: enrolment.is_some(),
        };
        second_step_html(
            &s.service,
            status,
            &challenge,
            enrolment.as_ref(),
            return_to.as_ref(),
            &strength,
            Some(error),
        )
    };
    match s.service.login_mfa(&mfa_token, factor, &client).await {
        Ok(done) => signed_in(&s, &done.login, return_to.as_ref(), &strength).await,
        Err(DomainError::InvalidCode) => again(
            StatusCode::UNAUTHORIZED,
            "That code is wrong or was used already. Try the next one.",
        ),
        Err(DomainError::Throttled { retry_after }) => {
            let mut r = again(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many wrong codes. Wait a little and try again.",
            )?;
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
            Ok(r)
        }
        Err(DomainError::InvalidMfaToken) => login_html(
            &s.service,
            StatusCode::UNAUTHORIZED,
            LoginView {
                error: Some(
                    "That sign-in took too long or had too many wrong codes. Sign in again.",
                ),
                return_to: return_to.as_ref(),
                strength: Some(&strength),
                ..LoginView::default()
            },
        ),
        Err(e) => Err(e.into()),
    }
}

/// A QR code of `text` as an inline SVG element (no XML prolog), labelled for screen
/// readers by the figure's caption.
fn qr_svg(text: &str) -> Result<String, DomainError> {
    let code = qrcode::QrCode::new(text.as_bytes())
        .map_err(|e| DomainError::internal_because("QR code", e))?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    let start = svg.find("<svg").unwrap_or(0);
    Ok(svg[start..].replacen("<svg", "<svg role=\"img\" aria-hidden=\"true\"", 1))
}

async fn enrol_html(
    s: &AppState,
    caller: &Principal,
    status: StatusCode,
    error: Option<&str>,
) -> Result<Response, PageError> {
    let enrolment = match s.service.pending_totp(caller).await {
        Ok(e) => e,
        Err(DomainError::NotFound) => return Ok(see_page(&s.service, "/account")),
        Err(e) => return Err(e.into()),
    };
    let ctx = context! {
        base => base(s.service.public_url().prefix()),
        qr_svg => minijinja::Value::from_safe_string(qr_svg(&enrolment.otpauth_uri)?),
        secret => &*enrolment.secret,
        csrf_token => s.service.keys().csrf_token(caller.session_id().unwrap_or_default()),
        error,
    };
    secret_page(status, "mfa_enrol.html", ctx)
}

async fn enrol_page(
    State(s): State<AppState>,
    access: Result<AccessCookie, ApiError>,
) -> Result<Response, PageError> {
    match page_session(access)? {
        Some(caller) => enrol_html(&s, &caller, StatusCode::OK, None).await,
        None => Ok(see_page(&s.service, "/login")),
    }
}

async fn begin_enrolment(
    State(s): State<AppState>,
    headers: HeaderMap,
    access: Result<AccessCookie, ApiError>,
    PageBody(body): PageBody,
) -> Result<Response, PageError> {
    let form = Form::parse(&body);
    let Some(caller) = form_session(&s, &headers, access, &form).await? else {
        return Ok(see_page(&s.service, "/login"));
    };
    match s.service.begin_totp(&caller).await {
        Ok(_) => Ok(see_page(&s.service, "/account/mfa/totp")),
        Err(DomainError::Conflict) => Ok(see_page(&s.service, "/account")),
        Err(e) => Err(e.into()),
    }
}

fn codes_html(
    s: &AppState,
    codes: &[Zeroizing<String>],
    notice: &str,
) -> Result<Response, PageError> {
    let codes: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
    let ctx = context! {
        base => base(s.service.public_url().prefix()),
        codes,
        notice,
    };
    secret_page(StatusCode::OK, "recovery_codes.html", ctx)
}

async fn confirm(
    State(s): State<AppState>,
    headers: HeaderMap,
    access: Result<AccessCookie, ApiError>,
    PageBody(body): PageBody,
) -> Result<Response, PageError> {
    let form = Form::parse(&body);
    let Some(caller) = form_session(&s, &headers, access, &form).await? else {
        return Ok(see_page(&s.service, "/login"));
    };
    let code = form.required("code")?;
    match s.service.confirm_totp(&caller, code).await {
        Ok(()) => {
            let codes = s.service.regenerate_recovery_codes(&caller).await?;
            codes_html(
                &s,
                &codes,
                "The authenticator app is on: from now on you sign in with a code from it.",
            )
        }
        Err(DomainError::InvalidCode) => {
            let text = "That code is wrong. Check the app's clock and enter the current code.";
            enrol_html(&s, &caller, StatusCode::UNAUTHORIZED, Some(text)).await
        }
        Err(DomainError::NotFound | DomainError::Conflict) => Ok(see_page(&s.service, "/account")),
        Err(e) => Err(e.into()),
    }
}

async fn new_recovery_codes(
    State(s): State<AppState>,
    headers: HeaderMap,
    access: Result<AccessCookie, ApiError>,
    PageBody(body): PageBody,
) -> Result<Response, PageError> {
    let form = Form::parse(&body);
    let Some(caller) = form_session(&s, &headers, access, &form).await? else {
        return Ok(see_page(&s.service, "/login"));
    };
    match s.service.regenerate_recovery_codes(&caller).await {
        Ok(codes) => codes_html(
            &s,
            &codes,
            "New recovery codes: the previous ones no longer work.",
        ),
        Err(DomainError::NotFound) => Ok(see_page(&s.service, "/account")),
        Err(e) => Err(e.into()),
    }
}

async fn remove(
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
    let code = form.required("code")?.trim().to_owned();
    // Six digits are the app's code; anything else is taken as a recovery code.
    let factor = if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        SecondFactor::Totp(Zeroizing::new(code))
    } else {
        SecondFactor::Recovery(Zeroizing::new(code))
    };
    let said = match s.service.remove_totp(&caller, factor, &client).await {
        Ok(()) => (
            StatusCode::OK,
            Said::notice("The authenticator app is off."),
        ),
        Err(DomainError::InvalidCode) => (
            StatusCode::UNAUTHORIZED,
            Said::error("That code is wrong: the authenticator app is still on."),
        ),
        Err(DomainError::Throttled { .. }) => (
            StatusCode::TOO_MANY_REQUESTS,
            Said::error("Too many wrong codes. Wait a little and try again."),
        ),
        Err(DomainError::NotFound) => (StatusCode::OK, Said::default()),
        Err(e) => return Err(e.into()),
    };
    account_html(&s, &caller, said.0, said.1).await
}

async fn remove_passkey(
    State(s): State<AppState>,
    headers: HeaderMap,
    access: Result<AccessCookie, ApiError>,
    PageBody(body): PageBody,
) -> Result<Response, PageError> {
    let form = Form::parse(&body);
    let Some(caller) = form_session(&s, &headers, access, &form).await? else {
        return Ok(see_page(&s.service, "/login"));
    };
    let id = form.required("id")?;
    let said = match s.service.remove_passkey(&caller, id).await {
        Ok(()) => Said::notice("The passkey is removed."),
        Err(DomainError::NotFound) => Said::error("That passkey is not yours, or is gone."),
        Err(e) => return Err(e.into()),
    };
    account_html(&s, &caller, StatusCode::OK, said).await
}
