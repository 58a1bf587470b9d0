//! axum extractors over the claims that [`crate::RequireTokenLayer`] verified:
//! [`Claims`], typed custom claims ([`Custom`]), and role and scope checks
//! ([`HasRole`], [`HasScope`]).

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use http::request::Parts;
use serde::de::DeserializeOwned;
use wristband_jose::{ErrorKind, Verified};

use crate::error::{AuthError, AuthErrorKind, Realm};

/// The verified claims of the request's bearer token.
///
/// Derefs to [`wristband_jose::Claims`]. Extracting it from a request that did not pass
/// through [`crate::RequireTokenLayer`] fails closed with 401.
#[derive(Clone)]
pub struct Claims {
    verified: Arc<Verified<wristband_jose::Claims>>,
    realm: Realm,
}

impl fmt::Debug for Claims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.verified.claims(), f)
    }
}

impl Claims {
    /// Wraps verified claims; `realm` is used in the challenge of any later refusal.
    pub fn new(verified: Arc<Verified<wristband_jose::Claims>>, realm: Realm) -> Self {
        Claims { verified, realm }
    }

    /// The verified token (header and claims).
    pub fn verified(&self) -> &Arc<Verified<wristband_jose::Claims>> {
        &self.verified
    }

    /// The claims as a custom type. A token whose claims do not fit is refused as invalid.
    pub fn custom<T: DeserializeOwned>(&self) -> Result<T, AuthError> {
        self.verified
            .claims()
            .custom()
            .map_err(|e| self.error(AuthErrorKind::InvalidToken(e)))
    }

    /// Ok when the `role` claim is exactly `role`, otherwise 403 `insufficient_scope`.
    pub fn require_role(&self, role: &str) -> Result<(), AuthError> {
        if self.has_role(role) {
            Ok(())
        } else {
            Err(self.error(AuthErrorKind::InsufficientScope))
        }
    }

    /// Ok when the space-separated `scope` claim holds `scope`, otherwise 403.
    pub fn require_scope(&self, scope: &str) -> Result<(), AuthError> {
        if self.has_scope(scope) {
            Ok(())
        } else {
            Err(self.error(AuthErrorKind::InsufficientScope))
        }
    }

    /// The realm of this request's challenges.
    pub(crate) fn realm(&self) -> &Realm {
        &self.realm
    }

    fn error(&self, kind: AuthErrorKind) -> AuthError {
        AuthError::new(kind, self.realm.clone())
    }
}

impl Deref for Claims {
    type Target = wristband_jose::Claims;

    fn deref(&self) -> &wristband_jose::Claims {
        self.verified.claims()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Claims {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, AuthError> {
        match parts.extensions.get::<Claims>() {
            Some(c) => Ok(c.clone()),
            None => {
                tracing::error!(
                    "Claims extracted on a route without RequireTokenLayer; refusing the request"
                );
                Err(AuthError::new(
                    AuthErrorKind::MissingToken,
                    Realm::default(),
                ))
            }
        }
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Claims {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Claims>().cloned())
    }
}

/// Custom claims deserialized through serde from the verified token:
/// `Custom(MyClaims { .. }): Custom<MyClaims>`. Claims that do not fit the type make the
/// token invalid (401), never "absent".
#[derive(Debug, Clone)]
pub struct Custom<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Custom<T> {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AuthError> {
        let claims = <Claims as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        claims.custom().map(Custom).inspect_err(|_| {
            tracing::warn!(target: "wristband::security", reason = ErrorKind::InvalidJson.code(), sub = %claims.sub, "custom claims do not fit");
        })
    }
}

/// A role name known at compile time, for [`HasRole`].
///
/// ```
/// struct Admin;
/// impl wristband_verify::RoleName for Admin {
///     const NAME: &'static str = "admin";
/// }
/// ```
pub trait RoleName {
    /// The exact value of the `role` claim.
    const NAME: &'static str;
}

/// A scope name known at compile time, for [`HasScope`].
pub trait ScopeName {
    /// One entry of the space-separated `scope` claim.
    const NAME: &'static str;
}

/// Claims whose `role` is `R::NAME`; any other role is refused with 403
/// `insufficient_scope`. Derefs to [`Claims`].
pub struct HasRole<R> {
    claims: Claims,
    _marker: PhantomData<fn() -> R>,
}

/// Claims whose `scope` contains `S::NAME`; otherwise 403 `insufficient_scope`.
/// Derefs to [`Claims`].
pub struct HasScope<S> {
    claims: Claims,
    _marker: PhantomData<fn() -> S>,
}

macro_rules! checked_extractor {
    ($ty:ident, $bound:ident, $check:ident) => {
        impl<T> $ty<T> {
            /// The verified claims.
            pub fn into_claims(self) -> Claims {
                self.claims
            }
        }

        impl<T> Deref for $ty<T> {
            type Target = Claims;

            fn deref(&self) -> &Claims {
                &self.claims
            }
        }

        impl<T> Clone for $ty<T> {
            fn clone(&self) -> Self {
                $ty {
                    claims: self.claims.clone(),
                    _marker: PhantomData,
                }
            }
        }

        impl<T: $bound> fmt::Debug for $ty<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($ty))
                    .field(&T::NAME)
                    .field(&self.claims)
                    .finish()
            }
        }

        impl<S: Send + Sync, T: $bound> FromRequestParts<S> for $ty<T> {
            type Rejection = AuthError;

            async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AuthError> {
                let claims =
                    <Claims as FromRequestParts<S>>::from_request_parts(parts, state).await?;
                if let Err(e) = claims.$check(T::NAME) {
                    tracing::info!(
                        target: "wristband::security",
                        sub = %claims.sub,
                        needed = T::NAME,
                        "{} check failed",
                        stringify!($ty)
                    );
                    return Err(e);
                }
                Ok($ty {
                    claims,
                    _marker: PhantomData,
                })
            }
        }
    };
}

checked_extractor!(HasRole, RoleName, require_role);
checked_extractor!(HasScope, ScopeName, require_scope);
