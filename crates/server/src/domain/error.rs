//! The domain's errors: one enum whose variants callers match, each unexpected one keeping
//! its cause as a [`source`](std::error::Error::source). Nothing here logs: the caller that
//! handles an error (the HTTP error mapping, the CLI) reports it with its chain.

use std::error::Error as StdError;
use std::fmt;

use crate::store::StoreError;

/// The cause of an error, kept for the log.
pub type Source = Box<dyn StdError + Send + Sync>;

/// What can go wrong in the domain. The HTTP layer maps each to a status in one place.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// Unknown user, wrong password or disabled account: deliberately indistinguishable.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The password was right and a second factor is due: the second step to take.
    #[error("a second factor is required")]
    MfaRequired(Box<super::mfa::MfaChallenge>),
    /// The `mfa_token` of a second step is unknown, finished, expired or exhausted.
    #[error("invalid mfa_token")]
    InvalidMfaToken,
    /// A second factor's code is wrong or spent.
    #[error("invalid code")]
    InvalidCode,
    /// A passkey was not accepted: an unknown, spent or expired ceremony, an unknown
    /// passkey, a wrong origin or signature, a counter that went back.
    #[error("passkey refused")]
    PasskeyRefused,
    /// Too many failed logins; retry after this many seconds.
    #[error("too many attempts")]
    Throttled {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// Too many requests of a kind from one address (registrations); retry after this
    /// many seconds.
    #[error("too many requests")]
    RateLimited {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// A refresh token that is unknown, expired, revoked or reused.
    #[error("invalid grant")]
    InvalidGrant,
    /// No bearer token was sent.
    #[error("missing token")]
    MissingToken,
    /// The token is valid but does not allow this.
    #[error("forbidden")]
    Forbidden,
    /// The bearer token failed verification.
    #[error("invalid token")]
    InvalidToken {
        /// True when the only problem is expiry.
        expired: bool,
    },
    /// The request is well-formed but its content is refused.
    #[error("{message}")]
    InvalidRequest {
        /// Why, safe to show to the caller.
        message: String,
        /// What refused it, when something did (a parser, a file system).
        #[source]
        source: Option<Source>,
    },
    /// The resource exists already.
    #[error("already exists")]
    Conflict,
    /// No such resource.
    #[error("not found")]
    NotFound,
    /// The store cannot be reached.
    #[error("store unavailable")]
    Unavailable {
        /// Why, when the store said.
        #[source]
        source: Option<Source>,
    },
    /// A bug or an environment failure; for logs only.
    #[error("internal error: {context}")]
    Internal {
        /// What was being done.
        context: String,
        /// What failed, when something did.
        #[source]
        source: Option<Source>,
    },
}

impl DomainError {
    /// A refusal whose text is safe to show.
    pub fn invalid(message: impl Into<String>) -> Self {
        DomainError::InvalidRequest {
            message: message.into(),
            source: None,
        }
    }

    /// A refusal whose text is safe to show, caused by `source`.
    pub fn invalid_because(message: impl Into<String>, source: impl Into<Source>) -> Self {
        DomainError::InvalidRequest {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// An unexpected failure while doing `context`.
    pub fn internal(context: impl Into<String>) -> Self {
        DomainError::Internal {
            context: context.into(),
            source: None,
        }
    }

    /// An unexpected failure of `source` while doing `context`.
    pub fn internal_because(context: impl Into<String>, source: impl Into<Source>) -> Self {
        DomainError::Internal {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    /// The store could not be reached, for no reason that it gave.
    pub fn unavailable() -> Self {
        DomainError::Unavailable { source: None }
    }
}

/// A store failure as a domain error; no logging here (see the module's note).
impl From<StoreError> for DomainError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => DomainError::Conflict,
            StoreError::Unavailable(source) => DomainError::Unavailable {
                source: Some(source),
            },
            other => DomainError::internal_because("store", other),
        }
    }
}

/// An error and each of its sources, `: `-separated: for logs.
pub struct Chain<'a>(pub &'a (dyn StdError + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_failure_keeps_its_cause() {
        let cause = sqlx::Error::Protocol("disk on fire".into());
        let e = DomainError::from(StoreError::Database(Box::new(cause)));
        assert!(matches!(e, DomainError::Internal { .. }));
        assert_eq!(
            Chain(&e).to_string(),
            "internal error: store: store error: encountered unexpected or invalid data: disk on fire"
        );
    }

    #[test]
    fn an_unreachable_store_is_unavailable_with_its_cause() {
        let e = DomainError::from(StoreError::Unavailable(Box::new(sqlx::Error::PoolTimedOut)));
        assert!(matches!(e, DomainError::Unavailable { .. }));
        assert_eq!(
            Chain(&e).to_string(),
            "store unavailable: pool timed out while waiting for an open connection"
        );
    }
}
