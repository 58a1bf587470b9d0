//! The decision: one function for the three protocols. Which rule applies, whether the
//! credential is good, and whether it meets the rule's requirement.

use std::sync::{Arc, PoisonError, RwLock};

use http::HeaderMap;
use wristband_jose::{Claims, Verified};
use wristband_serve::TrustedProxies;
use wristband_verify::relay::Relay;
use wristband_verify::{AuthError, AuthErrorKind, Verifier};

use crate::metrics::Metrics;
use crate::original::{Original, OriginalError};
use crate::path::{normalise, PathError};
use crate::policy::{Policy, Require, Rule};

/// The policy in force, shared between the gate and the file watcher that replaces it.
#[derive(Debug, Clone)]
pub struct PolicyHandle(Arc<RwLock<Arc<Policy>>>);

impl PolicyHandle {
    /// A handle holding `policy`.
    pub fn new(policy: Policy) -> Self {
        PolicyHandle(Arc::new(RwLock::new(Arc::new(policy))))
    }

    /// The policy in force now.
    pub fn current(&self) -> Arc<Policy> {
        Arc::clone(&self.0.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Puts `policy` in force for the decisions that start from now on.
    pub fn replace(&self, policy: Policy) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(policy);
    }
}

/// Why a request is refused.
#[derive(Debug)]
#[non_exhaustive]
pub enum Denial {
    /// The original request is missing, unparseable, or described by an untrusted peer.
    Original(OriginalError),
    /// The original path is refused by normalisation.
    Path(PathError),
    /// No rule matches: default deny.
    NoRule,
    /// The credential is missing or refused, sent twice, or failed the CSRF rule; or it is
    /// valid but the user's sign-in is not strong or recent enough for the rule or the
    /// verifier (step-up: [`AuthErrorKind::InsufficientUserAuthentication`]).
    Credential(AuthError),
    /// The token is valid but lacks the rule's role or scope.
    Insufficient(AuthError),
}

/// What the gate concluded.
#[derive(Debug)]
pub enum Verdict {
    /// Allowed; with the verified token when there was one (an anonymous rule allows
    /// without).
    Allow(Option<Arc<Verified<Claims>>>),
    /// Refused.
    Deny(Denial),
}

/// A verdict and the rule that made it.
#[derive(Debug)]
pub struct Decision {
    policy: Arc<Policy>,
    rule: Option<usize>,
    /// The verdict.
    pub verdict: Verdict,
}

impl Decision {
    /// The rule that decided, if one matched.
    pub fn rule(&self) -> Option<&Rule> {
        self.rule.and_then(|i| self.policy.rules().get(i))
    }

    /// The rule's position in the policy, from 0.
    pub fn rule_index(&self) -> Option<usize> {
        self.rule
    }

    /// The policy the decision was made under (its header names apply to the answer).
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// True when allowed.
    pub fn is_allow(&self) -> bool {
        matches!(self.verdict, Verdict::Allow(_))
    }
}

/// How the gate is configured besides its verifier and policy.
#[derive(Debug, Clone)]
pub struct GateOptions {
    /// Where a browser without a session is sent; `return_to` is appended.
    pub login_url: String,
    /// Peers whose `X-Original-*` and `X-Forwarded-*` headers are believed.
    pub trusted_proxies: TrustedProxies,
    /// Send the access token upstream on allow, whatever the policy file says.
    pub forward_token: bool,
    /// Re-serve the revocation feed the verifier follows (`GET /v1/revocations` and
    /// `/v1/revocations/stream`, see [`wristband_verify::relay`]) to downstream
    /// verifiers. Default true; without a followed feed there is nothing to serve.
    pub serve_feed: bool,
}

impl GateOptions {
    /// Options for an auth service at `issuer`: its `/v1/session/resume` as the login
    /// URL, the loopback addresses as the trusted proxies, and no token forwarding.
    pub fn for_issuer(issuer: &str) -> Self {
        GateOptions {
            login_url: format!("{}/v1/session/resume", issuer.trim_end_matches('/')),
            trusted_proxies: default_trusted_proxies(),
            forward_token: false,
            serve_feed: true,
        }
    }
}

/// `127.0.0.1/32` and `::1/128`.
pub fn default_trusted_proxies() -> TrustedProxies {
    TrustedProxies::parse(&["127.0.0.1/32", "::1/128"]).unwrap_or_default()
}

pub(crate) struct GateInner {
    pub(crate) verifier: Verifier,
    pub(crate) policy: PolicyHandle,
    pub(crate) options: GateOptions,
    pub(crate) metrics: Metrics,
    pub(crate) relay: Option<Relay>,
}

/// The gate: a verifier, a policy and the options. Cheap to clone.
#[derive(Clone)]
pub struct Gate(pub(crate) Arc<GateInner>);

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("verifier", &self.0.verifier)
            .field("options", &self.0.options)
            .finish_non_exhaustive()
    }
}

impl Gate {
    /// A gate deciding with `verifier` under the policy in `policy`. When the verifier
    /// follows the revocation feed and [`GateOptions::serve_feed`] is set, the gate is
    /// also a relay of that feed ([`Gate::relay`]).
    pub fn new(verifier: Verifier, policy: PolicyHandle, options: GateOptions) -> Self {
        let relay = if options.serve_feed {
            Relay::new(&verifier).ok()
        } else {
            None
        };
        Gate(Arc::new(GateInner {
            verifier,
            policy,
            options,
            metrics: Metrics::with_relay(relay.clone()),
            relay,
        }))
    }

    /// The relay of the revocation feed this gate serves, if it serves one.
    pub fn relay(&self) -> Option<&Relay> {
        self.0.relay.as_ref()
    }

    /// The verifier.
    pub fn verifier(&self) -> &Verifier {
        &self.0.verifier
    }

    /// The policy handle (replace the policy through it).
    pub fn policy(&self) -> &PolicyHandle {
        &self.0.policy
    }

    /// The options.
    pub fn options(&self) -> &GateOptions {
        &self.0.options
    }

    /// Decides on `original`, whose credential is in `headers` (the original request's
    /// headers, as the proxy passed them on).
    pub async fn decide(&self, original: &Original<'_>, headers: &HeaderMap) -> Decision {
        let policy = self.0.policy.current();
        let path = match normalise(original.path) {
            Ok(p) => p,
            Err(e) => return deny(policy, None, Denial::Path(e)),
        };
        let Some((index, rule)) = policy.find(original.host(), &original.method, &path) else {
            return deny(policy, None, Denial::NoRule);
        };
        let verifier = &self.0.verifier;
        let result = verifier
            .authenticate(&original.method, original.query, headers)
            .await;
        let verdict = match (rule.require(), result) {
            (Require::Anonymous, Ok(verified)) => Verdict::Allow(Some(verified)),
            (Require::Anonymous, Err(_)) => Verdict::Allow(None),
            (_, Err(e)) => Verdict::Deny(Denial::Credential(e)),
            (require, Ok(verified)) => {
                // The role or scope first: stepping up would not give the user those.
                if !meets(require, &verified) {
                    Verdict::Deny(Denial::Insufficient(AuthError::new(
                        AuthErrorKind::InsufficientScope,
                        verifier.realm().clone(),
                    )))
                } else if let Some(Err(e)) = rule
                    .authn()
                    .map(|r| verifier.check_authn(r, verified.claims()))
                {
                    Verdict::Deny(Denial::Credential(e))
                } else {
                    Verdict::Allow(Some(verified))
                }
            }
        };
        Decision {
            policy,
            rule: Some(index),
            verdict,
        }
    }
}

fn deny(policy: Arc<Policy>, rule: Option<usize>, denial: Denial) -> Decision {
    Decision {
        policy,
        rule,
        verdict: Verdict::Deny(denial),
    }
}

/// True when the verified claims meet `require`'s role or scope. The sign-in level of
/// `mfa` and `phr` is the rule's step-up requirement ([`Rule::authn`]), checked after.
fn meets(require: &Require, claims: &Claims) -> bool {
    match require {
        Require::Anonymous | Require::Authenticated | Require::Mfa | Require::Phr => true,
        Require::Role(role) => claims.has_role(role),
        Require::Scope(scope) => claims.has_scope(scope),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::MFA_ACR;
    use std::time::Duration;
    use wristband_jose::UnixTime;

    fn claims() -> Claims {
        Claims::new(
            "i",
            "s",
            "a",
            UnixTime::from_secs(1),
            Duration::from_secs(60),
        )
    }

    #[test]
    fn requirements_are_checked_against_the_claims() {
        let plain = claims().with_role("user").with_scope("read write");
        assert!(meets(&Require::Authenticated, &plain));
        assert!(meets(&Require::Role("user".into()), &plain));
        assert!(!meets(&Require::Role("admin".into()), &plain));
        assert!(meets(&Require::Scope("write".into()), &plain));
        assert!(!meets(&Require::Scope("wri".into()), &plain));
        // The sign-in level is the rule's step-up requirement, not a role or scope.
        assert!(meets(&Require::Mfa, &plain));
        assert!(meets(&Require::Phr, &plain));
    }

    #[test]
    fn mfa_and_phr_rules_step_up_by_the_claims() {
        let policy = Policy::parse(
            "[[rule]]\npath = \"/m\"\nrequire = \"mfa\"\n\
             [[rule]]\npath = \"/p\"\nrequire = \"phr\"\n",
        )
        .unwrap();
        let (mfa, phr) = (&policy.rules()[0], &policy.rules()[1]);
        let now = UnixTime::from_secs(30);
        let met = |rule: &Rule, c: &Claims| rule.authn().unwrap().is_met_by(c, now);
        let amr = claims()
            .with_claim("amr", serde_json::json!(["pwd", "mfa"]))
            .unwrap();
        assert!(met(mfa, &amr) && !met(phr, &amr));
        let acr = claims()
            .with_claim("acr", serde_json::json!(MFA_ACR))
            .unwrap();
        assert!(met(mfa, &acr) && !met(phr, &acr));
        let passkey = claims()
            .with_claim("acr", serde_json::json!(wristband_jose::authn::ACR_PHR))
            .unwrap();
        assert!(met(mfa, &passkey) && met(phr, &passkey));
        let pwd = claims()
            .with_claim("amr", serde_json::json!(["pwd"]))
            .unwrap();
        assert!(!met(mfa, &pwd) && !met(phr, &pwd));
        let malformed = claims()
            .with_claim("amr", serde_json::json!("mfa"))
            .unwrap();
        assert!(!met(mfa, &malformed));
    }

    #[test]
    fn the_default_login_url_is_the_resume_endpoint() {
        let o = GateOptions::for_issuer("https://app.example.com/auth/");
        assert_eq!(
            o.login_url,
            "https://app.example.com/auth/v1/session/resume"
        );
        assert!(o.trusted_proxies.contains("::1".parse().unwrap()));
    }
}
