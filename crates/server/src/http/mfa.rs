//! Second factors over JSON: the second step of a sign-in, TOTP enrolment and removal,
//! recovery codes, and the caller's status.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, Bearer, Client};
use super::handlers::{login_answer, no_store, Delivery};
use super::AppState;
use crate::domain::mfa::{SecondFactor, METHOD_WEBAUTHN};
use crate::domain::Principal;

/// `POST /v1/login/mfa` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct MfaLoginRequest {
    /// The `mfa_token` of the `mfa_required` answer.
    mfa_token: String,
    /// `totp`, `recovery` or `webauthn`.
    method: String,
    /// The authenticator's code, or a recovery code (`totp`, `recovery`).
    #[serde(default)]
    #[schema(format = Password)]
    code: Option<String>,
    /// The handle of `POST /v1/login/mfa/webauthn` (`webauthn`).
    #[serde(default)]
    challenge_id: Option<String>,
    /// What `navigator.credentials.get()` returned, in its JSON form (`webauthn`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    credential: Option<Box<webauthn_rs::prelude::PublicKeyCredential>>,
    /// Where the tokens go: the JSON body (default) or `HttpOnly` cookies.
    #[serde(default)]
    delivery: Delivery,
}

impl MfaLoginRequest {
    fn factor(&mut self) -> Result<SecondFactor, ApiError> {
        if self.method == METHOD_WEBAUTHN {
            return match (self.challenge_id.take(), self.credential.take()) {
                (Some(challenge_id), Some(credential)) => Ok(SecondFactor::Passkey {
                    challenge_id,
                    credential,
                }),
                _ => Err(ApiError::InvalidRequest(
                    "method webauthn takes challenge_id and credential",
                )),
            };
        }
        let code = self
            .code
            .take()
            .ok_or(ApiError::InvalidRequest("this method takes a code"))?;
        SecondFactor::parse(&self.method, code).ok_or(ApiError::InvalidRequest(
            "method must be `totp`, `recovery` or `webauthn`",
        ))
    }
}

/// A second factor's code (`method` defaults to `totp`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CodeRequest {
    /// `totp` (the default) or `recovery`.
    #[serde(default)]
    method: Option<String>,
    /// The code.
    #[schema(format = Password)]
    code: String,
}

impl CodeRequest {
    fn factor(self) -> Result<SecondFactor, ApiError> {
        let method = self.method.as_deref().unwrap_or("totp");
        SecondFactor::parse(method, self.code).ok_or(ApiError::InvalidRequest(
            "method must be `totp` or `recovery`",
        ))
    }
}

/// A new TOTP authenticator (wire type): shown once.
#[derive(Serialize, ToSchema)]
pub(super) struct TotpEnrolmentView {
    /// The secret in base32, to type into an app.
    secret: String,
    /// The `otpauth://totp/` URI, for a QR code.
    otpauth_uri: String,
}

/// A new set of recovery codes (wire type): shown once.
#[derive(Serialize, ToSchema)]
pub(super) struct RecoveryCodes {
    /// Ten single-use codes; the previous set no longer works.
    codes: Vec<String>,
}

/// The caller's second factors (wire type).
#[derive(Serialize, ToSchema)]
pub(super) struct MfaStatusView {
    /// A confirmed TOTP authenticator.
    totp: bool,
    /// An enrolment waiting for its first code.
    totp_pending: bool,
    /// Unused recovery codes.
    recovery_codes_left: i64,
    /// What a sign-in's second step can use.
    methods: Vec<&'static str>,
}

#[utoipa::path(post, path = "/v1/login/mfa", tag = "sessions",
    summary = "Finish a sign-in with a second factor",
        description = "Takes the `mfa_token` of a `mfa_required` answer of `POST /v1/login` (single use, 5 minutes) and a TOTP or recovery code, or a passkey's assertion (`method: webauthn`, after `POST /v1/login/mfa/webauthn`). Wrong codes are throttled per user and per address; a token takes 5 wrong codes at most.",
    request_body(content = MfaLoginRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Signed in", body = super::handlers::LoginResponse),
        (status = 400, description = "The body is not valid JSON of this shape, or an unknown method", body = ErrorBody),
        (status = 401, description = "A wrong or spent code (`invalid_code`), or an unknown, used, expired or exhausted `mfa_token` (`invalid_mfa_token`)", body = ErrorBody),
        (status = 403, description = "Cookie delivery from an origin that is not allowed", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not application/json", body = ErrorBody),
        (status = 429, description = "Too many wrong codes", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "The store is unavailable", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub(super) async fn login(
    State(s): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    ApiJson(mut body): ApiJson<MfaLoginRequest>,
) -> Result<Response, ApiError> {
    if body.delivery == Delivery::Cookie {
        super::cookies::check_origin(&headers, &s.service)?;
    }
    let factor = body.factor()?;
    let done = s
        .service
        .login_mfa(&body.mfa_token, factor, &client)
        .await?;
    Ok(login_answer(
        &s,
        body.delivery,
        done.login,
        done.recovery_codes_left,
    ))
}

/// `POST /v1/login/enrol` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct EnrolRequest {
    /// The `mfa_token` of the `mfa_enrolment_required` answer.
    mfa_token: String,
}

#[utoipa::path(post, path = "/v1/login/enrol", tag = "sessions",
    summary = "Enrol an authenticator during a sign-in that needs one",
    description = "For an `mfa_enrolment_required` answer of `POST /v1/login` (the user's role needs a second factor and the user has none): returns a new TOTP secret (again on each call). `POST /v1/login/mfa` with `method: totp` and its first code confirms it and finishes the sign-in.",
    request_body(content = EnrolRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The secret, shown once", body = TotpEnrolmentView),
        (status = 400, description = "The body is not valid JSON of this shape", body = ErrorBody),
        (status = 401, description = "An unknown, used, expired or exhausted `mfa_token`, or one that does not enrol (`invalid_mfa_token`)", body = ErrorBody),
        (status = 409, description = "The user has a confirmed authenticator already", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not application/json", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub(super) async fn login_enrol(
    State(s): State<AppState>,
    ApiJson(body): ApiJson<EnrolRequest>,
) -> Result<Response, ApiError> {
    let e = s.service.begin_totp_for_login(&body.mfa_token).await?;
    Ok(no_store(Json(TotpEnrolmentView {
        secret: e.secret.to_string(),
        otpauth_uri: e.otpauth_uri.to_string(),
    })))
}

#[utoipa::path(get, path = "/v1/mfa", tag = "mfa",
    summary = "The caller's second factors",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The second factors", body = MfaStatusView),
        (status = 400, description = "More than one Authorization header", body = ErrorBody),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "The token does not allow this", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub(super) async fn status(
    State(s): State<AppState>,
    caller: Principal,
) -> Result<Json<MfaStatusView>, ApiError> {
    let user = s.service.me(&caller).await?;
    let status = s.service.mfa_status(&user.id).await?;
    Ok(Json(MfaStatusView {
        methods: status.methods(),
        totp: status.totp,
        totp_pending: status.totp_pending,
        recovery_codes_left: status.recovery_codes_left,
    }))
}

#[utoipa::path(post, path = "/v1/mfa/totp", tag = "mfa",
    summary = "Start enrolling a TOTP authenticator",
    description = "Returns a new secret (again on each call until a code confirms it). The authenticator counts only once `POST /v1/mfa/totp/confirm` took a first code.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The secret, shown once", body = TotpEnrolmentView),
        (status = 400, description = "More than one Authorization header", body = ErrorBody),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "The token does not allow this", body = ErrorBody),
        (status = 409, description = "The user has a confirmed authenticator already", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub(super) async fn begin_totp(
    State(s): State<AppState>,
    caller: Principal,
) -> Result<Response, ApiError> {
    let e = s.service.begin_totp(&caller).await?;
    Ok(no_store(Json(TotpEnrolmentView {
        secret: e.secret.to_string(),
        otpauth_uri: e.otpauth_uri.to_string(),
    })))
}

#[utoipa::path(post, path = "/v1/mfa/totp/confirm", tag = "mfa",
    summary = "Confirm a TOTP enrolment with a first code",
    description = "From now on the user signs in with a second factor. Get the recovery codes next (`POST /v1/mfa/recovery-codes`).",
    security(("bearer" = [])),
    request_body(content = CodeRequest, content_type = "application/json"),
    responses(
        (status = 204, description = "Confirmed"),
        (status = 400, description = "A malformed body, or more than one Authorization header", body = ErrorBody),
        (status = 401, description = "No token, an invalid one, or a wrong code (`invalid_code`)", body = ErrorBody),
        (status = 403, description = "The token does not allow this", body = ErrorBody),
        (status = 404, description = "No enrolment was started", body = ErrorBody),
        (status = 409, description = "The authenticator is confirmed already", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not application/json", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub(super) async fn confirm_totp(
    State(s): State<AppState>,
    _: Bearer,
    caller: Result<Principal, ApiError>,
    ApiJson(body): ApiJson<CodeRequest>,
) -> Result<StatusCode, ApiError> {
    s.service.confirm_totp(&caller?, &body.code).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/v1/mfa/totp", tag = "mfa",
    summary = "Remove the TOTP authenticator and the recovery codes",
    description = "Needs a fresh second factor: a current TOTP code, or a recovery code (`method: recovery`).",
    security(("bearer" = [])),
    request_body(content = CodeRequest, content_type = "application/json"),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "A malformed body, or more than one Authorization header", body = ErrorBody),
        (status = 401, description = "No token, an invalid one, or a wrong code (`invalid_code`)", body = ErrorBody),
        (status = 403, description = "The token does not allow this", body = ErrorBody),
        (status = 404, description = "The user has no authenticator", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not application/json", body = ErrorBody),
        (status = 429, description = "Too many wrong codes", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "The store is unavailable", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub(super) async fn remove_totp(
    State(s): State<AppState>,
    Client(client): Client,
    _: Bearer,
    caller: Result<Principal, ApiError>,
    ApiJson(body): ApiJson<CodeRequest>,
) -> Result<StatusCode, ApiError> {
    let factor = body.factor()?;
    s.service.remove_totp(&caller?, factor, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/mfa/recovery-codes", tag = "mfa",
    summary = "A new set of recovery codes",
    description = "Ten single-use codes, shown once; the previous set stops working. Each use is audited.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The codes", body = RecoveryCodes),
        (status = 400, description = "More than one Authorization header", body = ErrorBody),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "The token does not allow this", body = ErrorBody),
        (status = 404, description = "The user has no confirmed authenticator", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub(super) async fn recovery_codes(
    State(s): State<AppState>,
    caller: Principal,
) -> Result<Response, ApiError> {
    let codes = s.service.regenerate_recovery_codes(&caller).await?;
    Ok(no_store(Json(RecoveryCodes {
        codes: codes.iter().map(|c| c.to_string()).collect(),
    })))
}
