//! The one place where a decision becomes an HTTP answer, per protocol.
//!
//! | verdict | auth-request | forward, ext-authz |
//! |---|---|---|
//! | allow | 200 + decision headers | 200 + decision headers |
//! | no or bad credential, navigation | 401 + `Location` + challenge | 302 (GET/HEAD) or 303 to the login URL |
//! | no or bad credential, otherwise | 401 + challenge | 401 + challenge |
//! | valid token, sign-in too weak or too old (step-up), navigation | 401 + `Location` + challenge | 302 (GET/HEAD) or 303 to the login URL with `acr_values` and `max_age` |
//! | valid token, sign-in too weak or too old (step-up), otherwise | 401 + RFC 9470 challenge | 401 + RFC 9470 challenge |
//! | credential sent twice | 401 `invalid_request` (nginx makes any other status a 500) | 400 `invalid_request` |
//! | role or scope missing | 403 `insufficient_scope` | 403 `insufficient_scope` |
//! | CSRF failure, no rule, refused path, untrusted or missing original request | 403 | 403 |

use axum::body::Body;
use axum::response::Response;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use http::{HeaderMap, Method, StatusCode};
use wristband_verify::{AuthError, AuthErrorKind, CSRF_FAILED_BODY, EXPIRED_BODY, INVALID_BODY};

use crate::decision::{Denial, Verdict};
use crate::headers::raw_token;
use crate::metrics::Outcome;
use crate::original::{is_navigation, Original, Protocol};
use crate::policy::Policy;
use crate::Gate;

/// The body of a 401 without any credential.
pub const MISSING_BODY: &str =
    r#"{"error":"unauthorized","error_description":"authentication required"}"#;
/// The body of a 403 for a valid token without the required role or scope.
pub const INSUFFICIENT_BODY: &str = r#"{"error":"insufficient_scope","error_description":"the token lacks the role or scope this route requires"}"#;
/// The body of an answer to a token sent more than once.
pub const TWICE_BODY: &str =
    r#"{"error":"invalid_request","error_description":"the token was sent more than once"}"#;
/// The body of a 403 when no rule matches.
pub const NO_RULE_BODY: &str =
    r#"{"error":"access_denied","error_description":"no rule allows this request"}"#;
/// The body of a 403 for a path refused by normalisation.
pub const PATH_BODY: &str =
    r#"{"error":"access_denied","error_description":"the request path is refused"}"#;
/// The body of a 403 when the original request is missing, unparseable or untrusted.
pub const ORIGINAL_BODY: &str = r#"{"error":"access_denied","error_description":"the original request is missing, unparseable or not from a trusted proxy"}"#;

/// The answer to `verdict` under `policy`, for `protocol`. `original` is the request
/// decided on (absent when it could not be read); `headers` are the gate request's.
pub(crate) fn answer(
    gate: &Gate,
    protocol: Protocol,
    verdict: &Verdict,
    policy: &Policy,
    original: Option<&Original<'_>>,
    headers: &HeaderMap,
) -> (Response, Outcome) {
    match verdict {
        Verdict::Allow(verified) => {
            let mut response = Response::new(Body::empty());
            if let Some(verified) = verified {
                // Room for every decision header at once: the map never grows on the way.
                response.headers_mut().reserve(10);
                let names = policy.headers();
                let token = if gate.0.options.forward_token || names.forward_token {
                    let cookie = gate.verifier().cookie_source().map(|c| c.access_cookie());
                    raw_token(headers, cookie)
                } else {
                    None
                };
                names.decision_headers(verified.claims(), token, response.headers_mut());
            }
            (response, Outcome::Allow)
        }
        Verdict::Deny(Denial::Credential(e)) => match e.kind() {
            AuthErrorKind::MissingToken | AuthErrorKind::InvalidToken(_) => {
                let body = match e.kind() {
                    AuthErrorKind::InvalidToken(v) if v.is_expired() => EXPIRED_BODY,
                    AuthErrorKind::InvalidToken(_) => INVALID_BODY,
                    _ => MISSING_BODY,
                };
                let login = |o: &Original<'_>| login_location(&gate.0.options.login_url, o);
                unauthenticated(protocol, e, Body::from(body), original, headers, login)
            }
            AuthErrorKind::InsufficientUserAuthentication {
                acr_values,
                max_age,
            } => {
                let login = |o: &Original<'_>| {
                    step_up_location(&gate.0.options.login_url, o, acr_values, *max_age)
                };
                unauthenticated(protocol, e, Body::from(e.body()), original, headers, login)
            }
            AuthErrorKind::CsrfFailed => (
                json(StatusCode::FORBIDDEN, CSRF_FAILED_BODY),
                Outcome::Forbidden,
            ),
            AuthErrorKind::InvalidRequest => {
                let status = match protocol {
                    Protocol::AuthRequest => StatusCode::UNAUTHORIZED,
                    Protocol::Forward | Protocol::ExtAuthz => StatusCode::BAD_REQUEST,
                };
                (
                    challenge(json(status, TWICE_BODY), e),
                    Outcome::InvalidRequest,
                )
            }
            _ => (
                challenge(json(StatusCode::FORBIDDEN, INSUFFICIENT_BODY), e),
                Outcome::Forbidden,
            ),
        },
        Verdict::Deny(Denial::Insufficient(e)) => (
            challenge(json(StatusCode::FORBIDDEN, INSUFFICIENT_BODY), e),
            Outcome::Forbidden,
        ),
        Verdict::Deny(Denial::NoRule) => (
            json(StatusCode::FORBIDDEN, NO_RULE_BODY),
            Outcome::Forbidden,
        ),
        Verdict::Deny(Denial::Path(_)) => {
            (json(StatusCode::FORBIDDEN, PATH_BODY), Outcome::Forbidden)
        }
        Verdict::Deny(Denial::Original(_)) => (
            json(StatusCode::FORBIDDEN, ORIGINAL_BODY),
            Outcome::Forbidden,
        ),
    }
}

/// No valid credential, or one from too weak a sign-in: a browser navigation goes to the
/// login page (`login` makes its URL), anything else gets the challenge and `body` (JSON).
fn unauthenticated(
    protocol: Protocol,
    e: &AuthError,
    body: Body,
    original: Option<&Original<'_>>,
    headers: &HeaderMap,
    login: impl FnOnce(&Original<'_>) -> String,
) -> (Response, Outcome) {
    let location = original
        .filter(|_| is_navigation(headers))
        .and_then(|o| HeaderValue::try_from(login(o)).ok());
    match (location, protocol) {
        (None, _) => (
            challenge(json_body(StatusCode::UNAUTHORIZED, body), e),
            Outcome::Unauthenticated,
        ),
        (Some(location), Protocol::AuthRequest) => {
            // nginx turns anything but 2xx, 401 and 403 into a 500: the redirect is left
            // to `error_page 401 =302`, which copies this Location.
            let mut r = challenge(json_body(StatusCode::UNAUTHORIZED, body), e);
            r.headers_mut().insert(LOCATION, location);
            (r, Outcome::Redirect)
        }
        (Some(location), Protocol::Forward | Protocol::ExtAuthz) => {
            let status = match original.map(|o| &o.method) {
                Some(&Method::GET | &Method::HEAD) => StatusCode::FOUND,
                _ => StatusCode::SEE_OTHER,
            };
            let mut r = Response::new(Body::empty());
            *r.status_mut() = status;
            r.headers_mut().insert(LOCATION, location);
            r.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            (r, Outcome::Redirect)
        }
    }
}

/// `login_url` with `return_to` = the original URL, percent-encoded.
pub fn login_location(login_url: &str, original: &Original<'_>) -> String {
    let url = original.url();
    let mut out = String::with_capacity(login_url.len() + 11 + url.len() * 3);
    out.push_str(login_url);
    out.push(if login_url.contains('?') { '&' } else { '?' });
    out.push_str("return_to=");
    push_encoded(&mut out, &url);
    out
}

/// [`login_location`] for a step-up (RFC 9470): the sign-in must meet the rule's
/// requirement, so `acr_values` (space-separated, percent-encoded) and `max_age`
/// (seconds) follow `return_to` when required, as the authorization request of OpenID
/// Connect Core §3.1.2.1 carries them:
///
/// ```
/// # use http::Method;
/// # use wristband_gate::{step_up_location, Original};
/// let o = Original::from_url(Method::GET, "https://app.example.com/vault").unwrap();
/// let acr = ["urn:wristband:acr:mfa".to_owned(), "urn:wristband:acr:phr".to_owned()];
/// assert_eq!(
///     step_up_location("https://auth.example/v1/session/resume", &o, &acr, Some(300)),
///     "https://auth.example/v1/session/resume?return_to=https%3A%2F%2Fapp.example.com%2Fvault\
///      &acr_values=urn%3Awristband%3Aacr%3Amfa%20urn%3Awristband%3Aacr%3Aphr&max_age=300"
/// );
/// ```
pub fn step_up_location(
    login_url: &str,
    original: &Original<'_>,
    acr_values: &[String],
    max_age: Option<u64>,
) -> String {
    let mut out = login_location(login_url, original);
    if !acr_values.is_empty() {
        out.push_str("&acr_values=");
        push_encoded(&mut out, &acr_values.join(" "));
    }
    if let Some(max_age) = max_age {
        out.push_str(&format!("&max_age={max_age}"));
    }
    out
}

/// Appends `text` percent-encoded: everything but RFC 3986 unreserved characters.
fn push_encoded(out: &mut String, text: &str) {
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
        }
    }
}

fn json_body(status: StatusCode, body: Body) -> Response {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn json(status: StatusCode, body: &'static str) -> Response {
    json_body(status, Body::from(body))
}

fn challenge(mut r: Response, e: &AuthError) -> Response {
    // The realm was checked when it was made: the challenge is always a valid value.
    if let Ok(v) = HeaderValue::from_str(&e.challenge()) {
        r.headers_mut().insert(WWW_AUTHENTICATE, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_return_target_is_percent_encoded() {
        let o = Original::from_url(Method::GET, "https://app.example.com/a b?x=1&y=2").unwrap();
        assert_eq!(
            login_location("https://app.example.com/auth/v1/session/resume", &o),
            "https://app.example.com/auth/v1/session/resume?return_to=https%3A%2F%2Fapp.example.com%2Fa%20b%3Fx%3D1%26y%3D2"
        );
        assert!(login_location("https://l/?x=1", &o).starts_with("https://l/?x=1&return_to="));
    }

    #[test]
    fn bodies_are_json_with_error_and_description() {
        for body in [
            MISSING_BODY,
            INSUFFICIENT_BODY,
            TWICE_BODY,
            NO_RULE_BODY,
            PATH_BODY,
            ORIGINAL_BODY,
        ] {
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            assert!(
                v["error"].is_string() && v["error_description"].is_string(),
                "{body}"
            );
        }
    }
}
