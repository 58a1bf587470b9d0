//! What a verifier accepts: issuer, audiences, algorithms, leeway and lifetime.

use std::time::Duration;

use crate::alg::Algorithm;
use crate::error::{Error, ErrorKind, Result};

/// The most clock skew a policy may allow.
pub const MAX_LEEWAY: Duration = Duration::from_secs(60);
/// The default maximum token lifetime (`exp - iat`).
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// Verification rules. Build one with [`Policy::builder`].
#[derive(Debug, Clone)]
pub struct Policy {
    pub(crate) issuer: String,
    pub(crate) audiences: Vec<String>,
    pub(crate) algorithms: u8,
    pub(crate) leeway: u64,
    pub(crate) max_lifetime: u64,
    pub(crate) require_client_id: bool,
}

impl Policy {
    /// Starts a policy for tokens from `issuer` (matched exactly) meant for `audience`.
    pub fn builder(issuer: impl Into<String>, audience: impl Into<String>) -> PolicyBuilder {
        PolicyBuilder {
            issuer: issuer.into(),
            audiences: vec![audience.into()],
            algorithms: Algorithm::ASYMMETRIC.to_vec(),
            leeway: Duration::from_secs(0),
            max_lifetime: DEFAULT_MAX_LIFETIME,
            require_client_id: true,
        }
    }

    /// The expected issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The accepted audiences.
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// True when `alg` is on the allow-list.
    pub fn allows(&self, alg: Algorithm) -> bool {
        self.algorithms & alg.bit() != 0
    }

    /// The allowed clock skew.
    pub fn leeway(&self) -> Duration {
        Duration::from_secs(self.leeway)
    }

    /// The longest accepted `exp - iat`.
    pub fn max_lifetime(&self) -> Duration {
        Duration::from_secs(self.max_lifetime)
    }
}

/// Builder for [`Policy`]; [`PolicyBuilder::build`] validates every setting.
#[derive(Debug, Clone)]
pub struct PolicyBuilder {
    issuer: String,
    audiences: Vec<String>,
    algorithms: Vec<Algorithm>,
    leeway: Duration,
    max_lifetime: Duration,
    require_client_id: bool,
}

impl PolicyBuilder {
    /// Accepts tokens for any of these audiences (replacing the one given at the start).
    pub fn audiences<I, S>(mut self, audiences: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.audiences = audiences.into_iter().map(Into::into).collect();
        self
    }

    /// The algorithm allow-list. Default: RS256, PS256, ES256 and EdDSA. HS256 may only
    /// be allowed on its own: one verifier never accepts both symmetric and asymmetric.
    pub fn algorithms(mut self, algorithms: &[Algorithm]) -> Self {
        self.algorithms = algorithms.to_vec();
        self
    }

    /// Allowed clock skew for `exp`, `nbf` and `iat`; at most 60 s. Default 0.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Longest accepted `exp - iat`. Default 60 minutes.
    pub fn max_lifetime(mut self, max_lifetime: Duration) -> Self {
        self.max_lifetime = max_lifetime;
        self
    }

    /// Whether `client_id` (RFC 9068 §2.2) is required. Default true.
    pub fn require_client_id(mut self, required: bool) -> Self {
        self.require_client_id = required;
        self
    }

    /// Validates and returns the policy.
    pub fn build(self) -> Result<Policy> {
        let invalid = || Error::new(ErrorKind::InvalidPolicy);
        if self.issuer.is_empty()
            || self.audiences.is_empty()
            || self.audiences.iter().any(String::is_empty)
            || self.algorithms.is_empty()
            || self.leeway > MAX_LEEWAY
            || self.max_lifetime.as_secs() == 0
        {
            return Err(invalid());
        }
        let symmetric = self.algorithms.iter().any(|a| a.is_symmetric());
        let asymmetric = self.algorithms.iter().any(|a| !a.is_symmetric());
        if symmetric && asymmetric {
            return Err(invalid());
        }
        Ok(Policy {
            issuer: self.issuer,
            audiences: self.audiences,
            algorithms: self.algorithms.iter().fold(0, |acc, a| acc | a.bit()),
            leeway: self.leeway.as_secs(),
            max_lifetime: self.max_lifetime.as_secs(),
            require_client_id: self.require_client_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_limits() {
        let b = || Policy::builder("https://auth.example", "api://orders");
        assert!(b().build().is_ok());
        assert!(b().leeway(Duration::from_secs(61)).build().is_err());
        assert!(b().leeway(Duration::from_secs(60)).build().is_ok());
        assert!(b()
            .algorithms(&[Algorithm::HS256, Algorithm::RS256])
            .build()
            .is_err());
        assert!(b().algorithms(&[]).build().is_err());
        assert!(Policy::builder("", "a").build().is_err());
        let p = b().algorithms(&[Algorithm::ES256]).build().unwrap();
        assert!(p.allows(Algorithm::ES256) && !p.allows(Algorithm::RS256));
    }
}
