//! Passkeys over JSON: registration and removal by a signed-in user, passwordless sign-in,
//! and the start of a passkey second step. The browser side is `static/passkeys.js`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use super::error::{ApiError, ErrorBody};
use super::extract::{AccessCookie, ApiJson, ApiPath, Bearer, Client};
use super::handlers::{login_answer, no_store, Delivery};
use super::AppState;
use crate::domain::passkeys::Ceremony;
use crate::domain::{DomainError, Principal};
use crate::store::PasskeyRecord;

/// A ceremony for the browser (wire type): the options of
/// `navigator.credentials.create()` or `.get()` and the handle to send back.
#[derive(Serialize, ToSchema)]
pub(super) struct CeremonyView {
    /// Send it back with the authenticator's answer.
    challenge_id: String,
    /// WebAuthn's options in their JSON form (`challenge`, `rp`, `user`, ... base64url).
    #[serde(rename = "publicKey")]
    #[schema(value_type = Object)]
    public_key: Value,
}

impl From<Ceremony> for CeremonyView {
    fn from(c: Ceremony) -> Self {
        let public_key = match c.options {
            Value::Object(mut o) => o.remove("publicKey").unwrap_or(Value::Null),
            other => other,
        };
        CeremonyView {
            challenge_id: c.challenge_id,
            public_key,
        }
    }
}

/// A passkey as its owner sees it (wire type).
#[derive(Serialize, ToSchema)]
pub(super) struct PasskeyView {
    /// The credential id (base64url).
    id: String,
    /// The name given at registration.
    name: String,
    /// Unix seconds.
    created_at: i64,
    /// Unix seconds; absent when never used to sign in.
    #[serde(skip_serializing_if = "Option::is_none")]
    last_used_at: Option<i64>,
}

impl From<PasskeyRecord> for PasskeyView {
    fn from(p: PasskeyRecord) -> Self {
        PasskeyView {
            id: p.id,
            name: p.name,
            created_at: p.created_at,
            last_used_at: p.last_used_at,
        }
    }
}

/// `GET /v1/webauthn/credentials` answer.
#[derive(Serialize, ToSchema)]
pub(super) struct PasskeyList {
    /// The caller's passkeys, oldest first.
    passkeys: Vec<PasskeyView>,
}

/// `POST /v1/webauthn/register/finish` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RegisterFinish {
    /// The handle of `POST /v1/webauthn/register/start`.
    challenge_id: String,
    /// A name for the passkey, 1 to 64 characters.
    name: String,
    /// What `navigator.credentials.create()` returned, in its JSON form.
    #[schema(value_type = Object)]
    credential: Box<RegisterPublicKeyCredential>,
}

/// `POST /v1/webauthn/login/finish` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SignInFinish {
    /// The handle of `POST /v1/webauthn/login/start`.
    challenge_id: String,
    /// What `navigator.credentials.get()` returned, in its JSON form.
    #[schema(value_type = Object)]
    credential: Box<PublicKeyCredential>,
    /// Where the tokens go: the JSON body (default) or `HttpOnly` cookies.
    #[serde(default)]
    delivery: Delivery,
}

/// `POST /v1/login/mfa/webauthn` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SecondStepStart {
    /// The `mfa_token` of the `mfa_required` answer.
    mfa_token: String,
}

#[utoipa::path(post, path = "/v1/webauthn/register/start", tag = "mfa",
    summary = "Start registering a passkey",
    description = "Options for `navigator.credentials.create()` (a discoverable credential with user verification), bound to the caller's session for 5 minutes.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The ceremony", body = CeremonyView),
        (status = 400, description = "Passkeys are off (the public URL's host is no domain name), the user has 20 passkeys, or more than one Authorization header", body = ErrorBody),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "The token does not allow this", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub(super) async fn register_start(
    State(s): State<AppState>,
    caller: Principal,
) -> Result<Response, ApiError> {
    let c = s.service.begin_passkey_registration(&caller).await?;
    Ok(no_store(Json(CeremonyView::from(c))))
}

#[utoipa::path(post, path = "/v1/webauthn/register/finish", tag = "mfa",
    summary = "Finish registering a passkey",
    security(("bearer" = [])),
    request_body(content = RegisterFinish, content_type = "application/json"),
    responses(
        (status = 201, description = "Registered", body = PasskeyView),
        (status = 400, description = "A malformed body or name, or more than one Authorization header", body = ErrorBody),
        (status = 401, description = "No token, an invalid one, or a refused passkey (`invalid_passkey`: unknown, spent, expired or another session's ceremony, wrong origin)", body = ErrorBody),
        (status = 403, description = "The token does not allow this", body = ErrorBody),
        (status = 409, description = "This passkey is registered already", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not application/json", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub(super) async fn register_finish(
    State(s): State<AppState>,
    _: Bearer,
    caller: Result<Principal, ApiError>,
    ApiJson(body): ApiJson<RegisterFinish>,
) -> Result<(StatusCode, Json<PasskeyView>), ApiError> {
    let p = s
        .service
        .finish_passkey_registration(&caller?, &body.challenge_id, &body.name, &body.credential)
        .await?;
    Ok((StatusCode::CREATED, Json(p.into())))
}

#[utoipa::path(get, path = "/v1/webauthn/credentials", tag = "mfa",
    summary = "The caller's passkeys",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The passkeys", body = PasskeyList),
        (status = 400, description = "More than one Authorization header", body = ErrorBody),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "The token does not allow this", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub(super) async fn list(
    State(s): State<AppState>,
    caller: Principal,
) -> Result<Json<PasskeyList>, ApiError> {
    let passkeys = s.service.passkeys(&caller).await?;
    Ok(Json(PasskeyList {
        passkeys: passkeys.into_iter().map(Into::into).collect(),
    }))
}

#[utoipa::path(delete, path = "/v1/webauthn/credentials/{id}", tag = "mfa",
    summary = "Remove one of the caller's passkeys",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Credential id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "A malformed id, or more than one Authorization header", body = ErrorBody),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "The token does not allow this", body = ErrorBody),
        (status = 404, description = "No such passkey of the caller", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub(super) async fn remove(
    State(s): State<AppState>,
    _: Bearer,
    ApiPath(id): ApiPath<String>,
    caller: Principal,
) -> Result<StatusCode, ApiError> {
    s.service.remove_passkey(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/webauthn/login/start", tag = "sessions",
    summary = "Start a passwordless sign-in with a passkey",
    description = "Options for `navigator.credentials.get()` without allowed credentials: the browser offers the discoverable passkeys it holds for this service. 5 minutes, single use.",
    responses(
        (status = 200, description = "The ceremony", body = CeremonyView),
        (status = 400, description = "Passkeys are off (the public URL's host is no domain name)", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub(super) async fn sign_in_start(State(s): State<AppState>) -> Result<Response, ApiError> {
    let c = s.service.begin_passkey_sign_in().await?;
    Ok(no_store(Json(CeremonyView::from(c))))
}

#[utoipa::path(post, path = "/v1/webauthn/login/finish", tag = "sessions",
    summary = "Finish a passwordless sign-in",
    description = "Answers the usual token pair (or cookies); the tokens say `amr: [\"hwk\" or \"swk\", \"mfa\"]` and `acr: urn:wristband:acr:phr`.",
    request_body(content = SignInFinish, content_type = "application/json"),
    responses(
        (status = 200, description = "Signed in", body = super::handlers::LoginResponse),
        (status = 400, description = "The body is not valid JSON of this shape", body = ErrorBody),
        (status = 401, description = "A refused passkey (`invalid_passkey`)", body = ErrorBody),
        (status = 403, description = "Cookie delivery from an origin that is not allowed", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not application/json", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub(super) async fn sign_in_finish(
    State(s): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SignInFinish>,
) -> Result<Response, ApiError> {
    if body.delivery == Delivery::Cookie {
        super::cookies::check_origin(&headers, &s.service)?;
    }
    let done = s
        .service
        .finish_passkey_sign_in(&body.challenge_id, &body.credential, &client)
        .await?;
    Ok(login_answer(&s, body.delivery, done, None))
}

#[utoipa::path(post, path = "/v1/login/mfa/webauthn", tag = "sessions",
    summary = "Start a passkey as the second step of a sign-in",
    description = "For a `mfa_required` answer whose `methods` hold `webauthn`: options for `navigator.credentials.get()` with the user's passkeys, bound to this second step. Finish with `POST /v1/login/mfa` (`method: webauthn`, `challenge_id`, `credential`).",
    request_body(content = SecondStepStart, content_type = "application/json"),
    responses(
        (status = 200, description = "The ceremony", body = CeremonyView),
        (status = 400, description = "The body is not valid JSON of this shape", body = ErrorBody),
        (status = 401, description = "An unknown, used, expired or exhausted `mfa_token` (`invalid_mfa_token`)", body = ErrorBody),
        (status = 404, description = "The user has no passkey", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not application/json", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub(super) async fn second_step_start(
    State(s): State<AppState>,
    ApiJson(body): ApiJson<SecondStepStart>,
) -> Result<Response, ApiError> {
    let c = s
        .service
        .begin_passkey_second_factor(&body.mfa_token)
        .await?;
    Ok(no_store(Json(CeremonyView::from(c))))
}

/// The caller of a script's request from the account page: the access cookie's live user
/// session, after the Origin check and the CSRF header check.
fn page_caller(
    s: &AppState,
    headers: &HeaderMap,
    access: AccessCookie,
) -> Result<Principal, ApiError> {
    super::cookies::check_origin(headers, &s.service)?;
    let caller = access
        .0
        .filter(|c| c.session_id().is_some())
        .ok_or(ApiError::Domain(DomainError::MissingToken))?;
    super::cookies::check_token(
        headers,
        None,
        &s.service,
        caller.session_id().unwrap_or_default(),
    )?;
    Ok(caller)
}

/// `POST /account/passkeys/register/start`: [`register_start`] for the account page.
pub(super) async fn page_register_start(
    State(s): State<AppState>,
    headers: HeaderMap,
    access: Result<AccessCookie, ApiError>,
) -> Result<Response, ApiError> {
    let caller = page_caller(&s, &headers, access?)?;
    let c = s.service.begin_passkey_registration(&caller).await?;
    Ok(no_store(Json(CeremonyView::from(c))))
}

/// `POST /account/passkeys/register/finish`: [`register_finish`] for the account page.
pub(super) async fn page_register_finish(
    State(s): State<AppState>,
    headers: HeaderMap,
    access: Result<AccessCookie, ApiError>,
    ApiJson(body): ApiJson<RegisterFinish>,
) -> Result<(StatusCode, Json<PasskeyView>), ApiError> {
    let caller = page_caller(&s, &headers, access?)?;
    let p = s
        .service
        .finish_passkey_registration(&caller, &body.challenge_id, &body.name, &body.credential)
        .await?;
    Ok((StatusCode::CREATED, Json(p.into())))
}
