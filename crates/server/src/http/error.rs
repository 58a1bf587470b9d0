//! The one place where errors become HTTP responses: status, `WWW-Authenticate` and a stable
//! JSON body `{"error": code, "error_description": text}`.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use minijinja::context;
use serde::Serialize;

use super::templates::{base, html, render};
use super::AppState;
use crate::domain::mfa::MfaChallenge;
use crate::domain::oauth::OAuthError;
use crate::domain::{Chain, DomainError};

/// The realm named in `WWW-Authenticate`.
pub const REALM: &str = "wristband";

/// An error on its way to the client.
#[derive(Debug)]
#[non_exhaustive]
pub enum ApiError {
    /// From the domain.
    Domain(DomainError),
    /// From an OAuth endpoint (RFC 6749 §5.2).
    OAuth(OAuthError),
    /// The body is not valid JSON, or not of the expected shape.
    MalformedBody,
    /// The body is JSON with a field that the endpoint does not take, or without one that
    /// it needs: the field is named.
    BodyField {
        /// `unknown` or `missing`.
        problem: &'static str,
        /// The field's name as the body (or the endpoint) spells it, at most 64 characters.
        field: String,
    },
    /// A path parameter is malformed (not UTF-8, or not of its type).
    MalformedPath,
    /// The query string is malformed.
    MalformedQuery,
    /// Another status produced outside the handlers (a layer or the framework), given
    /// the JSON body here.
    Status(StatusCode),
    /// The body is larger than the limit.
    PayloadTooLarge,
    /// The body is not `application/json`.
    UnsupportedMediaType,
    /// No route.
    NotFound,
    /// Route exists, method does not.
    MethodNotAllowed,
    /// The request is malformed in another way (e.g. two credentials).
    InvalidRequest(&'static str),
    /// A cookie-authenticated request failed the CSRF checks (token, Origin,
    /// Sec-Fetch-Site); the text says which, and is safe to show.
    CsrfFailed(&'static str),
    /// A form post lacks this field.
    InvalidForm(&'static str),
}

impl From<OAuthError> for ApiError {
    fn from(e: OAuthError) -> Self {
        ApiError::OAuth(e)
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        ApiError::Domain(e)
    }
}

/// The body of every error: a stable code, a text safe to show, and for internal errors
/// the id under which the details were logged.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    /// Stable error code, e.g. `invalid_request`, `invalid_token`, `invalid_grant`.
    pub error: &'a str,
    /// Text safe to show.
    pub error_description: &'a str,
    /// For internal errors: the id under which the details were logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<&'a str>,
    /// With `mfa_required` (and `mfa_enrolment_required`): the single-use token of the
    /// second step (`POST /v1/login/mfa`), valid for 5 minutes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mfa_token: Option<&'a str>,
    /// With `mfa_required`: the second factors the user can finish with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub methods: Option<&'a [&'static str]>,
}

/// An error described: status, stable code, safe text and extra headers. Rendered as JSON
/// for the API and as an HTML page for the hosted pages.
#[derive(Debug, Clone)]
pub struct Described {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable error code.
    pub code: String,
    /// Text safe to show to the client.
    pub description: String,
    /// Extra headers (`WWW-Authenticate`, `Retry-After`).
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
    /// For internal errors: the id under which the details were logged.
    pub correlation_id: Option<String>,
    /// With `mfa_required`: the second step to take.
    pub challenge: Option<Box<MfaChallenge>>,
}

impl Described {
    fn header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    fn into_json(self) -> Response {
        let body = ErrorBody {
            error: &self.code,
            error_description: &self.description,
            correlation_id: self.correlation_id.as_deref(),
            mfa_token: self.challenge.as_ref().map(|c| c.mfa_token.as_str()),
            methods: self.challenge.as_ref().map(|c| c.methods.as_slice()),
        };
        let mut r = (self.status, axum::Json(body)).into_response();
        for (name, value) in self.headers {
            r.headers_mut().insert(name, value);
        }
        r
    }
}

fn json(status: StatusCode, error: &str, description: &str) -> Described {
    Described {
        status,
        code: error.to_owned(),
        description: description.to_owned(),
        headers: Vec::new(),
        correlation_id: None,
        challenge: None,
    }
}

fn bearer_challenge(error: Option<&str>) -> HeaderValue {
    let value = match error {
        None => format!("Bearer realm=\"{REALM}\""),
        Some(e) => format!("Bearer realm=\"{REALM}\", error=\"{e}\""),
    };
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("Bearer"))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.describe().into_json()
    }
}

impl ApiError {
    /// Status, code, text and headers of this error: the one mapping of errors to HTTP.
    pub fn describe(self) -> Described {
        match self {
            ApiError::Domain(e) => describe_domain(e),
            ApiError::OAuth(e) => describe_oauth(e),
            ApiError::NotFound => describe_domain(DomainError::NotFound),
            ApiError::MalformedBody => json(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the request body is not valid JSON of the expected shape",
            ),
            ApiError::BodyField { problem, field } => json(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("the request body has {problem} field `{field}`"),
            ),
            ApiError::MalformedPath => json(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "a path parameter is malformed",
            ),
            ApiError::MalformedQuery => json(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the query string is malformed",
            ),
            ApiError::Status(StatusCode::NOT_FOUND) => ApiError::NotFound.describe(),
            ApiError::Status(StatusCode::METHOD_NOT_ALLOWED) => {
                ApiError::MethodNotAllowed.describe()
            }
            ApiError::Status(StatusCode::PAYLOAD_TOO_LARGE) => ApiError::PayloadTooLarge.describe(),
            ApiError::Status(StatusCode::UNSUPPORTED_MEDIA_TYPE) => {
                ApiError::UnsupportedMediaType.describe()
            }
            ApiError::Status(status) if status.is_server_error() => {
                let code = if status == StatusCode::SERVICE_UNAVAILABLE {
                    "temporarily_unavailable"
                } else {
                    "server_error"
                };
                json(status, code, "the service could not answer this request")
            }
            ApiError::Status(status) => json(
                status,
                "invalid_request",
                status
                    .canonical_reason()
                    .unwrap_or("the request was refused"),
            ),
            ApiError::PayloadTooLarge => json(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is too large",
            ),
            ApiError::UnsupportedMediaType => json(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected Content-Type: application/json",
            ),
            ApiError::MethodNotAllowed => json(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this resource",
            ),
            ApiError::InvalidRequest(text) => {
                json(StatusCode::BAD_REQUEST, "invalid_request", text).header(
                    header::WWW_AUTHENTICATE,
                    bearer_challenge(Some("invalid_request")),
                )
            }
            ApiError::CsrfFailed(text) => json(StatusCode::FORBIDDEN, "csrf_failed", text),
            ApiError::InvalidForm(field) => json(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("the form field {field} is missing"),
            ),
        }
    }
}

/// The answer to a domain error; an unexpected one is logged here, with its chain.
fn describe_domain(e: DomainError) -> Described {
    use DomainError as D;
    match e {
        D::InvalidCredentials => json(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "invalid username or password",
        ),
        D::MfaRequired(challenge) if challenge.enrol => Described {
            challenge: Some(challenge),
            ..json(
                StatusCode::UNAUTHORIZED,
                "mfa_enrolment_required",
                "the password is right; this account's role needs a second factor: enrol an \
                 authenticator (POST /v1/login/enrol) and finish with its first code",
            )
        },
        D::MfaRequired(challenge) => Described {
            challenge: Some(challenge),
            ..json(
                StatusCode::UNAUTHORIZED,
                "mfa_required",
                "the password is right; a second factor is required",
            )
        },
        D::InvalidMfaToken => json(
            StatusCode::UNAUTHORIZED,
            "invalid_mfa_token",
            "the mfa_token is unknown, used, expired or spent: sign in again",
        ),
        D::PasskeyRefused => json(
            StatusCode::UNAUTHORIZED,
            "invalid_passkey",
            "the passkey was not accepted",
        ),
        D::InvalidCode => json(
            StatusCode::UNAUTHORIZED,
            "invalid_code",
            "the code is wrong or was used already",
        ),
        D::Throttled { retry_after } => json(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "too many failed attempts; retry later",
        )
        .header(header::RETRY_AFTER, HeaderValue::from(retry_after.max(1))),
        D::RateLimited { retry_after } => json(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "too many requests from this address; retry later",
        )
        .header(header::RETRY_AFTER, HeaderValue::from(retry_after.max(1))),
        D::InvalidGrant => json(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "the refresh token is invalid, expired or revoked",
        ),
        D::MissingToken => json(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a bearer token is required",
        )
        .header(header::WWW_AUTHENTICATE, bearer_challenge(None)),
        D::InvalidToken { expired } => {
            let description = if expired {
                "token expired"
            } else {
                "token invalid"
            };
            json(StatusCode::UNAUTHORIZED, "invalid_token", description).header(
                header::WWW_AUTHENTICATE,
                bearer_challenge(Some("invalid_token")),
            )
        }
        D::Forbidden => json(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "the token does not allow this",
        )
        .header(
            header::WWW_AUTHENTICATE,
            bearer_challenge(Some("insufficient_scope")),
        ),
        D::InvalidRequest { message, .. } => {
            json(StatusCode::BAD_REQUEST, "invalid_request", &message)
        }
        D::Conflict => json(
            StatusCode::CONFLICT,
            "conflict",
            "the resource already exists",
        ),
        D::NotFound => json(StatusCode::NOT_FOUND, "not_found", "no such resource"),
        e @ D::Unavailable { .. } => {
            tracing::error!(error = %Chain(&e), "store unavailable");
            json(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the service is temporarily unavailable",
            )
            .header(header::RETRY_AFTER, HeaderValue::from_static("1"))
        }
        e @ D::Internal { .. } => {
            let id = crate::domain::random_id("err_").unwrap_or_else(|_| "err_unknown".into());
            tracing::error!(correlation_id = %id, error = %Chain(&e), "internal error");
            let mut d = json(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "internal error",
            );
            d.correlation_id = Some(id);
            d
        }
    }
}

/// The answer to an OAuth endpoint's error (RFC 6749 §5.2).
fn describe_oauth(e: OAuthError) -> Described {
    let (status, description) = match e {
        OAuthError::InvalidClient => (StatusCode::UNAUTHORIZED, "client authentication failed"),
        OAuthError::InvalidGrant => (
            StatusCode::BAD_REQUEST,
            "the grant is invalid, expired or revoked",
        ),
        OAuthError::InvalidScope => (
            StatusCode::BAD_REQUEST,
            "scope or audience not allowed for this client",
        ),
        OAuthError::NoAudience => (
            StatusCode::BAD_REQUEST,
            "this client has no registered audience: register the client with \
                 --audience naming the API its tokens are for",
        ),
        OAuthError::UnsupportedGrantType => (
            StatusCode::BAD_REQUEST,
            "grant_type must be client_credentials or refresh_token",
        ),
        OAuthError::UnauthorizedClient => (StatusCode::BAD_REQUEST, "this client may not do this"),
        OAuthError::InvalidRequest => (
            StatusCode::BAD_REQUEST,
            "a parameter is missing, repeated or malformed",
        ),
        OAuthError::TemporarilyUnavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the service is temporarily unavailable",
        ),
        OAuthError::ServerError => (StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
    };
    let mut r = json(status, &e.to_string(), description);
    if e == OAuthError::InvalidClient {
        r = r.header(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"wristband\""),
        );
    }
    if e == OAuthError::TemporarilyUnavailable {
        r = r.header(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

/// The last layer: an error response made outside the handlers (a framework rejection or a
/// layer) that is not yet the JSON body becomes it, so that every error has one shape.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let shaped = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if shaped {
        return response;
    }
    let mut r = ApiError::Status(status).into_response();
    // Keep what the layer said besides the body (Allow, Retry-After, challenges, CORS).
    for (name, value) in response.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            r.headers_mut().append(name, value.clone());
        }
    }
    r
}

/// An error on a hosted HTML page: the same mapping as [`ApiError`], shown as a readable
/// page (no internals; internal errors show only a correlation id).
#[derive(Debug)]
pub struct PageError(pub ApiError);

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError(e)
    }
}

impl From<DomainError> for PageError {
    fn from(e: DomainError) -> Self {
        PageError(ApiError::Domain(e))
    }
}

/// A page error on its way out: the page is rendered by [`error_pages`], which knows the
/// public URL's prefix for the page's links.
#[derive(Debug, Clone)]
struct PendingPage(Described);

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let d = self.0.describe();
        let mut r = d.status.into_response();
        r.extensions_mut().insert(PendingPage(d));
        r
    }
}

/// The layer that renders the error pages of [`PageError`]s, with the links under the
/// public URL's prefix. It keeps the headers set by the layers in between (the pages'
/// security headers).
pub async fn error_pages(State(s): State<AppState>, mut response: Response) -> Response {
    let Some(PendingPage(d)) = response.extensions_mut().remove::<PendingPage>() else {
        return response;
    };
    let (mut parts, _) = response.into_parts();
    let (page, body) = error_page(d, s.service.public_url().prefix()).into_parts();
    parts.status = page.status;
    for (name, value) in &page.headers {
        parts.headers.insert(name, value.clone());
    }
    Response::from_parts(parts, body)
}

/// The page shown for an error: status and a readable message, never internals.
fn error_page(d: Described, prefix: &str) -> Response {
    let title = match d.status {
        StatusCode::UNAUTHORIZED => "Not logged in",
        StatusCode::FORBIDDEN => "Request refused",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
        StatusCode::SERVICE_UNAVAILABLE => "Temporarily unavailable",
        s if s.is_server_error() => "Something went wrong",
        _ => "The request could not be completed",
    };
    let message = match d.code.as_str() {
        "csrf_failed" => format!(
            "This form was refused to protect your account ({}). Reload the page and try again.",
            d.description
        ),
        _ => capitalize(&d.description),
    };
    let ctx = context! { base => base(prefix), title, message, correlation_id => d.correlation_id };
    let mut r = match render("error.html", ctx) {
        Ok(body) => html(d.status, body),
        Err(_) => (d.status, format!("{title}: {message}")).into_response(),
    };
    for (name, value) in d.headers {
        if name != header::WWW_AUTHENTICATE {
            r.headers_mut().insert(name, value);
        }
    }
    r
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect::<String>() + ".",
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use axum::body::to_bytes;

    use super::*;

    async fn reshaped(status: StatusCode, content_type: &'static str) -> (Response, String) {
        let mut r = (status, "plain words").into_response();
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET"));
        let (parts, body) = json_errors(r).await.into_parts();
        let body = to_bytes(body, 1 << 16).await.unwrap();
        (
            Response::from_parts(parts, axum::body::Body::empty()),
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    #[tokio::test]
    async fn errors_made_outside_the_handlers_become_the_json_body() {
        for (status, code) in [
            (StatusCode::BAD_REQUEST, "invalid_request"),
            (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
            (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
        ] {
            let (r, body) = reshaped(status, "text/plain; charset=utf-8").await;
            assert_eq!(r.status(), status);
            assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
            assert_eq!(r.headers()[header::ALLOW], "GET");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["error"], code, "{body}");
            assert!(v["error_description"].is_string(), "{body}");
        }
        // JSON and HTML error bodies, and successes, are left as they are.
        for (status, ct) in [
            (StatusCode::BAD_REQUEST, "application/json"),
            (StatusCode::NOT_FOUND, "text/html; charset=utf-8"),
            (StatusCode::OK, "text/plain"),
        ] {
            let (r, body) = reshaped(status, ct).await;
            assert_eq!(body, "plain words");
            assert_eq!(r.headers()[header::CONTENT_TYPE], ct);
        }
    }
}
