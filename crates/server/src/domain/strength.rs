//! Step-up (RFC 9470) at sign-in: how strongly and how recently a session's user must
//! have signed in ([`Strength`], from a gate's or a relying party's `acr_values` and
//! `max_age`), and what a session lacks for it ([`StepUp`]).

use super::mfa::acr_of;
use super::{AuthService, DomainError};

/// How a sign-in with a password and a code (TOTP or recovery) is recorded (RFC 8176).
const AMR_WITH_CODE: &str = "pwd otp mfa";

/// How strongly a browser must have signed in, as a gate or an API asks (RFC 9470's
/// `acr_values` and `max_age`): any of the `acr` values (or a stronger Wristband one),
/// within `max_age` seconds of the sign-in. Empty: anything goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Strength {
    /// Acceptable `acr` values, space-separated on the wire.
    pub acr_values: Vec<String>,
    /// The sign-in must be at most this many seconds old.
    pub max_age: Option<i64>,
}

/// What a session lacks for a [`Strength`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepUp {
    /// Nothing: the session is strong enough.
    Met,
    /// A new sign-in will do (with the user's second factor, or simply a fresh one).
    SignInAgain,
    /// The user has no factor strong enough: they must enrol one first.
    EnrolFirst,
}

impl Strength {
    /// The strength of a query's `acr_values` and `max_age`; a `max_age` that is not a
    /// number of seconds, or too many or too long `acr_values`, is refused.
    pub fn parse(acr_values: Option<&str>, max_age: Option<&str>) -> Result<Self, DomainError> {
        let acr_values: Vec<String> = acr_values
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        if acr_values.len() > 8 || acr_values.iter().any(|v| v.len() > 128) {
            return Err(DomainError::invalid("acr_values is too long"));
        }
        let max_age = match max_age {
            None => None,
            Some(s) => Some(
                s.parse::<u32>()
                    .map_err(|_| DomainError::invalid("max_age is not a number of seconds"))?
                    .into(),
            ),
        };
        Ok(Strength {
            acr_values,
            max_age,
        })
    }

    /// True when nothing is asked.
    pub fn is_empty(&self) -> bool {
        self.acr_values.is_empty() && self.max_age.is_none()
    }

    /// True when a sign-in with the methods `amr` reaches an acceptable `acr`.
    fn acr_met(&self, amr: &str) -> bool {
        let amr: Vec<&str> = amr.split_whitespace().collect();
        let acr = acr_of(&amr);
        self.acr_values.is_empty()
            || self
                .acr_values
                .iter()
                .any(|v| v == acr || wristband_jose::authn::at_least(v).contains(&acr))
    }

    /// True when a sign-in with `amr` at `auth_time` is strong and fresh enough at `now`.
    pub fn met_by(&self, amr: &str, auth_time: i64, now: i64) -> bool {
        self.acr_met(amr)
            && self
                .max_age
                .is_none_or(|max| now.saturating_sub(auth_time) <= max)
    }

    /// The query parameters that carry this strength (`&acr_values=…&max_age=…`), for the
    /// login page's links and hidden fields.
    pub fn to_query(&self) -> String {
        let mut out = String::new();
        if !self.acr_values.is_empty() {
            out.push_str("&acr_values=");
            out.extend(url::form_urlencoded::byte_serialize(
                self.acr_values.join(" ").as_bytes(),
            ));
        }
        if let Some(max) = self.max_age {
            out.push_str(&format!("&max_age={max}"));
        }
        out
    }
}

impl AuthService {
    /// What the session `session_id` (of `user_id`) lacks for `strength`, at `now`. An
    /// unknown session is treated as one that lacks everything but a new sign-in.
    pub async fn step_up(
        &self,
        session_id: &str,
        strength: &Strength,
    ) -> Result<StepUp, DomainError> {
        let now = self.now();
        let Some(session) = self.store.session(session_id).await? else {
            return Ok(StepUp::SignInAgain);
        };
        if strength.met_by(&session.amr, session.auth_time, now) {
            return Ok(StepUp::Met);
        }
        if strength.acr_met(&session.amr) {
            return Ok(StepUp::SignInAgain);
        }
        // A new sign-in brings the user's factors: enough when one of them reaches an
        // acceptable acr.
        let methods = self.mfa_status(&session.user_id).await?.methods();
        if !methods.is_empty() && strength.acr_met(AMR_WITH_CODE) {
            Ok(StepUp::SignInAgain)
        } else {
            Ok(StepUp::EnrolFirst)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wristband_jose::authn::{ACR_MFA, ACR_PHR};

    #[test]
    fn a_strength_accepts_its_acr_or_a_stronger_one_and_a_fresh_sign_in() {
        let mfa = Strength::parse(Some(ACR_MFA), Some("300")).unwrap();
        assert!(mfa.met_by("pwd otp mfa", 1_000, 1_300));
        assert!(!mfa.met_by("pwd otp mfa", 1_000, 1_301), "too old");
        assert!(!mfa.met_by("pwd", 1_000, 1_000));
        assert!(mfa.met_by("hwk user", 1_000, 1_000), "phr is stronger");
        let phr = Strength::parse(Some(ACR_PHR), None).unwrap();
        assert!(!phr.met_by("pwd otp mfa", 1_000, 1_000));
        let listed = Strength::parse(Some("urn:other urn:wristband:acr:pwd"), None).unwrap();
        assert!(listed.met_by("pwd", 0, 99_999));
        assert!(Strength::parse(None, None).unwrap().is_empty());
        assert!(Strength::parse(None, Some("-1")).is_err());
        assert!(Strength::parse(None, Some("5m")).is_err());
        assert_eq!(
            mfa.to_query(),
            "&acr_values=urn%3Awristband%3Aacr%3Amfa&max_age=300"
        );
    }
}
