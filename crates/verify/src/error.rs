//! The one error type of the HTTP layer, mapped to an RFC 6750 response in exactly one place.

use std::fmt;
use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::StatusCode;

/// Why a token was refused. It is [`wristband_jose::Error`]: the kind for logs and metrics,
/// and [`wristband_jose::Error::public_reason`] for the client.
pub type VerifyError = wristband_jose::Error;

/// The body of every 401 `invalid_token` response for an expired token.
pub const EXPIRED_BODY: &str = r#"{"error":"invalid_token","error_description":"token expired"}"#;
/// The body of every other 401 `invalid_token` response: byte-identical whatever failed.
pub const INVALID_BODY: &str = r#"{"error":"invalid_token","error_description":"token invalid"}"#;

/// The body of every 403 `csrf_failed` response: byte-identical whichever CSRF check failed.
pub const CSRF_FAILED_BODY: &str =
    r#"{"error":"csrf_failed","error_description":"missing or mismatched CSRF token"}"#;

/// The realm named in `WWW-Authenticate` challenges.
///
/// It is checked once, when it is set: printable ASCII without `"` or `\`, so that it can be
/// written into a quoted string as it is. The default realm is a static string, so that
/// cloning it (once per verified request) touches no shared reference count.
#[derive(Clone)]
pub struct Realm(RealmText);

#[derive(Clone)]
enum RealmText {
    Static(&'static str),
    Shared(Arc<str>),
}

impl Realm {
    /// The realm used when none is configured.
    pub const DEFAULT: &'static str = "wristband";

    /// A realm, or `None` when `realm` is empty, longer than 128 bytes or holds a character
    /// that would need escaping.
    pub fn new(realm: &str) -> Option<Self> {
        let ok = !realm.is_empty()
            && realm.len() <= 128
            && realm
                .bytes()
                .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
        if !ok {
            return None;
        }
        Some(if realm == Self::DEFAULT {
            Realm::default()
        } else {
            Realm(RealmText::Shared(realm.into()))
        })
    }

    /// The realm as text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            RealmText::Static(s) => s,
            RealmText::Shared(s) => s,
        }
    }
}

impl Default for Realm {
    fn default() -> Self {
        Realm(RealmText::Static(Self::DEFAULT))
    }
}

impl PartialEq for Realm {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Realm {}

impl fmt::Debug for Realm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Realm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong with a request's credentials.
#[derive(Debug)]
#[non_exhaustive]
pub enum AuthErrorKind {
    /// The request carried no bearer token (RFC 6750 §3.1: no error code).
    MissingToken,
    /// The token was refused: malformed, badly signed, expired, revoked, ...
    InvalidToken(VerifyError),
    /// The token is valid but lacks the role or scope the route needs.
    InsufficientScope,
    /// The request is malformed, e.g. it carries the token more than once.
    InvalidRequest,
    /// A state-changing request authenticated by the access cookie failed the CSRF rule:
    /// no `X-CSRF-Token` equal to the CSRF cookie, or a cross-site `Sec-Fetch-Site`.
    CsrfFailed,
    /// The token is valid, but the user's sign-in was not strong or recent enough for the
    /// request (RFC 9470 step-up): see [`crate::AuthnRequirement`]. The client should send
    /// the user to sign in again with these `acr_values` and `max_age`, then retry with
    /// the new token.
    InsufficientUserAuthentication {
        /// The acceptable `acr` values, in order of preference; empty when the requirement
        /// names no `acr`.
        acr_values: Vec<String>,
        /// The longest time since the sign-in, in seconds, when the requirement has one.
        max_age: Option<u64>,
    },
}

/// The `error_description` of an [`AuthErrorKind::InsufficientUserAuthentication`]
/// response, as RFC 9470 §3 words it.
pub const STEP_UP_DESCRIPTION: &str = "A different authentication level is required";

/// The error of the tower layer and the axum extractors. Its [`IntoResponse`] is the only
/// place where a credential failure becomes an HTTP response:
///
/// | kind | status | `WWW-Authenticate` | body |
/// |---|---|---|---|
/// | [`AuthErrorKind::MissingToken`] | 401 | `Bearer realm="…"` | empty |
/// | [`AuthErrorKind::InvalidToken`] | 401 | `Bearer realm="…", error="invalid_token"` | [`EXPIRED_BODY`] or [`INVALID_BODY`] |
/// | [`AuthErrorKind::InsufficientScope`] | 403 | `Bearer realm="…", error="insufficient_scope"` | empty |
/// | [`AuthErrorKind::InvalidRequest`] | 400 | `Bearer realm="…", error="invalid_request"` | empty |
/// | [`AuthErrorKind::CsrfFailed`] | 403 | none | [`CSRF_FAILED_BODY`] |
/// | [`AuthErrorKind::InsufficientUserAuthentication`] | 401 | `Bearer realm="…", error="insufficient_user_authentication", error_description="…"`, then `acr_values="…"` and `max_age=N` when required | [`step_up_body`] |
///
/// The step-up challenge follows RFC 9470 §3, for example:
///
/// ```text
/// Bearer realm="wristband", error="insufficient_user_authentication",
///   error_description="A different authentication level is required",
///   acr_values="urn:wristband:acr:mfa urn:wristband:acr:phr", max_age=300
/// ```
///
/// (one line in the header).
#[derive(Debug)]
pub struct AuthError {
    kind: AuthErrorKind,
    realm: Realm,
}

impl AuthError {
    /// An error of `kind`, challenging for `realm`.
    pub fn new(kind: AuthErrorKind, realm: Realm) -> Self {
        AuthError { kind, realm }
    }

    /// What went wrong.
    pub fn kind(&self) -> &AuthErrorKind {
        &self.kind
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self.kind {
            AuthErrorKind::MissingToken
            | AuthErrorKind::InvalidToken(_)
            | AuthErrorKind::InsufficientUserAuthentication { .. } => StatusCode::UNAUTHORIZED,
            AuthErrorKind::InsufficientScope | AuthErrorKind::CsrfFailed => StatusCode::FORBIDDEN,
            AuthErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
        }
    }

    fn error_code(&self) -> Option<&'static str> {
        match self.kind {
            AuthErrorKind::MissingToken | AuthErrorKind::CsrfFailed => None,
            AuthErrorKind::InvalidToken(_) => Some("invalid_token"),
            AuthErrorKind::InsufficientScope => Some("insufficient_scope"),
            AuthErrorKind::InvalidRequest => Some("invalid_request"),
            AuthErrorKind::InsufficientUserAuthentication { .. } => {
                Some("insufficient_user_authentication")
            }
        }
    }

    /// The `WWW-Authenticate` challenge (not sent with [`AuthErrorKind::CsrfFailed`]: the
    /// token was fine, the request was not).
    pub fn challenge(&self) -> String {
        if let AuthErrorKind::InsufficientUserAuthentication {
            acr_values,
            max_age,
        } = &self.kind
        {
            // RFC 9470 §3. The acr values were checked when the requirement was made:
            // printable ASCII without spaces, `"` or `\`.
            let mut out = format!(
                "Bearer realm=\"{}\", error=\"insufficient_user_authentication\", \
                 error_description=\"{STEP_UP_DESCRIPTION}\"",
                self.realm
            );
            if !acr_values.is_empty() {
                out.push_str(", acr_values=\"");
                out.push_str(&acr_values.join(" "));
                out.push('"');
            }
            if let Some(max_age) = max_age {
                out.push_str(&format!(", max_age={max_age}"));
            }
            return out;
        }
        match self.error_code() {
            Some(code) => format!("Bearer realm=\"{}\", error=\"{code}\"", self.realm),
            None => format!("Bearer realm=\"{}\"", self.realm),
        }
    }

    /// The body this error answers with: JSON for an invalid token, a CSRF failure and a
    /// step-up, empty otherwise (see the table on [`AuthError`]).
    pub fn body(&self) -> Bytes {
        match &self.kind {
            AuthErrorKind::InvalidToken(e) if e.is_expired() => {
                Bytes::from_static(EXPIRED_BODY.as_bytes())
            }
            AuthErrorKind::InvalidToken(_) => Bytes::from_static(INVALID_BODY.as_bytes()),
            AuthErrorKind::CsrfFailed => Bytes::from_static(CSRF_FAILED_BODY.as_bytes()),
            AuthErrorKind::InsufficientUserAuthentication {
                acr_values,
                max_age,
            } => Bytes::from(step_up_body(acr_values, *max_age)),
            _ => Bytes::new(),
        }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            AuthErrorKind::MissingToken => f.write_str("no bearer token"),
            AuthErrorKind::InvalidToken(e) => write!(f, "invalid token: {}", e.kind().code()),
            AuthErrorKind::InsufficientScope => f.write_str("insufficient scope"),
            AuthErrorKind::InvalidRequest => f.write_str("invalid request"),
            AuthErrorKind::CsrfFailed => f.write_str("CSRF check failed"),
            AuthErrorKind::InsufficientUserAuthentication { .. } => {
                f.write_str("insufficient user authentication (step-up required)")
            }
        }
    }
}

impl std::error::Error for AuthError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            AuthErrorKind::InvalidToken(e) => Some(e),
            _ => None,
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let body = self.body();
        let json = !body.is_empty();
        let mut response = (self.status(), body).into_response();
        let headers = response.headers_mut();
        // The realm was checked when it was made, so the challenge is always a valid value.
        if !matches!(self.kind, AuthErrorKind::CsrfFailed) {
            if let Ok(v) = HeaderValue::from_str(&self.challenge()) {
                headers.insert(WWW_AUTHENTICATE, v);
            }
        }
        if json {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        } else {
            headers.remove(CONTENT_TYPE);
        }
        response
    }
}

/// The JSON body of a step-up refusal ([`AuthErrorKind::InsufficientUserAuthentication`]):
/// `error` and `error_description` always, then `acr_values` (space-separated, as in the
/// challenge) when not empty and `max_age` (seconds) when given, in that order:
///
/// ```
/// assert_eq!(
///     wristband_verify::step_up_body(&["urn:wristband:acr:phr".into()], Some(300)),
///     r#"{"error":"insufficient_user_authentication","error_description":"A different authentication level is required","acr_values":"urn:wristband:acr:phr","max_age":300}"#
/// );
/// ```
pub fn step_up_body(acr_values: &[String], max_age: Option<u64>) -> String {
    let mut out = format!(
        r#"{{"error":"insufficient_user_authentication","error_description":"{STEP_UP_DESCRIPTION}""#
    );
    if !acr_values.is_empty() {
        let joined = serde_json::Value::from(acr_values.join(" "));
        out.push_str(&format!(r#","acr_values":{joined}"#));
    }
    if let Some(max_age) = max_age {
        out.push_str(&format!(r#","max_age":{max_age}"#));
    }
    out.push('}');
    out
}

/// Hex SHA-256 of a token, for logs. Oversized input is hashed only up to the cap plus one
/// byte: enough to tell tokens apart without hashing megabytes on an attacker's request.
pub fn token_digest(token: &str) -> String {
    digest_hex(token.as_bytes())
}

pub(crate) fn digest_hex(bytes: &[u8]) -> String {
    let bytes = &bytes[..bytes.len().min(wristband_jose::MAX_TOKEN_BYTES + 1)];
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut hex = String::with_capacity(64);
    for b in digest.as_ref() {
        hex.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        hex.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use wristband_jose::ErrorKind;

    #[test]
    fn realms_compare_by_text_whatever_their_storage() {
        let default = Realm::default();
        assert_eq!(Realm::new("wristband"), Some(default.clone()));
        assert_eq!(default.as_str(), "wristband");
        let custom = Realm::new("orders api").unwrap();
        assert_eq!(custom.as_str(), "orders api");
        assert_eq!(custom.to_string(), "orders api");
        assert_eq!(format!("{custom:?}"), "\"orders api\"");
        assert_eq!(custom.clone(), custom);
        assert_ne!(custom, default);
        assert_eq!(Realm::new("a\"b"), None);
        assert_eq!(Realm::new(""), None);
    }

    async fn parts(e: AuthError) -> (StatusCode, String, Option<String>, Vec<u8>) {
        let r = e.into_response();
        let status = r.status();
        let www = r.headers()[WWW_AUTHENTICATE].to_str().unwrap().to_owned();
        let ct = r
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = r.into_body().collect().await.unwrap().to_bytes().to_vec();
        (status, www, ct, body)
    }

    #[tokio::test]
    async fn rfc6750_responses() {
        let realm = Realm::new("orders").unwrap();
        let err = |k| AuthError::new(k, realm.clone());

        let (s, www, ct, body) = parts(err(AuthErrorKind::MissingToken)).await;
        assert_eq!(
            (s, www.as_str(), ct, body.len()),
            (
                StatusCode::UNAUTHORIZED,
                r#"Bearer realm="orders""#,
                None,
                0
            )
        );

        let expired = VerifyError::from(ErrorKind::Expired);
        let (s, www, ct, body) = parts(err(AuthErrorKind::InvalidToken(expired))).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_eq!(www, r#"Bearer realm="orders", error="invalid_token""#);
        assert_eq!(ct.as_deref(), Some("application/json"));
        assert_eq!(body, EXPIRED_BODY.as_bytes());

        let mut bodies = Vec::new();
        for k in [
            ErrorKind::BadSignature,
            ErrorKind::WrongAudience,
            ErrorKind::Revoked,
            ErrorKind::TooLarge,
        ] {
            bodies.push(parts(err(AuthErrorKind::InvalidToken(k.into()))).await);
        }
        assert!(bodies.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(bodies[0].3, INVALID_BODY.as_bytes());

        let (s, www, _, body) = parts(err(AuthErrorKind::InsufficientScope)).await;
        assert_eq!(
            (s, www.as_str(), body.len()),
            (
                StatusCode::FORBIDDEN,
                r#"Bearer realm="orders", error="insufficient_scope""#,
                0
            )
        );
        let (s, www, _, body) = parts(err(AuthErrorKind::InvalidRequest)).await;
        assert_eq!(
            (s, www.as_str(), body.len()),
            (
                StatusCode::BAD_REQUEST,
                r#"Bearer realm="orders", error="invalid_request""#,
                0
            )
        );
    }

    #[tokio::test]
    async fn csrf_failures_are_403_without_a_challenge() {
        let e = AuthError::new(AuthErrorKind::CsrfFailed, Realm::default());
        assert_eq!(e.to_string(), "CSRF check failed");
        let r = e.into_response();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(r.headers().get(WWW_AUTHENTICATE).is_none());
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
        let body = r.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, CSRF_FAILED_BODY.as_bytes());
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"], "csrf_failed");
        assert!(json["error_description"].is_string());
    }

    #[tokio::test]
    async fn step_up_is_401_with_the_rfc9470_challenge() {
        let realm = Realm::new("orders").unwrap();
        let kind = AuthErrorKind::InsufficientUserAuthentication {
            acr_values: vec![
                "urn:wristband:acr:mfa".into(),
                "urn:wristband:acr:phr".into(),
            ],
            max_age: Some(300),
        };
        let e = AuthError::new(kind, realm.clone());
        assert_eq!(
            e.to_string(),
            "insufficient user authentication (step-up required)"
        );
        let (s, www, ct, body) = parts(e).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_eq!(
            www,
            "Bearer realm=\"orders\", error=\"insufficient_user_authentication\", \
             error_description=\"A different authentication level is required\", \
             acr_values=\"urn:wristband:acr:mfa urn:wristband:acr:phr\", max_age=300"
        );
        assert_eq!(ct.as_deref(), Some("application/json"));
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "error": "insufficient_user_authentication",
                "error_description": "A different authentication level is required",
                "acr_values": "urn:wristband:acr:mfa urn:wristband:acr:phr",
                "max_age": 300,
            })
        );

        // Only what is required is named.
        let age_only = AuthErrorKind::InsufficientUserAuthentication {
            acr_values: Vec::new(),
            max_age: Some(60),
        };
        let (_, www, _, body) = parts(AuthError::new(age_only, realm.clone())).await;
        assert_eq!(
            www,
            "Bearer realm=\"orders\", error=\"insufficient_user_authentication\", \
             error_description=\"A different authentication level is required\", max_age=60"
        );
        assert_eq!(
            body,
            br#"{"error":"insufficient_user_authentication","error_description":"A different authentication level is required","max_age":60}"#
        );
        let acr_only = AuthErrorKind::InsufficientUserAuthentication {
            acr_values: vec!["urn:wristband:acr:phr".into()],
            max_age: None,
        };
        let (_, www, _, _) = parts(AuthError::new(acr_only, realm)).await;
        assert!(
            www.ends_with(", acr_values=\"urn:wristband:acr:phr\""),
            "{www}"
        );
    }

    #[test]
    fn bodies_match_the_public_reasons() {
        let expired = VerifyError::from(ErrorKind::Expired);
        let invalid = VerifyError::from(ErrorKind::BadSignature);
        let body = |r: &str| {
            serde_json::json!({"error": "invalid_token", "error_description": r}).to_string()
        };
        assert_eq!(EXPIRED_BODY, body(expired.public_reason()));
        assert_eq!(INVALID_BODY, body(invalid.public_reason()));
    }

    #[test]
    fn realm_rejects_characters_that_need_quoting() {
        for bad in ["", "a\"b", "a\\b", "line\nbreak", "é"] {
            assert!(Realm::new(bad).is_none(), "{bad:?}");
        }
        assert_eq!(Realm::new("api://orders").unwrap().as_str(), "api://orders");
    }
}
