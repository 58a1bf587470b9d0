//! The one error type of the token core.

use std::fmt;

/// Why a key, token or policy was refused.
///
/// The kind is meant for logs and metrics. What a client may be told is only
/// [`Error::public_reason`]: "token expired" or "token invalid".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The token is longer than the size cap.
    TooLarge,
    /// The compact serialization is malformed: segment count, characters or base64url.
    Malformed,
    /// The header or payload is not a UTF-8 JSON object, or has duplicate members.
    InvalidJson,
    /// A header parameter we refuse (`crit`, `jwk`, `jku`, `x5u`, `x5c`, `b64`, `zip`, ...).
    ForbiddenHeader,
    /// The header `typ` is missing or not `at+jwt`.
    WrongType,
    /// The header `alg` is missing, malformed, unsupported or not allowed by policy.
    AlgorithmNotAllowed,
    /// The header has no `kid`, or the `kid` is malformed.
    MissingKeyId,
    /// No key with the token's `kid` is in the key set.
    UnknownKeyId,
    /// The header `alg` differs from the algorithm of the key named by `kid`.
    AlgorithmMismatch,
    /// The signature does not verify.
    BadSignature,
    /// A required claim is missing.
    MissingClaim(&'static str),
    /// A claim has the wrong JSON type or an out-of-range value.
    InvalidClaim(&'static str),
    /// `iss` does not match.
    WrongIssuer,
    /// `aud` does not contain an accepted audience.
    WrongAudience,
    /// `exp` is in the past.
    Expired,
    /// `nbf` is in the future.
    NotYetValid,
    /// `iat` is in the future.
    IssuedInFuture,
    /// `exp - iat` is longer than the policy's maximum lifetime.
    LifetimeTooLong,
    /// The token has been revoked.
    Revoked,
    /// Key material is malformed, of the wrong type or too weak.
    InvalidKey,
    /// An HMAC secret is too short or a known weak value.
    WeakSecret,
    /// A policy setting is out of range.
    InvalidPolicy,
    /// A cryptographic operation failed unexpectedly.
    Crypto,
}

impl ErrorKind {
    /// A short stable code for logs and metric labels.
    pub fn code(&self) -> &'static str {
        match self {
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Malformed => "malformed",
            ErrorKind::InvalidJson => "invalid_json",
            ErrorKind::ForbiddenHeader => "forbidden_header",
            ErrorKind::WrongType => "wrong_typ",
            ErrorKind::AlgorithmNotAllowed => "alg_not_allowed",
            ErrorKind::MissingKeyId => "missing_kid",
            ErrorKind::UnknownKeyId => "unknown_kid",
            ErrorKind::AlgorithmMismatch => "alg_mismatch",
            ErrorKind::BadSignature => "bad_signature",
            ErrorKind::MissingClaim(_) => "missing_claim",
            ErrorKind::InvalidClaim(_) => "invalid_claim",
            ErrorKind::WrongIssuer => "wrong_iss",
            ErrorKind::WrongAudience => "wrong_aud",
            ErrorKind::Expired => "expired",
            ErrorKind::NotYetValid => "not_yet_valid",
            ErrorKind::IssuedInFuture => "iat_in_future",
            ErrorKind::LifetimeTooLong => "lifetime_too_long",
            ErrorKind::Revoked => "revoked",
            ErrorKind::InvalidKey => "invalid_key",
            ErrorKind::WeakSecret => "weak_secret",
            ErrorKind::InvalidPolicy => "invalid_policy",
            ErrorKind::Crypto => "crypto",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::MissingClaim(c) => write!(f, "missing claim `{c}`"),
            ErrorKind::InvalidClaim(c) => write!(f, "invalid claim `{c}`"),
            other => f.write_str(other.code()),
        }
    }
}

/// An error from the token core: a kind, plus an optional underlying cause.
pub struct Error {
    kind: ErrorKind,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Error { kind, source: None }
    }

    pub(crate) fn with_source(
        kind: ErrorKind,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error {
            kind,
            source: Some(Box::new(source)),
        }
    }

    /// What went wrong, for logs and metrics.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// True when the token was well-formed and correctly signed but has expired.
    pub fn is_expired(&self) -> bool {
        self.kind == ErrorKind::Expired
    }

    /// The only thing a client may learn: `"token expired"` or `"token invalid"`.
    pub fn public_reason(&self) -> &'static str {
        if self.is_expired() {
            "token expired"
        } else {
            "token invalid"
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind);
        if let Some(s) = &self.source {
            d.field("source", &format_args!("{s}"));
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.kind, f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Error::new(kind)
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
