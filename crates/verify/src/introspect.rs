//! Opaque access tokens (`wbo_` + 43 base64url characters), checked by RFC 7662
//! introspection at the auth service, with a short bounded cache.
//!
//! The introspection answer is turned into [`Claims`] and run through the same claim checks
//! as a JWT (issuer, audience, expiry, lifetime, `client_id`): the verifier signs the
//! answered claims with a key that lives only in its memory and verifies them at once
//! under the JWT policy restricted to that key. So extractors, revocation and policy treat
//! both formats alike, and only verification ever produces a
//! [`Verified`](wristband_jose::Verified).

use std::sync::Arc;
use std::time::Duration;

use quick_cache::sync::Cache;
use serde::Deserialize;
use url::Url;
use wristband_jose::{
    sign, Algorithm, Audience, Claims, Clock, ErrorKind, Policy, SigningKey, UnixTime,
    UnverifiedToken, Verified,
};

use crate::error::VerifyError;
use crate::feed::{AuthHttp, ClientAuth};
use crate::fetch::FetchError;

/// The prefix of opaque access tokens.
pub const OPAQUE_PREFIX: &str = "wbo_";
/// Base64url characters after the prefix.
const OPAQUE_BODY_LEN: usize = 43;
/// Default time an introspection answer is reused.
pub const DEFAULT_INTROSPECTION_TTL: Duration = Duration::from_secs(5);
/// Default number of introspection answers kept.
pub const DEFAULT_INTROSPECTION_CAPACITY: usize = 10_000;

/// True when `token` has the shape of an opaque access token.
pub fn is_opaque(token: &str) -> bool {
    token.strip_prefix(OPAQUE_PREFIX).is_some_and(|rest| {
        rest.len() == OPAQUE_BODY_LEN
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

#[derive(Clone)]
enum Answer {
    Active(Arc<Verified<Claims>>),
    Inactive,
}

#[derive(Clone)]
struct Entry {
    answer: Answer,
    /// Reuse until this time (Unix seconds).
    until: u64,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WireAudience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct Introspection {
    active: bool,
    sub: Option<String>,
    client_id: Option<String>,
    exp: Option<u64>,
    iat: Option<u64>,
    /// The issue time in milliseconds (a Wristband extension), for sub-second cut-offs.
    iat_ms: Option<u64>,
    nbf: Option<u64>,
    aud: Option<WireAudience>,
    iss: Option<String>,
    token_type: Option<String>,
    jti: Option<String>,
    scope: Option<String>,
    role: Option<String>,
    sid: Option<String>,
}

pub(crate) struct Introspector {
    http: AuthHttp,
    url: Url,
    auth: Arc<ClientAuth>,
    cache: Cache<[u8; 32], Entry>,
    ttl: u64,
    key: SigningKey,
    policy: Policy,
    clock: Arc<dyn Clock>,
}

impl Introspector {
    /// `policy` must be the verifier's policy with HS256 as its only algorithm.
    pub(crate) fn new(
        http: AuthHttp,
        url: Url,
        auth: Arc<ClientAuth>,
        policy: Policy,
        clock: Arc<dyn Clock>,
        ttl: Duration,
        capacity: usize,
    ) -> Result<Self, VerifyError> {
        let mut secret = [0u8; 32];
        aws_lc_rs::rand::fill(&mut secret).map_err(|_| VerifyError::from(ErrorKind::Crypto))?;
        let key = SigningKey::hs256(&secret)?.with_kid("introspection");
        Ok(Introspector {
            http,
            url,
            auth,
            cache: Cache::new(capacity.max(1)),
            ttl: ttl.as_secs(),
            key,
            policy,
            clock,
        })
    }

    /// Introspection answers held.
    pub(crate) fn cached(&self) -> usize {
        self.cache.len()
    }

    /// Checks an opaque token: from the cache while the answer is fresh (never past the
    /// token's `exp`), otherwise by introspection.
    pub(crate) async fn verify(&self, token: &str) -> Result<Arc<Verified<Claims>>, VerifyError> {
        if !is_opaque(token) {
            return Err(ErrorKind::Malformed.into());
        }
        let digest = digest(token);
        let now = self.clock.now();
        if let Some(entry) = self.cache.get(&digest) {
            if now.as_secs() < entry.until {
                return match entry.answer {
                    Answer::Active(v) => self.still_valid(v, now),
                    Answer::Inactive => Err(ErrorKind::Revoked.into()),
                };
            }
            self.cache.remove(&digest);
        }
        let answer = match self.introspect(token).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(
                    target: "wristband::security",
                    error = %e,
                    token_sha256 = %crate::error::token_digest(token),
                    "introspection failed"
                );
                // The token cannot be checked: refused, as a token with an unknown key is.
                return Err(ErrorKind::UnknownKeyId.into());
            }
        };
        let now = self.clock.now();
        let mut until = now.as_secs().saturating_add(self.ttl);
        let answer = match answer {
            None => Answer::Inactive,
            Some(claims) => Answer::Active(Arc::new(self.vouch(&claims, now)?)),
        };
        if let Answer::Active(v) = &answer {
            until = until.min(v.exp.as_secs());
        }
        if self.ttl > 0 {
            self.cache.insert(
                digest,
                Entry {
                    answer: answer.clone(),
                    until,
                },
            );
        }
        match answer {
            Answer::Active(v) => Ok(v),
            Answer::Inactive => Err(ErrorKind::Revoked.into()),
        }
    }

    fn still_valid(
        &self,
        v: Arc<Verified<Claims>>,
        now: UnixTime,
    ) -> Result<Arc<Verified<Claims>>, VerifyError> {
        let leeway = self.policy.leeway().as_secs();
        if now.as_secs() >= v.exp.as_secs().saturating_add(leeway) {
            return Err(ErrorKind::Expired.into());
        }
        Ok(v)
    }

    /// Runs introspected claims through the JWT claim checks (see the module docs).
    fn vouch(&self, claims: &Claims, now: UnixTime) -> Result<Verified<Claims>, VerifyError> {
        let jwt = sign(&self.key, claims)?;
        UnverifiedToken::parse(&jwt)?.verify_with_key(self.key.verifying_key(), &self.policy, now)
    }

    /// `Ok(None)` for an inactive token.
    async fn introspect(&self, token: &str) -> Result<Option<Claims>, FetchError> {
        let (status, body) = self
            .http
            .post_form(
                &self.url,
                self.auth.basic(),
                &[("token", token), ("token_type_hint", "access_token")],
            )
            .await?;
        if status != http::StatusCode::OK {
            return Err(FetchError::Status(status));
        }
        let wire: Introspection = serde_json::from_slice(&body)
            .map_err(|_| FetchError::Invalid("not an introspection response".into()))?;
        to_claims(wire).map_err(|missing| {
            FetchError::Invalid(format!("introspection response without `{missing}`"))
        })
    }
}

/// Claims from an active introspection answer; `Err(name)` names a missing member.
fn to_claims(w: Introspection) -> Result<Option<Claims>, &'static str> {
    if !w.active {
        return Ok(None);
    }
    if w.token_type
        .as_deref()
        .is_some_and(|t| !t.eq_ignore_ascii_case("bearer"))
    {
        return Ok(None);
    }
    let iat = w.iat.ok_or("iat")?;
    let exp = w.exp.ok_or("exp")?;
    let aud: Audience = match w.aud.ok_or("aud")? {
        WireAudience::One(a) => Audience::one(a),
        WireAudience::Many(list) if !list.is_empty() => list.into_iter().collect(),
        WireAudience::Many(_) => return Err("aud"),
    };
    let mut claims = Claims::new(
        w.iss.ok_or("iss")?,
        w.sub.ok_or("sub")?,
        aud,
        UnixTime::from_secs(iat),
        Duration::from_secs(exp.saturating_sub(iat)),
    );
    claims.exp = UnixTime::from_secs(exp);
    claims.nbf = w.nbf.map(UnixTime::from_secs);
    claims.jti = w.jti.ok_or("jti")?;
    claims.client_id = w.client_id;
    claims.scope = w.scope;
    claims.role = w.role;
    claims.sid = w.sid;
    if let Some(ms) = w.iat_ms {
        // Kept only when consistent with `iat` (see `Claims::issued_at_millis`).
        claims = claims.with_iat_millis(ms);
    }
    Ok(Some(claims))
}

fn digest(token: &str) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The HS256 twin of the verifier's policy, for vouching for introspected claims.
pub(crate) fn introspection_policy(
    builder: wristband_jose::PolicyBuilder,
) -> Result<Policy, VerifyError> {
    builder.algorithms(&[Algorithm::HS256]).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaque_shape() {
        let body = "A".repeat(43);
        assert!(is_opaque(&format!("wbo_{body}")));
        assert!(!is_opaque(&format!("wbo_{}", "A".repeat(42))));
        assert!(!is_opaque(&format!("wbo_{}=", "A".repeat(42))));
        assert!(!is_opaque(&format!("wbx_{body}")));
        assert!(!is_opaque("eyJ.a.b"));
    }

    #[test]
    fn claims_from_an_answer() {
        let w: Introspection = serde_json::from_value(serde_json::json!({
            "active": true, "sub": "u1", "client_id": "web", "exp": 2000, "iat": 1000,
            "aud": ["a", "b"], "iss": "https://auth.example", "token_type": "Bearer",
            "jti": "j1", "scope": "x y", "role": "admin", "sid": "s1"
        }))
        .unwrap();
        let c = to_claims(w).unwrap().unwrap();
        assert_eq!((c.sub.as_str(), c.jti.as_str()), ("u1", "j1"));
        assert_eq!((c.iat.as_secs(), c.exp.as_secs()), (1000, 2000));
        assert!(c.aud.contains("b") && c.has_role("admin") && c.has_scope("y"));
        assert_eq!(c.sid.as_deref(), Some("s1"));
        assert_eq!(c.issued_at_millis(), None, "no iat_ms in the answer");
        // Issue 11, item 10: an answer's iat_ms reaches the claims the revocation view
        // reads, so an opaque token issued after a same-second cut-off is told apart.
        let w: Introspection = serde_json::from_value(serde_json::json!({
            "active": true, "sub": "u1", "exp": 2000, "iat": 1000, "iat_ms": 1_000_700,
            "aud": "a", "iss": "i", "jti": "j1"
        }))
        .unwrap();
        assert_eq!(
            to_claims(w).unwrap().unwrap().issued_at_millis(),
            Some(1_000_700)
        );
        let inactive: Introspection =
            serde_json::from_value(serde_json::json!({"active": false})).unwrap();
        assert!(to_claims(inactive).unwrap().is_none());
        let no_jti: Introspection = serde_json::from_value(serde_json::json!({
            "active": true, "sub": "u1", "exp": 2000, "iat": 1000, "aud": "a", "iss": "i"
        }))
        .unwrap();
        assert_eq!(to_claims(no_jti).err(), Some("jti"));
    }
}
