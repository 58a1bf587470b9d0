//! [`RequireTokenLayer`]: a tower layer that admits only requests with a valid bearer
//! token (meeting the verifier-wide step-up requirement, if any) and puts the verified
//! [`Claims`] into the request extensions. A verifier
//! configured with [`crate::VerifierBuilder::access_cookie`] also takes the token from
//! the access cookie when there is no bearer header, under the CSRF rule.
//!
//! Shaped like tower-http's authorization middleware: a layer, a [`RequireToken`] service
//! and a [`ResponseFuture`]. A verified-token cache hit is handled without boxing or
//! awaiting; a miss verifies in a boxed future and then calls the inner service.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Limited};
use hyper::body::Body;
use pin_project_lite::pin_project;
use tower::{Layer, Service};
use wristband_jose::{ErrorKind, MAX_TOKEN_BYTES};

use crate::cookie::CookieSource;
use crate::error::digest_hex;
use crate::error::{AuthError, AuthErrorKind, VerifyError};
use crate::extract::Claims;
use crate::verifier::{log_rejection, Verifier};

/// Largest form body scanned for a second `access_token` credential.
pub const MAX_FORM_SCAN_BYTES: usize = 1024 * 1024;

/// Longest `Authorization` value looked at: the scheme, a space and a token at the cap.
/// Anything longer is refused before any decoding (catalog E1).
const MAX_AUTHORIZATION_BYTES: usize = MAX_TOKEN_BYTES + "Bearer ".len();

/// Requires a valid bearer token on every request of the wrapped service.
#[derive(Debug, Clone)]
pub struct RequireTokenLayer {
    verifier: Verifier,
}

impl RequireTokenLayer {
    /// A layer verifying with `verifier`.
    pub fn new(verifier: Verifier) -> Self {
        RequireTokenLayer { verifier }
    }
}

impl<S> Layer<S> for RequireTokenLayer {
    type Service = RequireToken<S>;

    fn layer(&self, inner: S) -> RequireToken<S> {
        RequireToken {
            inner,
            verifier: self.verifier.clone(),
        }
    }
}

/// The service made by [`RequireTokenLayer`].
#[derive(Debug, Clone)]
pub struct RequireToken<S> {
    inner: S,
    verifier: Verifier,
}

/// The credential a request carries, as far as the headers tell, borrowed from them: a
/// verified-token cache hit never copies the token.
enum Credential<'a> {
    /// `Authorization: Bearer <token>`.
    Bearer(&'a str),
    /// As above, but the body is a form that could carry a second token: scan it first.
    BearerWithForm(&'a str),
    /// The access cookie, on a request without a bearer header that passed the CSRF rule.
    Cookie(&'a str),
}

/// Reads the bearer token, refusing requests that carry more than one credential
/// (RFC 6750 §2: two `Authorization` headers, or the header plus an `access_token` query
/// parameter or form field). The header is the only accepted source.
fn credential<'a>(
    headers: &'a HeaderMap,
    query: Option<&str>,
) -> Result<Credential<'a>, AuthErrorKind> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(AuthErrorKind::MissingToken);
    };
    if values.next().is_some() || query.is_some_and(has_access_token) {
        return Err(AuthErrorKind::InvalidRequest);
    }
    let invalid = |k: ErrorKind| AuthErrorKind::InvalidToken(VerifyError::from(k));
    let bytes = value.as_bytes();
    if bytes.len() > MAX_AUTHORIZATION_BYTES {
        return Err(invalid(ErrorKind::TooLarge));
    }
    let Some(space) = bytes.iter().position(|&b| b == b' ') else {
        // A bare scheme such as `Bearer` with nothing after it.
        return if bytes.eq_ignore_ascii_case(b"bearer") {
            Err(invalid(ErrorKind::Malformed))
        } else {
            Err(AuthErrorKind::MissingToken)
        };
    };
    if !bytes[..space].eq_ignore_ascii_case(b"bearer") {
        // Another scheme (Basic, DPoP, ...): no bearer credential at all.
        return Err(AuthErrorKind::MissingToken);
    }
    let token = std::str::from_utf8(&bytes[space + 1..])
        .map_err(|_| invalid(ErrorKind::Malformed))?
        .trim_start_matches(' ');
    if token.is_empty() {
        return Err(invalid(ErrorKind::Malformed));
    }
    let form = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.split(';').next().is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    Ok(if form {
        Credential::BearerWithForm(token)
    } else {
        Credential::Bearer(token)
    })
}

/// The access cookie as the credential of a request without a bearer header: one
/// well-formed cookie, at most [`MAX_TOKEN_BYTES`], and the CSRF rule passed. Without a
/// cookie source (the default) there is no credential at all.
fn cookie_credential<'a>(
    source: Option<&CookieSource>,
    method: &Method,
    headers: &'a HeaderMap,
) -> Result<Credential<'a>, AuthErrorKind> {
    let Some(source) = source else {
        return Err(AuthErrorKind::MissingToken);
    };
    let invalid = |k: ErrorKind| AuthErrorKind::InvalidToken(VerifyError::from(k));
    let token = match source.access_token(headers) {
        Ok(Some(token)) => token,
        Ok(None) => return Err(AuthErrorKind::MissingToken),
        Err(e) => {
            tracing::warn!(target: "wristband::security", reason = e.code(), "access cookie refused before decoding");
            return Err(invalid(ErrorKind::Malformed));
        }
    };
    if token.len() > MAX_TOKEN_BYTES {
        let error = VerifyError::from(ErrorKind::TooLarge);
        tracing::warn!(
            target: "wristband::security",
            reason = error.kind().code(),
            token_sha256 = %digest_hex(token.as_bytes()),
            "access cookie refused before decoding"
        );
        return Err(AuthErrorKind::InvalidToken(error));
    }
    if let Err(reason) = source.check_csrf(method, headers) {
        tracing::warn!(target: "wristband::security", reason, method = %method, "CSRF check failed");
        return Err(AuthErrorKind::CsrfFailed);
    }
    Ok(Credential::Cookie(token))
}

/// The credential of a request: the bearer header, or without one the access cookie (when
/// the verifier takes cookies). A token refused from its header alone is logged here.
fn request_credential<'a>(
    verifier: &Verifier,
    method: &Method,
    query: Option<&str>,
    headers: &'a HeaderMap,
) -> Result<Credential<'a>, AuthErrorKind> {
    match credential(headers, query) {
        Err(AuthErrorKind::MissingToken) => {
            cookie_credential(verifier.cookie_source(), method, headers)
        }
        Err(kind) => {
            if let AuthErrorKind::InvalidToken(e) = &kind {
                log_header_rejection(headers, e);
            }
            Err(kind)
        }
        ok => ok,
    }
}

impl Verifier {
    /// Verifies the credential of a request described by its method, query and headers
    /// alone, without its body: the one bearer header (RFC 6750 §2: a second header or an
    /// `access_token` query parameter is `invalid_request`), or, without one and when
    /// configured, the access cookie under the CSRF rule for `method`. This is the check
    /// of [`RequireTokenLayer`] for callers that see only a description of the request,
    /// such as a forward-auth gate; a form body is not scanned for a second token.
    ///
    /// The verified-token cache is asked first, with no allocation on a hit. A valid token
    /// that does not meet the requirement of [`crate::VerifierBuilder::require_authn`] is
    /// refused with [`AuthErrorKind::InsufficientUserAuthentication`].
    pub async fn authenticate(
        &self,
        method: &Method,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<std::sync::Arc<wristband_jose::Verified<wristband_jose::Claims>>, AuthError> {
        let realm = || self.realm().clone();
        let token = match request_credential(self, method, query, headers) {
            Ok(
                Credential::Bearer(token)
                | Credential::BearerWithForm(token)
                | Credential::Cookie(token),
            ) => token,
            Err(kind) => return Err(AuthError::new(kind, realm())),
        };
        let result = match self.verify_cached(token) {
            Some(Err(e)) => {
                log_rejection(token, &e);
                Err(e)
            }
            Some(Ok(verified)) => Ok(verified),
            None => self.verify(token).await,
        };
        let verified =
            result.map_err(|e| AuthError::new(AuthErrorKind::InvalidToken(e), realm()))?;
        self.check_policy_authn(verified.claims())?;
        Ok(verified)
    }
}

fn has_access_token(form: &str) -> bool {
    url::form_urlencoded::parse(form.as_bytes()).any(|(k, _)| k == "access_token")
}

type AuthFuture<B> = Pin<Box<dyn Future<Output = Result<Request<B>, AuthError>> + Send>>;

impl<S, B> Service<Request<B>> for RequireToken<S>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send,
    B: Body<Data = Bytes> + From<Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let verifier = &self.verifier;
        let fail = |kind| {
            ResponseFuture::done(AuthError::new(kind, verifier.realm().clone()).into_response())
        };
        // What the headers alone decide, borrowing the token from them: a cache hit calls
        // the inner service at once (it was driven to readiness), with no copy of the token
        // and no clone of the inner service.
        let (token, form) =
            match request_credential(verifier, req.method(), req.uri().query(), req.headers()) {
                Ok(Credential::Bearer(token) | Credential::Cookie(token)) => {
                    match verifier.verify_cached(token) {
                        Some(Ok(verified)) => {
                            if let Err(e) = verifier.check_policy_authn(verified.claims()) {
                                return ResponseFuture::done(e.into_response());
                            }
                            let claims = Claims::new(verified, verifier.realm().clone());
                            req.extensions_mut().insert(claims);
                            return ResponseFuture::inner(self.inner.call(req), None);
                        }
                        Some(Err(e)) => {
                            log_rejection(token, &e);
                            return fail(AuthErrorKind::InvalidToken(e));
                        }
                        None => (token.to_owned(), false),
                    }
                }
                Ok(Credential::BearerWithForm(token)) => (token.to_owned(), true),
                Err(kind) => return fail(kind),
            };
        // The rest waits for a verification or the body: the future owns the service that
        // was driven to readiness, and a clone takes its place.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let verifier = verifier.clone();
        let realm = verifier.realm().clone();
        if !form {
            return ResponseFuture::authorize(
                Box::pin(async move {
                    let verified = verifier.verify(&token).await.map_err(|e| {
                        AuthError::new(AuthErrorKind::InvalidToken(e), realm.clone())
                    })?;
                    verifier.check_policy_authn(verified.claims())?;
                    req.extensions_mut().insert(Claims::new(verified, realm));
                    Ok(req)
                }),
                inner,
            );
        }
        ResponseFuture::authorize(
            Box::pin(async move {
                let err = |kind| AuthError::new(kind, realm.clone());
                let (parts, body) = req.into_parts();
                let bytes = Limited::new(body, MAX_FORM_SCAN_BYTES)
                    .collect()
                    .await
                    .map_err(|_| err(AuthErrorKind::InvalidRequest))?
                    .to_bytes();
                if has_access_token(&String::from_utf8_lossy(&bytes)) {
                    return Err(err(AuthErrorKind::InvalidRequest));
                }
                let mut req = Request::from_parts(parts, B::from(bytes));
                let verified = verifier
                    .verify(&token)
                    .await
                    .map_err(|e| err(AuthErrorKind::InvalidToken(e)))?;
                verifier.check_policy_authn(verified.claims())?;
                req.extensions_mut().insert(Claims::new(verified, realm));
                Ok(req)
            }),
            inner,
        )
    }
}

/// Logs a token refused from its header alone (too large, not UTF-8): the reason and the
/// SHA-256 of the (capped) header value, never the value.
fn log_header_rejection(headers: &HeaderMap, error: &VerifyError) {
    let value = headers
        .get(AUTHORIZATION)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    tracing::warn!(
        target: "wristband::security",
        reason = error.kind().code(),
        token_sha256 = %digest_hex(value),
        "token refused before decoding"
    );
}

pin_project! {
    /// The response future of [`RequireToken`].
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S::Future, B>,
        service: Option<S>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        Authorize { future: AuthFuture<B> },
        Inner { #[pin] future: F },
        Done { response: Option<Response> },
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response>,
{
    fn done(response: Response) -> Self {
        ResponseFuture {
            state: State::Done {
                response: Some(response),
            },
            service: None,
        }
    }

    fn inner(future: S::Future, service: Option<S>) -> Self {
        ResponseFuture {
            state: State::Inner { future },
            service,
        }
    }

    fn authorize(future: AuthFuture<B>, service: S) -> Self {
        ResponseFuture {
            state: State::Authorize { future },
            service: Some(service),
        }
    }
}

impl<S, B> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response>,
{
    type Output = Result<Response, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Authorize { future } => match ready!(future.as_mut().poll(cx)) {
                    Ok(req) => {
                        let Some(service) = this.service.as_mut() else {
                            // Unreachable: an authorizing future always holds its service.
                            let e = AuthError::new(AuthErrorKind::MissingToken, Default::default());
                            return Poll::Ready(Ok(e.into_response()));
                        };
                        let future = service.call(req);
                        this.state.set(State::Inner { future });
                    }
                    Err(e) => return Poll::Ready(Ok(e.into_response())),
                },
                StateProj::Inner { future } => return future.poll(cx),
                StateProj::Done { response } => {
                    let response = response.take().unwrap_or_default();
                    return Poll::Ready(Ok(response));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn kind(r: Result<Credential, AuthErrorKind>) -> &'static str {
        match r {
            Ok(Credential::Bearer(_)) => "bearer",
            Ok(Credential::BearerWithForm(_)) => "form",
            Ok(Credential::Cookie(_)) => "cookie",
            Err(AuthErrorKind::MissingToken) => "missing",
            Err(AuthErrorKind::InvalidRequest) => "request",
            Err(AuthErrorKind::InvalidToken(_)) => "token",
            Err(_) => "other",
        }
    }

    #[test]
    fn credential_sources() {
        assert_eq!(kind(credential(&headers(&[]), None)), "missing");
        assert_eq!(
            kind(credential(&headers(&[]), Some("access_token=abc"))),
            "missing"
        );
        assert_eq!(
            kind(credential(&headers(&["Basic dXNlcjpwYXNz"]), None)),
            "missing"
        );
        assert_eq!(
            kind(credential(&headers(&["Bearer a.b.c"]), None)),
            "bearer"
        );
        assert_eq!(
            kind(credential(&headers(&["bearer a.b.c"]), None)),
            "bearer"
        );
        assert_eq!(kind(credential(&headers(&["Bearer"]), None)), "token");
        assert_eq!(kind(credential(&headers(&["Bearer "]), None)), "token");
        assert_eq!(
            kind(credential(&headers(&["Bearer a", "Bearer b"]), None)),
            "request"
        );
        assert_eq!(
            kind(credential(
                &headers(&["Bearer a.b.c"]),
                Some("x=1&access_token=abc")
            )),
            "request"
        );
        assert_eq!(
            kind(credential(
                &headers(&["Bearer a.b.c"]),
                Some("x=1&token=abc")
            )),
            "bearer"
        );
        let big = format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES + 1));
        assert_eq!(kind(credential(&headers(&[&big]), None)), "token");
        let mut form = headers(&["Bearer a.b.c"]);
        form.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("Application/X-WWW-Form-Urlencoded; charset=utf-8"),
        );
        assert_eq!(kind(credential(&form, None)), "form");
    }
}

#[cfg(test)]
mod authenticate_tests {
    use std::time::Duration;

    use http::HeaderValue;
    use wristband_jose::{sign, Algorithm, Clock, KeySet, SigningKey, SystemClock};

    use super::*;
    use crate::ACCESS_COOKIE;

    async fn verifier_and_token() -> (Verifier, String) {
        let key = SigningKey::generate(Algorithm::ES256).unwrap();
        let verifier = Verifier::builder("https://auth.example", "api://gate")
            .keys(KeySet::from_keys([key.verifying_key().clone()]).unwrap())
            .access_cookie(CookieSource::default())
            .build()
            .await
            .unwrap();
        let claims = wristband_jose::Claims::new(
            "https://auth.example",
            "user-1",
            "api://gate",
            SystemClock.now(),
            Duration::from_secs(300),
        )
        .with_client_id("web");
        (verifier, sign(&key, &claims).unwrap())
    }

    fn header_map(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_str(value).unwrap());
        }
        h
    }

    fn kind_code(e: &AuthError) -> &'static str {
        match e.kind() {
            AuthErrorKind::MissingToken => "missing",
            AuthErrorKind::InvalidToken(_) => "invalid_token",
            AuthErrorKind::InvalidRequest => "invalid_request",
            AuthErrorKind::CsrfFailed => "csrf",
            _ => "other",
        }
    }

    #[tokio::test]
    async fn authenticates_from_method_and_headers_alone() {
        let (verifier, token) = verifier_and_token().await;
        let get = Method::GET;
        let bearer = header_map(&[("authorization", format!("Bearer {token}"))]);
        let ok = verifier.authenticate(&get, None, &bearer).await.unwrap();
        assert_eq!(ok.sub, "user-1");
        // The second time comes from the cache, with the same answer.
        assert!(verifier.authenticate(&get, None, &bearer).await.is_ok());
        assert_eq!(verifier.cached_tokens(), 1);

        let none = verifier
            .authenticate(&get, None, &HeaderMap::new())
            .await
            .unwrap_err();
        assert_eq!(kind_code(&none), "missing");
        let twice = verifier
            .authenticate(&get, Some("access_token=x"), &bearer)
            .await
            .unwrap_err();
        assert_eq!(kind_code(&twice), "invalid_request");
        let forged = header_map(&[("authorization", format!("Bearer {token}x"))]);
        let forged = verifier
            .authenticate(&get, None, &forged)
            .await
            .unwrap_err();
        assert_eq!(kind_code(&forged), "invalid_token");

        // The cookie: accepted for GET, refused without the CSRF token for POST.
        let cookie = header_map(&[("cookie", format!("{ACCESS_COOKIE}={token}"))]);
        assert!(verifier.authenticate(&get, None, &cookie).await.is_ok());
        let post = verifier
            .authenticate(&Method::POST, None, &cookie)
            .await
            .unwrap_err();
        assert_eq!(kind_code(&post), "csrf");
    }
}
