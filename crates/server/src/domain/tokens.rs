//! Access tokens in both formats: self-contained JWTs, verified anywhere with the public
//! key, and opaque reference tokens, looked up here (introspection).

use wristband_jose::{sign, Audience, Claims, ErrorKind, UnixTime, UnverifiedToken};

use super::{token_hash, AuthService, DomainError};
use crate::store::OpaqueTokenRecord;

pub use crate::config::TokenFormat;

/// What an access token says, whatever its format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// Subject: a user id, or a client id for service tokens.
    pub sub: String,
    /// The client it was issued to.
    pub client_id: String,
    /// Audiences.
    pub aud: Vec<String>,
    /// Space-separated scopes.
    pub scope: Option<String>,
    /// Role.
    pub role: Option<String>,
    /// Session, for user tokens.
    pub sid: Option<String>,
    /// Token id.
    pub jti: String,
    /// Issued at.
    pub iat: i64,
    /// Issued at, in milliseconds, when the token says (see [`wristband_jose::IAT_MS`]).
    pub iat_ms: Option<i64>,
    /// Expiry.
    pub exp: i64,
    /// How the user authenticated (`amr`, RFC 8176), when the token says.
    pub amr: Option<Vec<String>>,
    /// The authentication context class the sign-in reached, when the token says.
    pub acr: Option<String>,
    /// When the user signed in, when the token says.
    pub auth_time: Option<i64>,
}

/// What to put into a new access token.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub(crate) sub: String,
    pub(crate) client_id: String,
    pub(crate) aud: Vec<String>,
    pub(crate) scope: Option<String>,
    pub(crate) role: Option<String>,
    pub(crate) sid: Option<String>,
    /// How and when the user signed in: `amr` (space-separated) and `auth_time`; `None`
    /// for a service token.
    pub(crate) authn: Option<(String, i64)>,
}

impl Grant {
    /// How and when the user of `session` signed in.
    pub(crate) fn authn_of(session: &crate::store::SessionRecord) -> Option<(String, i64)> {
        Some((session.amr.clone(), session.auth_time))
    }
}

/// Opaque tokens are 43 base64url characters with this prefix, so that they can never be
/// mistaken for a JWT or a refresh token.
pub(crate) const OPAQUE_PREFIX: &str = "wbo_";

impl AuthService {
    /// Issues an access token in the given format.
    pub(crate) async fn issue_access(
        &self,
        grant: Grant,
        format: TokenFormat,
        now: i64,
    ) -> Result<String, DomainError> {
        let ttl = self.config.access_ttl;
        let now_t = UnixTime::from_secs(u64::try_from(now).unwrap_or(0));
        // The issue time to the millisecond, so that a cut-off earlier in the same second
        // does not cover this token; `now` when the clock has moved on since the caller
        // read it.
        let clock_ms = self.clock.now_millis();
        let iat_ms = if clock_ms / 1000 == now_t.as_secs() {
            clock_ms
        } else {
            now_t.as_secs().saturating_mul(1000)
        };
        let mut claims = Claims::new(
            self.issuer.clone(),
            grant.sub,
            grant.aud.into_iter().collect::<Audience>(),
            now_t,
            ttl,
        )
        .with_client_id(grant.client_id)
        .with_iat_millis(iat_ms);
        claims.scope = grant.scope;
        claims.role = grant.role;
        claims.sid = grant.sid;
        if let Some((amr, auth_time)) = &grant.authn {
            let amr: Vec<&str> = amr.split_whitespace().collect();
            let auth_time = UnixTime::from_secs(u64::try_from(*auth_time).unwrap_or(0));
            claims = claims.with_authentication(&amr, super::mfa::acr_of(&amr), auth_time);
        }
        let token = match format {
            TokenFormat::Jwt => sign(self.keys.ring().signing(), &claims)
                .map_err(|e| DomainError::internal_because("signing an access token", e))?,
            TokenFormat::Opaque => {
                let mut bytes = [0u8; 32];
                aws_lc_rs::rand::fill(&mut bytes)
                    .map_err(|e| DomainError::internal_because("random bytes", e))?;
                let token = format!("{OPAQUE_PREFIX}{}", wristband_jose::b64::encode(bytes));
                let record = OpaqueTokenRecord {
                    jti: claims.jti.clone(),
                    sub: claims.sub.clone(),
                    client_id: claims.client_id.clone().unwrap_or_default(),
                    aud: claims.aud.as_slice().join(" "),
                    scope: claims.scope.clone(),
                    role: claims.role.clone(),
                    sid: claims.sid.clone(),
                    iat: claims.iat.as_i64(),
                    iat_ms: Some(wristband_jose::millis_i64(iat_ms)),
                    exp: claims.exp.as_i64(),
                };
                self.store
                    .put_opaque_token(&token_hash(&token), &record)
                    .await?;
                token
            }
        };
        self.metrics.tokens_issued.inc();
        Ok(token)
    }

    /// Checks an access token of either format at the auth service: signature or lookup,
    /// expiry, revocation records and the session. `None` when it is not active.
    pub async fn inspect(&self, token: &str) -> Result<Option<TokenInfo>, DomainError> {
        let now_t = self.clock.now();
        let now = now_t.as_i64();
        let info = if let Some(rest) = token.strip_prefix(OPAQUE_PREFIX) {
            if rest.len() != 43 {
                return Ok(None);
            }
            match self.store.opaque_token(&token_hash(token)).await? {
                Some(r) if r.exp > now => TokenInfo {
                    sub: r.sub,
                    client_id: r.client_id,
                    aud: r.aud.split(' ').map(str::to_owned).collect(),
                    scope: r.scope,
                    role: r.role,
                    sid: r.sid,
                    jti: r.jti,
                    iat: r.iat,
                    iat_ms: r.iat_ms.filter(|ms| ms.div_euclid(1000) == r.iat),
                    exp: r.exp,
                    amr: None,
                    acr: None,
                    auth_time: None,
                },
                _ => return Ok(None),
            }
        } else {
            let ring = self.keys.ring();
            let own = || {
                UnverifiedToken::parse(token)
                    .and_then(|t| t.verify(ring.keyset(), ring.policy(), now_t))
            };
            // A registered client's token (a relying party's, a service's) is checked
            // against that client's audiences first, so that its signature is checked
            // once; the server's own audience is the fallback, as it is the whole check
            // for first-party tokens.
            let verified = match self.verify_for_client_audiences(token, now_t).await? {
                None => own(),
                Some(Err(e)) if e.kind() == ErrorKind::WrongAudience => own().map_err(|_| e),
                Some(checked) => checked,
            };
            let c = match verified {
                Ok(v) => v.into_claims(),
                Err(e) => {
                    tracing::debug!(reason = e.kind().code(), "access token refused");
                    return if e.is_expired() {
                        Err(DomainError::InvalidToken { expired: true })
                    } else {
                        Ok(None)
                    };
                }
            };
            let iat_ms = c.issued_at_millis().map(wristband_jose::millis_i64);
            let amr = c
                .amr()
                .map(|m| m.into_iter().map(str::to_owned).collect::<Vec<_>>());
            TokenInfo {
                amr,
                acr: c.acr().map(str::to_owned),
                auth_time: c.auth_time().map(UnixTime::as_i64),
                iat_ms,
                sub: c.sub,
                client_id: c.client_id.unwrap_or_default(),
                aud: c.aud.as_slice().to_vec(),
                scope: c.scope,
                role: c.role,
                sid: c.sid,
                jti: c.jti,
                iat: c.iat.as_i64(),
                exp: c.exp.as_i64(),
            }
        };
        // Revocation records, and the session of a user token (live, the subject's): one
        // store round trip.
        if self
            .store
            .token_ended(
                &info.jti,
                info.sid.as_deref(),
                &info.sub,
                info.iat,
                info.iat_ms,
                now,
            )
            .await?
        {
            return Ok(None);
        }
        let mut info = info;
        if token.starts_with(OPAQUE_PREFIX) {
            // An opaque token's record does not repeat how the user signed in: its session
            // says (the session is live, as token_ended just found).
            if let Some(session) = match info.sid.as_deref() {
                Some(sid) => self.store.session(sid).await?,
                None => None,
            } {
                let amr: Vec<&str> = session.amr.split_whitespace().collect();
                info.acr = Some(super::mfa::acr_of(&amr).to_owned());
                info.amr = Some(amr.into_iter().map(str::to_owned).collect());
                info.auth_time = Some(session.auth_time);
            }
        }
        Ok(Some(info))
    }

    /// Like [`AuthService::inspect`], for endpoints that require a live token.
    pub async fn authenticate(&self, token: &str) -> Result<TokenInfo, DomainError> {
        match self.inspect(token).await {
            Ok(Some(info)) => Ok(info),
            Ok(None) => Err(DomainError::InvalidToken { expired: false }),
            Err(e) => Err(e),
        }
    }
}
