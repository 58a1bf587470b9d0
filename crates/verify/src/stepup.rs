//! Step-up authentication (RFC 9470): what a request needs of how and when the user signed
//! in ([`AuthnRequirement`]), checked against the token's `acr`, `amr` and `auth_time`, and
//! the tower layer that enforces one on a group of routes ([`RequireAuthnLayer`]).
//!
//! A token that is valid but too weak is refused with 401
//! `insufficient_user_authentication` ([`AuthErrorKind::InsufficientUserAuthentication`]),
//! whose challenge tells the client which `acr_values` and `max_age` to ask for when it
//! sends the user to sign in again.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::Request;
use pin_project_lite::pin_project;
use tower::{Layer, Service};
use wristband_jose::{authn, UnixTime};

use crate::error::{AuthError, AuthErrorKind, Realm};
use crate::extract::Claims;
use crate::verifier::Verifier;

/// What a request needs of the user's sign-in: a minimum authentication context class
/// (`acr`), a multi-factor sign-in, and a maximum age of the sign-in (`auth_time`). Every
/// part that is set must hold; a token whose `acr`, `amr` or `auth_time` is missing or
/// malformed fails the parts that read it (fail closed).
///
/// ```
/// use std::time::Duration;
/// use wristband_jose::authn;
/// use wristband_verify::AuthnRequirement;
///
/// // A second factor (or a passkey), signed in within the last 5 minutes.
/// let admin = AuthnRequirement::mfa().max_age(Duration::from_secs(300));
/// // A phishing-resistant sign-in: `acr` must be `urn:wristband:acr:phr`.
/// let payments = AuthnRequirement::phr();
/// // At least `mfa` by `acr` alone (so `mfa` or `phr`), or a list of your own.
/// let strong = AuthnRequirement::new().min_acr(authn::ACR_MFA)?;
/// let custom = AuthnRequirement::new().acr_in(["urn:example:loa:3", "urn:example:loa:4"])?;
/// # let _ = (admin, payments, strong, custom);
/// # Ok::<(), wristband_verify::InvalidAcrValue>(())
/// ```
///
/// Enforce one for every token a verifier accepts with
/// [`crate::VerifierBuilder::require_authn`], for some routes with
/// [`Verifier::require_authn`] (a layer), or in a handler with [`Claims::require_authn`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthnRequirement {
    /// The acceptable `acr` values, in order of preference; `None`: any `acr`.
    acr: Option<Vec<String>>,
    /// `Claims::is_multi_factor` must hold.
    mfa: bool,
    /// The longest time since `auth_time`.
    max_age: Option<Duration>,
}

/// An `acr` value that cannot be a requirement: empty, or not printable ASCII without
/// spaces, `"` and `\` (it could not be written into the `acr_values` of a challenge), or
/// an empty list of values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid acr value {0:?}: expected printable ASCII without spaces, quotes or backslashes")]
pub struct InvalidAcrValue(pub String);

fn check_acr(value: &str) -> Result<String, InvalidAcrValue> {
    let ok = !value.is_empty()
        && value.len() <= 255
        && value
            .bytes()
            .all(|b| (0x21..0x7f).contains(&b) && b != b'"' && b != b'\\');
    if ok {
        Ok(value.to_owned())
    } else {
        Err(InvalidAcrValue(value.to_owned()))
    }
}

impl AuthnRequirement {
    /// A requirement that every valid token meets; add parts with the methods below.
    pub fn new() -> Self {
        Self::default()
    }

    /// A multi-factor sign-in ([`AuthnRequirement::require_mfa`]): `acr` is Wristband's
    /// `mfa` or `phr`, or `amr` holds `mfa`. Its challenge asks for
    /// `acr_values="urn:wristband:acr:mfa urn:wristband:acr:phr"`.
    pub fn mfa() -> Self {
        Self::new().require_mfa()
    }

    /// A phishing-resistant sign-in: `acr` is [`authn::ACR_PHR`] (a passkey).
    pub fn phr() -> Self {
        AuthnRequirement {
            acr: Some(vec![authn::ACR_PHR.to_owned()]),
            ..Self::default()
        }
    }

    /// Also requires a multi-factor sign-in, as [`wristband_jose::Claims::is_multi_factor`]
    /// tells it: `acr` at least [`authn::ACR_MFA`], or `mfa` in `amr`.
    pub fn require_mfa(mut self) -> Self {
        self.mfa = true;
        self
    }

    /// Requires an `acr` at least as strong as `acr` in Wristband's order
    /// pwd < mfa < phr ([`authn::at_least`]): `min_acr(ACR_MFA)` accepts `mfa` and `phr`.
    /// Another value accepts only itself. Replaces an earlier `acr` requirement.
    pub fn min_acr(self, acr: &str) -> Result<Self, InvalidAcrValue> {
        match authn::at_least(acr) {
            [] => self.acr_in([acr]),
            values => self.acr_in(values.iter().copied()),
        }
    }

    /// Requires the token's `acr` to be one of `values` (compared exactly), listed in the
    /// challenge in this order. Replaces an earlier `acr` requirement.
    pub fn acr_in<I, S>(mut self, values: I) -> Result<Self, InvalidAcrValue>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let values = values
            .into_iter()
            .map(|v| check_acr(v.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        if values.is_empty() {
            return Err(InvalidAcrValue(String::new()));
        }
        self.acr = Some(values);
        Ok(self)
    }

    /// Requires the user to have signed in at most `max_age` ago (whole seconds): now
    /// minus `auth_time` at most `max_age`, by the verifier's clock. A token without
    /// `auth_time`, or with an `auth_time` after its `iat`, fails it.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// True when the requirement has no part: every valid token meets it.
    pub fn is_empty(&self) -> bool {
        self.acr.is_none() && !self.mfa && self.max_age.is_none()
    }

    /// The `acr_values` of the challenge: the acceptable `acr` values, or for
    /// [`AuthnRequirement::require_mfa`] alone Wristband's `mfa` and `phr`; empty when the
    /// requirement says nothing of `acr`.
    pub fn acr_values(&self) -> Vec<&str> {
        match &self.acr {
            Some(values) => values.iter().map(String::as_str).collect(),
            None if self.mfa => authn::at_least(authn::ACR_MFA).to_vec(),
            None => Vec::new(),
        }
    }

    /// The longest accepted time since the sign-in, in seconds, if any.
    pub fn max_age_secs(&self) -> Option<u64> {
        self.max_age.map(|d| d.as_secs())
    }

    /// True when `claims` meet every part of the requirement at `now`.
    pub fn is_met_by(&self, claims: &wristband_jose::Claims, now: UnixTime) -> bool {
        if let Some(values) = &self.acr {
            match claims.acr() {
                Some(acr) if values.iter().any(|v| v == acr) => {}
                _ => return false,
            }
        }
        if self.mfa && !claims.is_multi_factor() {
            return false;
        }
        if let Some(max_age) = self.max_age {
            let Some(auth_time) = claims.auth_time() else {
                return false;
            };
            // The user cannot have signed in after the token was issued.
            if auth_time.as_secs() > claims.iat.as_secs() {
                return false;
            }
            if now.as_secs().saturating_sub(auth_time.as_secs()) > max_age.as_secs() {
                return false;
            }
        }
        true
    }

    /// The error kind of a token that does not meet the requirement: 401
    /// `insufficient_user_authentication` with this requirement's `acr_values` and
    /// `max_age`.
    pub fn unmet(&self) -> AuthErrorKind {
        AuthErrorKind::InsufficientUserAuthentication {
            acr_values: self.acr_values().into_iter().map(str::to_owned).collect(),
            max_age: self.max_age_secs(),
        }
    }

    /// Ok when `claims` meet the requirement at `now`; otherwise the step-up error,
    /// challenging for `realm`, logged with the token's subject.
    pub(crate) fn check(
        &self,
        claims: &wristband_jose::Claims,
        now: UnixTime,
        realm: &Realm,
    ) -> Result<(), AuthError> {
        if self.is_met_by(claims, now) {
            return Ok(());
        }
        tracing::info!(
            target: "wristband::security",
            sub = %claims.sub,
            acr = claims.acr().unwrap_or("-"),
            needed = %self,
            "step-up required"
        );
        Err(AuthError::new(self.unmet(), realm.clone()))
    }
}

impl fmt::Display for AuthnRequirement {
    /// `acr in [..], mfa, max_age 300s`, or `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(values) = &self.acr {
            parts.push(format!("acr in [{}]", values.join(" ")));
        }
        if self.mfa {
            parts.push("mfa".to_owned());
        }
        if let Some(secs) = self.max_age_secs() {
            parts.push(format!("max_age {secs}s"));
        }
        if parts.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

impl Claims {
    /// Ok when the user's sign-in meets `requirement` at `now` (use [`Verifier::now`] for
    /// the verifier's clock); otherwise 401 `insufficient_user_authentication` with the
    /// RFC 9470 challenge.
    pub fn require_authn(
        &self,
        requirement: &AuthnRequirement,
        now: UnixTime,
    ) -> Result<(), AuthError> {
        requirement.check(self, now, self.realm())
    }
}

impl Verifier {
    /// The verifier's clock: "now" for expiry and for the `max_age` of step-up
    /// requirements.
    pub fn now(&self) -> UnixTime {
        self.0.clock.now()
    }

    /// The requirement every token this verifier's layer accepts must meet, when set with
    /// [`crate::VerifierBuilder::require_authn`].
    pub fn authn_requirement(&self) -> Option<&AuthnRequirement> {
        self.0.authn.as_ref()
    }

    /// Checks `claims` against `requirement` by the verifier's clock: Ok, or 401
    /// `insufficient_user_authentication` challenging for the verifier's realm.
    pub fn check_authn(
        &self,
        requirement: &AuthnRequirement,
        claims: &wristband_jose::Claims,
    ) -> Result<(), AuthError> {
        requirement.check(claims, self.now(), self.realm())
    }

    /// The verifier-wide requirement's check: Ok when none is set.
    #[inline]
    pub(crate) fn check_policy_authn(
        &self,
        claims: &wristband_jose::Claims,
    ) -> Result<(), AuthError> {
        match &self.0.authn {
            None => Ok(()),
            Some(requirement) => self.check_authn(requirement, claims),
        }
    }

    /// A layer refusing requests whose verified token does not meet `requirement`, by
    /// this verifier's clock. Put it on routes that are already behind
    /// [`crate::RequireTokenLayer`] (it reads the [`Claims`] the token layer verified):
    ///
    /// ```
    /// use axum::{routing::get, Router};
    /// use wristband_verify::{AuthnRequirement, Claims, Verifier};
    ///
    /// fn routes(verifier: Verifier) -> Router {
    ///     let admin = Router::new()
    ///         .route("/admin", get(|c: Claims| async move { c.sub.clone() }))
    ///         .route_layer(verifier.require_authn(AuthnRequirement::mfa()));
    ///     Router::new()
    ///         .route("/orders", get(|| async { "orders" }))
    ///         .merge(admin)
    ///         .layer(verifier.layer())
    /// }
    /// ```
    ///
    /// A request without verified claims (the layer is not behind the token layer) is
    /// refused with 401, as the [`Claims`] extractor refuses it.
    pub fn require_authn(&self, requirement: AuthnRequirement) -> RequireAuthnLayer {
        RequireAuthnLayer {
            verifier: self.clone(),
            requirement: Arc::new(requirement),
        }
    }
}

/// Refuses requests whose verified token does not meet an [`AuthnRequirement`]; made by
/// [`Verifier::require_authn`].
#[derive(Debug, Clone)]
pub struct RequireAuthnLayer {
    verifier: Verifier,
    requirement: Arc<AuthnRequirement>,
}

impl RequireAuthnLayer {
    /// The requirement this layer enforces.
    pub fn requirement(&self) -> &AuthnRequirement {
        &self.requirement
    }
}

impl<S> Layer<S> for RequireAuthnLayer {
    type Service = RequireAuthn<S>;

    fn layer(&self, inner: S) -> RequireAuthn<S> {
        RequireAuthn {
            inner,
            verifier: self.verifier.clone(),
            requirement: Arc::clone(&self.requirement),
        }
    }
}

/// The service made by [`RequireAuthnLayer`].
#[derive(Debug, Clone)]
pub struct RequireAuthn<S> {
    inner: S,
    verifier: Verifier,
    requirement: Arc<AuthnRequirement>,
}

impl<S, B> Service<Request<B>> for RequireAuthn<S>
where
    S: Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = AuthnFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let Some(claims) = req.extensions().get::<Claims>() else {
            tracing::error!(
                "RequireAuthnLayer on a route without RequireTokenLayer; refusing the request"
            );
            return AuthnFuture::refused(AuthError::new(
                AuthErrorKind::MissingToken,
                self.verifier.realm().clone(),
            ));
        };
        match self.verifier.check_authn(&self.requirement, claims) {
            Ok(()) => AuthnFuture::inner(self.inner.call(req)),
            Err(e) => AuthnFuture::refused(e),
        }
    }
}

pin_project! {
    /// The response future of [`RequireAuthn`]: the inner service's, or a refusal.
    pub struct AuthnFuture<F> {
        #[pin]
        state: AuthnState<F>,
    }
}

pin_project! {
    #[project = AuthnStateProj]
    enum AuthnState<F> {
        Inner { #[pin] future: F },
        Refused { response: Option<Response> },
    }
}

impl<F> AuthnFuture<F> {
    fn inner(future: F) -> Self {
        AuthnFuture {
            state: AuthnState::Inner { future },
        }
    }

    fn refused(error: AuthError) -> Self {
        AuthnFuture {
            state: AuthnState::Refused {
                response: Some(error.into_response()),
            },
        }
    }
}

impl<F, E> Future for AuthnFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            AuthnStateProj::Inner { future } => future.poll(cx),
            AuthnStateProj::Refused { response } => {
                Poll::Ready(Ok(response.take().unwrap_or_default()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wristband_jose::Claims as Jose;

    const NOW: u64 = 1_800_000_000;

    fn claims() -> Jose {
        Jose::new(
            "https://a",
            "u",
            "api",
            UnixTime::from_secs(NOW - 10),
            Duration::from_secs(600),
        )
    }

    fn signed_in(amr: &[&str], acr: &str, ago: u64) -> Jose {
        claims().with_authentication(amr, acr, UnixTime::from_secs(NOW - ago))
    }

    fn met(r: &AuthnRequirement, c: &Jose) -> bool {
        r.is_met_by(c, UnixTime::from_secs(NOW))
    }

    #[test]
    fn acr_levels_rank_pwd_mfa_phr() {
        let pwd = signed_in(&["pwd"], authn::ACR_PWD, 60);
        let mfa = signed_in(&["pwd", "otp", "mfa"], authn::ACR_MFA, 60);
        let phr = signed_in(&["hwk"], authn::ACR_PHR, 60);
        let min_mfa = AuthnRequirement::new().min_acr(authn::ACR_MFA).unwrap();
        assert_eq!(
            [
                met(&min_mfa, &pwd),
                met(&min_mfa, &mfa),
                met(&min_mfa, &phr)
            ],
            [false, true, true]
        );
        let only_phr = AuthnRequirement::phr();
        assert_eq!(
            [
                met(&only_phr, &pwd),
                met(&only_phr, &mfa),
                met(&only_phr, &phr)
            ],
            [false, false, true]
        );
        assert_eq!(
            AuthnRequirement::new().min_acr(authn::ACR_PHR).unwrap(),
            only_phr
        );
        let any = AuthnRequirement::new();
        assert!(any.is_empty() && met(&any, &pwd) && met(&any, &claims()));
        // A custom acr accepts only itself.
        let custom = AuthnRequirement::new()
            .min_acr("urn:example:loa:3")
            .unwrap();
        assert_eq!(custom.acr_values(), ["urn:example:loa:3"]);
        assert!(!met(&custom, &phr));
        assert!(met(&custom, &signed_in(&["pwd"], "urn:example:loa:3", 1)));
    }

    #[test]
    fn mfa_is_the_claims_multi_factor_test() {
        let mfa = AuthnRequirement::mfa();
        assert!(met(&mfa, &signed_in(&["pwd", "mfa"], authn::ACR_PWD, 1)));
        assert!(met(&mfa, &signed_in(&["hwk"], authn::ACR_PHR, 1)));
        assert!(!met(&mfa, &signed_in(&["pwd"], authn::ACR_PWD, 1)));
        assert!(!met(&mfa, &claims()), "no amr nor acr");
        assert_eq!(
            mfa.acr_values(),
            [authn::ACR_MFA, authn::ACR_PHR],
            "the challenge asks for mfa or phr"
        );
        assert_eq!(mfa.max_age_secs(), None);
    }

    #[test]
    fn max_age_uses_auth_time_and_fails_without_it() {
        let fresh = AuthnRequirement::new().max_age(Duration::from_secs(300));
        assert!(met(&fresh, &signed_in(&["pwd"], authn::ACR_PWD, 300)));
        assert!(!met(&fresh, &signed_in(&["pwd"], authn::ACR_PWD, 301)));
        assert!(!met(&fresh, &claims()), "no auth_time");
        // auth_time after iat: refused.
        let later =
            claims().with_authentication(&["pwd"], authn::ACR_PWD, UnixTime::from_secs(NOW));
        assert!(!met(&fresh, &later));
        assert_eq!(fresh.acr_values(), Vec::<&str>::new());
        assert_eq!(fresh.max_age_secs(), Some(300));
        let both = AuthnRequirement::mfa().max_age(Duration::from_secs(300));
        assert!(!met(&both, &signed_in(&["mfa"], authn::ACR_MFA, 900)));
        assert!(met(&both, &signed_in(&["mfa"], authn::ACR_MFA, 20)));
        assert_eq!(both.to_string(), "mfa, max_age 300s");
        assert_eq!(AuthnRequirement::new().to_string(), "none");
    }

    #[test]
    fn malformed_claims_fail_closed() {
        let mut c = claims();
        c.extra.insert("amr".into(), serde_json::json!("mfa"));
        c.extra
            .insert("acr".into(), serde_json::json!([authn::ACR_MFA]));
        c.extra.insert("auth_time".into(), serde_json::json!("1"));
        let now = UnixTime::from_secs(NOW);
        assert!(!AuthnRequirement::mfa().is_met_by(&c, now));
        assert!(!AuthnRequirement::phr().is_met_by(&c, now));
        assert!(!AuthnRequirement::new()
            .max_age(Duration::from_secs(3600))
            .is_met_by(&c, now));
    }

    #[test]
    fn acr_values_must_fit_a_challenge() {
        for bad in ["", "a b", "a\"b", "a\\b", "é"] {
            assert_eq!(
                AuthnRequirement::new().acr_in([bad]),
                Err(InvalidAcrValue(bad.to_owned())),
                "{bad:?}"
            );
        }
        assert!(AuthnRequirement::new()
            .acr_in(Vec::<String>::new())
            .is_err());
        let r = AuthnRequirement::new()
            .acr_in(["urn:a", "urn:b"])
            .unwrap()
            .require_mfa();
        assert_eq!(r.acr_values(), ["urn:a", "urn:b"]);
        assert_eq!(r.to_string(), "acr in [urn:a urn:b], mfa");
    }
}
